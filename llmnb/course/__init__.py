"""Helpers that exist for a chapter's lesson (augmentation, extraction); each names its chapter."""

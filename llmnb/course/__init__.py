"""Helpers that exist for a chapter's lesson (augmentation); each names its chapter."""

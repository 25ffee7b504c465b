"""Pretraining a small GPT and its tokenizer from raw text: `llmnb.pretrain` (chapter 3)."""

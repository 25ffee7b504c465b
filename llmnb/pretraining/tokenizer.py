"""A byte-level BPE tokenizer trained on the corpus (the `tokenizers` library), and the token stream.

Every byte is in the vocabulary, so any text encodes with no unknown token; "<|endoftext|>"
ends each document (chapter 3: what a tokenizer learns from a corpus).
"""
from __future__ import annotations

from llmnb.errors import DataError

EOS = "<|endoftext|>"  # separates documents; also the padding and start-of-text token


def train_tokenizer(texts, vocab_size: int = 1000, min_frequency: int = 2, model_max_length: int | None = None):
    """A byte-level BPE tokenizer (as GPT-2's) trained on `texts`, as a `PreTrainedTokenizerFast`.

    Every byte is in the vocabulary, so any text encodes with no unknown token and decodes back
    exactly. "<|endoftext|>" is the only special token: end of document, padding and start of
    generation. The vocabulary can come out smaller than `vocab_size` when the corpus has
    fewer frequent pairs to merge.

    Taught in chapter 3 (tutorials/03_algorithm.ipynb).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if not texts:
        raise DataError("No text to train the tokenizer on.")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    extra = {"model_max_length": model_max_length} if model_max_length else {}
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS,
        bos_token=EOS,
        pad_token=EOS,
        unk_token=EOS,
        clean_up_tokenization_spaces=False,
        **extra,
    )


def encode_stream(tokenizer, docs: list[str]) -> list[int]:
    """All documents as one stream of token ids, each followed by <|endoftext|>."""
    eos = tokenizer.convert_tokens_to_ids(EOS)
    out: list[int] = []
    for ids in tokenizer(docs, add_special_tokens=False)["input_ids"] if docs else []:
        out.extend(ids)
        out.append(eos)
    return out

"""The text a GPT is pretrained on: read from any accepted form, split into documents, hold some out.

    docs, name = read_corpus("my_book.txt")          # or a list of strings, a str, a DataFrame, "stories"
    train, held = split_documents(docs, 0.05, seed=0)
"""
from __future__ import annotations

import os
from pathlib import Path

from llmnb.errors import DataError
from llmnb.pretraining.tokenizer import EOS

BUNDLED = "stories"  # the corpus llmnb builds itself (llmnb.datasets.stories.build_corpus)


def read_corpus(corpus=None, n_chars: int = 400_000, seed: int = 0) -> tuple[list[str], str]:
    """(documents, a short description) from any accepted corpus form.

    None or "stories": the stories llmnb builds (`llmnb.datasets.stories.build_corpus`).
    A list/tuple of strings: one document each. A pandas DataFrame: its "text" column (or its
    only column). A path to a .txt file, or a str holding text: split into documents at
    "<|endoftext|>" when present, else at blank lines.
    """
    if corpus is None or (isinstance(corpus, str) and corpus == BUNDLED):
        from llmnb.datasets.stories import build_corpus

        return build_corpus(n_chars=n_chars, seed=seed), f"the bundled stories (seed {seed})"
    if isinstance(corpus, os.PathLike) or (isinstance(corpus, str) and _looks_like_path(corpus)):
        path = Path(corpus).expanduser()
        if not path.is_file():
            raise DataError(
                f"No corpus file at '{corpus}'. Give a .txt file, a list of strings, a string of text, "
                f"or '{BUNDLED}' for the stories llmnb builds."
            )
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise DataError(f"The corpus file '{corpus}' is not UTF-8 text.") from None
        return _split_documents(text), f"{path.name}"
    if isinstance(corpus, str):
        return _split_documents(corpus), "the given text"
    if type(corpus).__name__ == "DataFrame":
        columns = list(corpus.columns)
        if "text" not in columns and len(columns) != 1:
            raise DataError(f"The corpus DataFrame needs a 'text' column (or a single column); it has: {', '.join(map(str, columns))}.")
        corpus = corpus["text" if "text" in columns else columns[0]].tolist()
    if isinstance(corpus, (list, tuple)) or type(corpus).__name__ in ("Series", "Dataset"):
        docs = list(corpus["text"] if type(corpus).__name__ == "Dataset" else corpus)
        bad = next((i for i, d in enumerate(docs) if not isinstance(d, str)), None)
        if bad is not None:
            raise DataError(f"The corpus must hold strings; item {bad} is a {type(docs[bad]).__name__}.")
        docs = [d for d in docs if d.strip()]
        return docs, f"{len(docs)} given documents"
    raise DataError(
        f"A corpus cannot be a {type(corpus).__name__}. Give a list of strings, a string, a .txt file path, "
        f"or '{BUNDLED}'."
    )


def _looks_like_path(text: str) -> bool:
    if "\n" in text or len(text) > 1000:
        return False
    return text.lower().endswith((".txt", ".md", ".text")) or Path(text).expanduser().is_file()


def _split_documents(text: str) -> list[str]:
    parts = text.split(EOS) if EOS in text else text.split("\n\n")
    return [p.strip() for p in parts if p.strip()]


def split_documents(docs: list[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(train, validation): a seeded share of the documents, at least one, at most half."""
    import random

    if len(docs) < 2:
        return list(docs), []  # one long text: the validation tokens are cut from its end instead
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    n_eval = min(len(docs) // 2, max(1, round(len(docs) * fraction)))
    held = set(order[:n_eval])
    return [d for i, d in enumerate(docs) if i not in held], [d for i, d in enumerate(docs) if i in held]

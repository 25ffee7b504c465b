"""Data sets that ship with llmnb, made by its developers (see data/DATA_CARD.md).

    llmnb.datasets.load("reviews")              # 480 labelled review sentences (train)
    llmnb.datasets.load("reviews", "test")      # 240 more, about other items (test)
    llmnb.datasets.load("instructions")         # 1,200 story questions and answers (SFT), "test": 200
    llmnb.datasets.load("preferences")          # 600 prompt/chosen/rejected rows (DPO), "test": 150
    llmnb.datasets.load("entities")             # 1,500 sentences, words tagged PER/LOC/ORG (BIO), "test": 400
    llmnb.datasets.load("reading")              # 1,500 questions with answer spans (SQuAD form), "test": 400

In `%finetune` the names work directly: `%finetune minilm reviews --eval reviews_test`.
"""
from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).parent / "data"

# name -> (file per split, one-line description)
CATALOG = {
    "reviews": (
        {"train": "reviews_train.csv", "test": "reviews_test.csv"},
        "English review sentences labelled positive/negative, balanced (Chapter 0 quickstart).",
    ),
    "tense": (
        {"train": "tense_train.csv", "test": "tense_test.csv"},
        "English sentence pairs, present -> past tense (source, target), made by llmnb.datasets.tense (Chapter 4.3, seq2seq).",
    ),
    "instructions": (
        {"train": "instructions_train.csv", "test": "instructions_test.csv"},
        ("Questions about tiny stories (instruction, input, output; Alpaca form) for SFT of the story GPT, "
         "made by llmnb.datasets.instructions."),
    ),
    "preferences": (
        {"train": "preferences_train.csv", "test": "preferences_test.csv"},
        ("Preference pairs about tiny stories (prompt, chosen, rejected) for DPO of the story GPT, "
         "made by llmnb.datasets.preferences."),
    ),
    "entities": (
        {"train": "entities_train.jsonl", "test": "entities_test.jsonl"},
        ("English sentences as words (tokens) with BIO tags for PER, LOC, ORG (tags); test names held out; "
         "made by llmnb.datasets.entities (token classification)."),
    ),
    "reading": (
        {"train": "reading_train.jsonl", "test": "reading_test.jsonl"},
        ("Questions about short paragraphs (question, context, answers as SQuAD spans); test names and wordings "
         "held out; made by llmnb.datasets.reading (extractive QA)."),
    ),
}


def names() -> list[str]:
    """Every name `load` and the magics accept, including '<name>_<split>' forms."""
    out = []
    for name, (splits, _) in CATALOG.items():
        out.append(name)
        out.extend(f"{name}_{split}" for split in splits if split != "train")
    return out


def path(name: str, split: str = "train") -> Path:
    """The file behind a bundled data set."""
    from llmnb.errors import DataError

    if name not in CATALOG and "_" in name:
        name, split = name.rsplit("_", 1)
    if name not in CATALOG:
        raise DataError(f"No bundled data set called '{name}'. Bundled: {', '.join(names())}.")
    splits = CATALOG[name][0]
    if split not in splits:
        raise DataError(f"The data set '{name}' has no split '{split}'; it has: {', '.join(splits)}.")
    return DATA / splits[split]


def load(name: str, split: str = "train"):
    """A bundled data set as a pandas DataFrame (a fresh copy each call).

    CSV files: empty fields stay "" (an instruction with no `input`), and no text is read as a missing
    value. JSON Lines files (one object a line): values are kept as they are, lists and dicts included
    (the `tokens` and `tags` of "entities", the `answers` of "reading").
    """
    import json

    import pandas as pd

    file = path(name, split)
    if file.suffix == ".jsonl":
        with file.open(encoding="utf-8") as lines:
            return pd.DataFrame([json.loads(line) for line in lines if line.strip()])
    return pd.read_csv(file, keep_default_na=False)

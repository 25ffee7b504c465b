"""Cheap text augmentation for a small labelled set: word dropout and neighbour swaps.

Used by tutorials/09_faq.ipynb ("how do I fight overfitting?"):

    bigger = llmnb.augment(train_df, copies=2, drop=0.15, swap=0.1)
    ft = llmnb.finetune("minilm", bigger, eval=val_df)

Each original row is kept and followed by `copies` noisy versions with the same label: every
word is dropped with probability `drop`, then each pair of neighbouring words is swapped with
probability `swap`. The model sees the same reviews with a few words missing or out of place,
so it cannot get the training loss to zero by memorising exact word sequences.

Words that can flip a label are never dropped: negations ("not", "never", "didn't"...) by
default. Dropping "not" from "Not worth the money." would make a negative review read as a
positive one while it keeps its negative label, which teaches the model the wrong thing.
Copies that come out identical to their source are left out (they add nothing new).
"""
from __future__ import annotations

import random

from llmnb.errors import DataError

# Never dropped: removing one of these can reverse what a sentence says.
NEGATIONS = frozenset({
    "not", "no", "never", "nothing", "nobody", "none", "nor", "neither", "nowhere", "without",
    "hardly", "barely", "cannot", "dont", "didnt", "doesnt", "isnt", "wasnt", "wont", "cant",
})


def _protected(word: str, protect) -> bool:
    bare = word.lower().strip(".,;:!?\"'()")
    return bare in protect or bare.endswith("n't") or bare.endswith("n’t")


def augment_text(text: str, rng: random.Random, drop: float = 0.1, swap: float = 0.1, protect=NEGATIONS) -> str:
    """One noisy version of `text` (words split on whitespace): drop, then swap neighbours.

    At least one word always survives; protected words are never dropped (they may move).
    """
    words = text.split()
    if not words:
        return ""
    kept = [w for w in words if _protected(w, protect) or rng.random() >= drop] or [rng.choice(words)]
    i = 0
    while i < len(kept) - 1:
        if rng.random() < swap:
            kept[i], kept[i + 1] = kept[i + 1], kept[i]
            i += 2  # a word moves at most one place
        else:
            i += 1
    return " ".join(kept)


def augment(data, copies: int = 2, drop: float = 0.1, swap: float = 0.1, seed: int = 0,
            text: str | None = None, label: str | None = None, protect=NEGATIONS):
    """A new DataFrame: every row of `data`, each followed by up to `copies` augmented versions.

    data:    anything `finetune` accepts (DataFrame, list of dicts, file, bundled name).
    copies:  noisy versions made per row (identical ones are left out).
    drop:    probability of dropping each word; swap: of swapping each pair of neighbours.
    seed:    the same seed gives the same rows.
    text, label: the columns (inferred as in `finetune` when not given); other columns are copied.
    protect: words never dropped (default: negations; words ending in "n't" always count).

    Taught in chapter 9 (tutorials/09_faq.ipynb).
    """
    from llmnb.finetuning.data import drop_missing, pick_columns, to_frame

    if isinstance(copies, bool) or not isinstance(copies, int) or copies < 0:
        raise DataError(f"copies={copies!r} must be a whole number >= 0 (noisy versions per row).")
    for name, value in (("drop", drop), ("swap", swap)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise DataError(f"{name}={value!r} must be a probability from 0 up to (not including) 1.")
    frame = to_frame(data, "data to augment")
    text_col, label_col = pick_columns(frame, text, label)
    frame = drop_missing(frame, [text_col, label_col], "data to augment")
    protect = frozenset(w.lower() for w in protect)
    rng = random.Random(seed)
    rows = []
    for record in frame.to_dict("records"):
        rows.append(record)
        original = str(record[text_col])
        seen = {original}
        for _ in range(copies):
            noisy = augment_text(original, rng, drop, swap, protect)
            if noisy and noisy not in seen:
                seen.add(noisy)
                rows.append({**record, text_col: noisy})
    import pandas as pd

    return pd.DataFrame(rows, columns=frame.columns).reset_index(drop=True)

"""llmnb.augment: word dropout and neighbour swaps that keep labels and negations."""
import random

import pandas as pd
import pytest

import llmnb
from llmnb.course.augmentation import augment, augment_text
from llmnb.errors import DataError

ROWS = [
    {"text": "Not worth the money and the staff never smiled once.", "label": "negative", "id": 1},
    {"text": "The room was lovely, quiet and spotless every single day.", "label": "positive", "id": 2},
    {"text": "I didn't enjoy a single minute of this film.", "label": "negative", "id": 3},
]


def test_originals_kept_then_labelled_copies():
    out = augment(ROWS, copies=3, drop=0.2, swap=0.2, seed=0)
    assert list(out.columns) == ["text", "label", "id"]
    assert out["text"].tolist()[0] == ROWS[0]["text"]  # each original comes first
    for row in ROWS:
        mine = out[out["id"] == row["id"]]
        assert row["text"] in mine["text"].tolist()
        assert set(mine["label"]) == {row["label"]}  # copies keep the label
        assert 1 < len(mine) <= 4 and mine["text"].is_unique  # identical copies are left out
        assert all(set(t.split()) <= set(row["text"].split()) for t in mine["text"])  # only drops and moves


def test_negations_are_never_dropped():
    rng = random.Random(1)
    for _ in range(200):
        words = augment_text("Not good, I didn't like it and would never go back.", rng, drop=0.9, swap=0.5).split()
        assert {"Not", "didn't", "never"} <= set(words)


def test_same_seed_same_rows_and_zero_noise_adds_nothing():
    frame = pd.DataFrame(ROWS)
    assert augment(frame, seed=3).equals(augment(frame, seed=3))
    assert not augment(frame, seed=3).equals(augment(frame, seed=4))
    assert augment(frame, drop=0.0, swap=0.0).equals(frame[["text", "label", "id"]])
    assert len(augment(frame, copies=0)) == len(frame)


def test_text_always_keeps_a_word():
    rng = random.Random(0)
    assert all(augment_text("one two three", rng, drop=0.999, protect=()) for _ in range(50))
    assert augment_text("", rng) == ""


def test_public_name_and_bad_arguments():
    assert llmnb.augment is augment
    with pytest.raises(DataError, match="copies"):
        augment(ROWS, copies=-1)
    with pytest.raises(DataError, match="drop"):
        augment(ROWS, drop=1.0)
    with pytest.raises(DataError, match="swap"):
        augment(ROWS, swap=True)

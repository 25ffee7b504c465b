"""Shared, offline fixtures. Tiny models come from configs; data is made here or ships with llmnb."""
import os
import random
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HOME", str(Path(__file__).resolve().parent.parent / ".cache" / "huggingface"))

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def runs_in_tmp(tmp_path, monkeypatch):
    """Default run folders (runs/<model>-NNN) go to a temporary folder, not the repository."""
    monkeypatch.setenv("LLMNB_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path / "runs"

POSITIVE_WORDS = ["wonderful", "great", "lovely", "excellent", "superb", "delightful"]
NEGATIVE_WORDS = ["awful", "terrible", "broken", "rude", "dreadful", "useless"]
FILLER = ["the", "room", "was", "service", "food", "phone", "really", "and", "staff", "film", "quite", "very"]


def make_easy_sentiment(n: int, seed: int = 0) -> list[dict]:
    """Labelled by construction: the label is the polarity of the one opinion word inserted."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = "positive" if i % 2 == 0 else "negative"
        words = rng.sample(FILLER, rng.randint(3, 8))
        words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE_WORDS if label == "positive" else NEGATIVE_WORDS))
        rows.append({"text": " ".join(words), "label": label})
    return rows


@pytest.fixture
def easy_rows():
    return make_easy_sentiment(160, seed=0)


@pytest.fixture
def easy_eval_rows():
    return make_easy_sentiment(60, seed=1)


@pytest.fixture
def easy_frame(easy_rows):
    import pandas as pd

    return pd.DataFrame(easy_rows)


# Fast settings for a tiny BERT that learns the easy task in a few seconds.
TINY = dict(epochs=4, lr=2e-3, batch_size=16, quiet=True, warmup=0.1, early_stopping=None)


@pytest.fixture
def tiny_options():
    return dict(TINY)

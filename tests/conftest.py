"""Shared, offline fixtures. Tiny models come from configs; data is made here or ships with llmnb."""
import os
import sys
from pathlib import Path

# Tests in every tests/<area>/ folder import the shared helpers (easy_data) by name.
sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HOME", str(Path(__file__).resolve().parent.parent / ".cache" / "huggingface"))

import pytest  # noqa: E402
from easy_data import TINY, make_easy_sentiment  # noqa: E402


@pytest.fixture(autouse=True)
def runs_in_tmp(tmp_path, monkeypatch):
    """Default run folders (runs/<model>-NNN) go to a temporary folder, not the repository."""
    monkeypatch.setenv("LLMNB_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path / "runs"


@pytest.fixture(scope="session")
def shell():
    """One IPython shell for the whole session (IPython allows only one) with llmnb loaded."""
    from IPython.testing.globalipapp import get_ipython, start_ipython

    ipython = start_ipython() or get_ipython()
    ipython.run_line_magic("load_ext", "llmnb")
    return ipython


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


@pytest.fixture
def tiny_options():
    return dict(TINY)

"""Shared, offline fixtures. Tiny models come from configs; data is made here or ships with llmnb.

The suite runs on pytest-xdist workers (`make test`: `-n auto`, which `pytest_xdist_auto_num_workers`
below sizes by cores and memory). Each worker, and every kernel or subprocess it starts, gets its
share of the cores as torch threads: two workers with two threads each on two cores spent most of
their time waiting for each other.
"""
import os
import sys
from pathlib import Path

# Tests in every tests/<area>/ folder import the shared helpers (easy_data) by name.
sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HOME", str(Path(__file__).resolve().parent.parent / ".cache" / "huggingface"))

# A worker's share of the cores, set before torch is imported anywhere (kernels and subprocesses
# inherit it through the environment).
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // _WORKERS))

import pytest  # noqa: E402
from easy_data import TINY, make_easy_sentiment  # noqa: E402


# Per worker: a notebook kernel peaks near 2 GiB, the worker itself near 1 GiB.
MEMORY_PER_WORKER_GB = 3.5


def pytest_xdist_auto_num_workers(config):
    """`-n auto`: one worker per core, as many as the memory holds (at least 1, at most 4)."""
    try:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        available = 8.0
    return max(1, min(os.cpu_count() or 1, int(available // MEMORY_PER_WORKER_GB), 4))


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config, items):
    """The longest tests first (browser, then notebooks, then the slow ones), so that the workers
    finish together: the many short tests fill in behind them. Order is otherwise kept.
    The browser tests form one xdist group: one worker, one JupyterLab and Chromium for them all."""
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.xdist_group("browser"))

    def weight(item):
        for rank, marker in enumerate(("browser", "notebook", "slow")):
            if item.get_closest_marker(marker):
                return rank
        return 3

    items.sort(key=weight)


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

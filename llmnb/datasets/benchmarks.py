"""Public benchmarks (GLUE, SuperGLUE) by name when online; the bundled reviews when not.

Used by tutorials/07_tools.ipynb:

    data = load_benchmark("glue", "sst2", split="validation", limit=500)
    data.frame      # a DataFrame with columns text and label (class names), ready for finetune
    data.source     # where it came from, in words: the Hub, or the bundled fallback and why

Offline is decided before anything touches the network: `offline=True`, or the environment
variable HF_HUB_OFFLINE or HF_DATASETS_OFFLINE set to 1 (as llmnb's tests and fast tutorials
do). Then the bundled reviews are returned at once. Online, the data set is fetched with
`datasets.load_dataset`; if that fails (no network, a renamed data set), the fallback is used
and `source` says why.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from llmnb.errors import DataError

# Names as the article writes them -> where the data lives on the Hugging Face Hub now.
HUB_IDS = {"glue": "nyu-mll/glue", "super_glue": "aps/super_glue", "superglue": "aps/super_glue"}
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
# bundled fallback split for each benchmark split
FALLBACK_SPLITS = {"train": "train", "validation": "test", "test": "test"}


@dataclass
class BenchmarkData:
    """What `load_benchmark` returns: the rows, and where they came from."""

    frame: object  # pandas DataFrame with columns text, label
    source: str
    from_hub: bool

    def __repr__(self):
        return f"BenchmarkData({len(self.frame)} rows, {self.source})"


def offline_reason(offline: bool = False) -> str | None:
    """Why the network must not be used ("offline=True", "HF_HUB_OFFLINE=1"), or None when it may.

    The environment always counts: offline=False cannot switch HF_HUB_OFFLINE=1 off."""
    if offline:
        return "offline=True"
    for name in OFFLINE_VARIABLES:
        value = os.environ.get(name, "").strip().lower()
        if value not in ("", "0", "false", "no", "off"):
            return f"{name}={os.environ[name]}"
    return None


def load_benchmark(name: str = "glue", config: str = "sst2", split: str = "train", limit: int | None = None,
                   fallback: str = "reviews", offline: bool = False) -> BenchmarkData:
    """A benchmark task as text/label rows: from the Hub when allowed and reachable, else `fallback`.

    name, config: e.g. ("glue", "sst2"), ("glue", "rte"), ("super_glue", "boolq"); any Hub id works.
    split:        "train", "validation" or "test" (GLUE's test labels are hidden: those rows are dropped).
    limit:        keep only the first `limit` rows (SST-2's training split has 67,349).
    fallback:     a bundled data set name (llmnb.datasets.names()).
    offline:      True never uses the network; so does HF_HUB_OFFLINE=1 or HF_DATASETS_OFFLINE=1, always.
    """
    if split not in FALLBACK_SPLITS:
        raise DataError(f"split={split!r} is not known; choose one of: {', '.join(FALLBACK_SPLITS)}.")
    reason = offline_reason(offline)
    if reason is None:
        hub_id = HUB_IDS.get(name.lower(), name)
        try:
            frame = _from_hub(hub_id, config, split)
        except Exception as e:  # noqa: BLE001 - any failure to fetch means: use the local data instead
            reason = f"could not load {hub_id}/{config} ({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''})"
        else:
            frame = frame.head(limit) if limit else frame
            return BenchmarkData(frame.reset_index(drop=True), f"{hub_id} {config} ({split}) from the Hugging Face Hub", True)
    from llmnb.datasets import load

    frame = load(fallback, FALLBACK_SPLITS[split])
    frame = frame.head(limit) if limit else frame
    return BenchmarkData(frame.reset_index(drop=True),
                         f"the bundled '{fallback}' ({FALLBACK_SPLITS[split]} split) instead of {name}/{config}: {reason}", False)


def _from_hub(hub_id: str, config: str, split: str):
    """One split as text/label rows; several text columns (sentence pairs) are joined with ' | '."""
    import datasets

    data = datasets.load_dataset(hub_id, config, split=split)
    return to_text_label(data)


def to_text_label(data):
    """A `datasets.Dataset` with string columns and a ClassLabel 'label' -> DataFrame(text, label names)."""
    import pandas as pd

    features = data.features
    texts = [c for c, f in features.items() if getattr(f, "dtype", None) in ("string", "large_string")]
    if not texts or "label" not in features:
        raise DataError(f"expected text columns and a 'label' column; the columns are: {', '.join(features)}")
    frame = data.to_pandas()
    frame = frame[frame["label"] >= 0]  # -1: a hidden test label
    names = getattr(features["label"], "names", None)
    labels = [names[i] for i in frame["label"]] if names else frame["label"].tolist()
    text = frame[texts[0]].astype(str)
    for column in texts[1:]:
        text = text + " | " + frame[column].astype(str)
    return pd.DataFrame({"text": text.tolist(), "label": labels})

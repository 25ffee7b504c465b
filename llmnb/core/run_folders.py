"""The run folders under `runs/`: list them with what they hold, and remove old ones.

    llmnb.runs()              # a table: name, model, task, status, best metric, costs, data, size, date
    llmnb.clean_runs(keep=3)  # remove all but the 3 newest, printing what went

A default MiniLM run leaves about 90 MB; a class that runs every chapter's cells, or a learner
who tries ten ideas, fills a Binder or Colab disk in an afternoon. `finetune` names
`clean_runs` in its plan once the folder passes `RUNS_WARN_BYTES`.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from llmnb.core.checkpoint import find_checkpoint, holds_a_run, runs_root

RUNS_WARN_BYTES = 2 * 10**9  # past this, the plan printed before training says how to clean up
META_FILE, STATE_FILE = "llmnb.json", "trainer_state.json"


def folder_bytes(folder) -> int:
    """Bytes of the files under `folder` (hard links counted once)."""
    seen, total = set(), 0
    for path in Path(folder).rglob("*"):
        try:
            info = path.lstat()
        except OSError:  # removed while we looked
            continue
        if path.is_file() and (info.st_dev, info.st_ino) not in seen:
            seen.add((info.st_dev, info.st_ino))
            total += info.st_size
    return total


def run_folders(root=None) -> list[Path]:
    """Folders under `root` (default: runs/, or $LLMNB_RUNS_DIR) that hold a run, oldest first."""
    root = Path(root) if root is not None else runs_root()
    if not root.is_dir():
        return []
    folders = [p for p in root.iterdir() if p.is_dir() and (holds_a_run(p) or (p / "model.safetensors").exists())]
    return sorted(folders, key=lambda p: (p.stat().st_mtime, p.name))


def describe(folder: Path) -> dict:
    """One row about a run folder, read from its llmnb.json (or its checkpoint, mid-run)."""
    meta = _read_json(folder / META_FILE)
    checkpoint = find_checkpoint(folder)
    saved = _read_json(checkpoint / STATE_FILE) if checkpoint else {}
    state = saved.get("state", {})
    metrics = meta.get("metrics") or {}
    metric_name = meta.get("metric_name") or state.get("metric_name") or next(iter(metrics), None)
    best = metrics.get(metric_name) if metric_name else state.get("best_metric")
    if best is None:
        best = state.get("best_metric")
    return {
        "name": folder.name,
        "model": meta.get("model_name") or saved.get("model_name") or meta.get("kind", ""),
        "task": meta.get("task") or ("pretraining" if meta.get("kind") else ""),
        "status": meta.get("status") or ("resumable" if checkpoint else ""),
        "metric": (metric_name or "").removeprefix("eval_"),
        "best": best,
        "wall_s": _rounded(meta.get("wall_seconds"), 1),
        "peak_mb": _rounded(meta.get("peak_memory_mb"), 0),
        "data": ((meta.get("data") or {}).get("train") or {}).get("sha256", "")[:12],  # same prefix: same training data
        "size_mb": round(folder_bytes(folder) / 1e6, 1),
        "modified": time.strftime("%Y-%m-%d %H:%M", time.localtime(folder.stat().st_mtime)),
        "resumable": checkpoint is not None,
        "path": str(folder),
    }


def runs(root=None):
    """A DataFrame of the run folders under runs/ (or `root`), oldest first: name, model, task,
    status, the best metric, wall time, peak memory, the training data's sha256 prefix, size on disk.
    `llmnb.load_run(name)` reopens one; `llmnb.compare(...)` puts runs side by side.

    Taught in chapter 0 (tutorials/00_quickstart.ipynb).
    """
    import pandas as pd

    columns = ["name", "model", "task", "status", "metric", "best", "wall_s", "peak_mb", "data", "size_mb", "modified",
               "resumable", "path"]
    return pd.DataFrame([describe(folder) for folder in run_folders(root)], columns=columns)


def clean_runs(keep: int = 3, root=None, quiet: bool = False) -> list[Path]:
    """Remove all but the `keep` newest run folders under runs/ (or `root`); returns what went.

    Asks nothing: this is for notebooks and scripts. Prints each folder removed and the space
    freed. Only folders that hold a run (llmnb.json, a checkpoint or a model) are touched.

    Taught in chapter 0 (tutorials/00_quickstart.ipynb).
    """
    from llmnb.errors import ConfigError

    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
        raise ConfigError(f"keep={keep!r} must be a whole number >= 0: how many of the newest runs to keep.")
    folders = run_folders(root)
    doomed = folders[: max(0, len(folders) - keep)]
    freed = 0
    for folder in doomed:
        size = folder_bytes(folder)
        shutil.rmtree(folder, ignore_errors=True)
        freed += size
        if not quiet:
            print(f"llmnb: removed {folder} ({size / 1e6:,.0f} MB)")
    if not quiet:
        where = root if root is not None else runs_root()
        print(f"llmnb: freed {freed / 1e6:,.0f} MB; kept the {min(keep, len(folders))} newest run(s) in {where}")
    return doomed


def size_warning(root=None) -> str | None:
    """A line for the plan when the runs folder has grown past RUNS_WARN_BYTES."""
    root = Path(root) if root is not None else runs_root()
    if not root.is_dir():
        return None
    total = folder_bytes(root)
    if total < RUNS_WARN_BYTES:
        return None
    return (
        f"llmnb: {root}/ holds {total / 1e9:.1f} GB of earlier runs; "
        "llmnb.clean_runs(keep=3) removes all but the 3 newest"
    )


def _rounded(value, digits: int):
    return round(value, digits) if isinstance(value, (int, float)) else None


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}

"""The record every run keeps: what produced it and what it cost, written into its `llmnb.json`.

    result.record()   {"config", "data", "environment", "metrics", "best_step",
                       "wall_seconds", "peak_memory_mb", "parameters", "state", ...}

A number in a notebook means little a week later unless you can say which data, which versions
and which machine produced it. So every job fills in, beside its metrics:

* `data`: a fingerprint of the training and validation data: sha256 over every text and
  target in order, the row count and, for labels, how many rows carry each one. Two runs with the
  same sha256 saw the same examples in the same order.
* `environment`: Python, torch, transformers, peft and llmnb versions, the device, the number
  format and the CPU threads: what makes a run repeatable or explains why it is not.
* `wall_seconds` (the whole job, loading included) and `peak_memory_mb` (the process's resident
  memory at its highest during the job; on a GPU, `gpu_peak_mb` too).

`MemoryPeak` takes the peak without disturbing a `llmnb.measure()` block around the job: it
reads the kernel's high-water mark at both ends (when it rose, that is the exact peak) and
otherwise the largest of samples taken every quarter second. On a GPU it reads torch's peak
counter, reset when the job starts.
"""
from __future__ import annotations

import hashlib
import json
import numbers
import platform
import sys
import time

from llmnb.core.memory import MB, RssSampler, status_mb

MAX_LABELS = 50  # more distinct targets than this: a regression or generation target, not labels


def data_fingerprint(texts, targets=None) -> dict:
    """sha256 over the rows (text and target, in order), the row count and the label counts."""
    digest = hashlib.sha256()
    counts: dict[str, int] = {}
    rows = 0
    targets = list(targets) if targets is not None else None
    for index, text in enumerate(texts):
        target = targets[index] if targets is not None else None
        digest.update(json.dumps([text, target], sort_keys=True, default=str, ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
        rows += 1
        if targets is not None and isinstance(target, (str, numbers.Integral)) and len(counts) <= MAX_LABELS:
            counts[str(target)] = counts.get(str(target), 0) + 1
    fingerprint = {"sha256": digest.hexdigest(), "rows": rows}
    if counts and len(counts) <= MAX_LABELS:
        fingerprint["labels"] = dict(sorted(counts.items()))
    return fingerprint


def environment(device=None, autocast_dtype=None) -> dict:
    """Versions, device, number format and threads of this process (nothing is imported for it)."""
    from llmnb.version import __version__

    def version(name):
        module = sys.modules.get(name)
        if module is None:
            try:
                from importlib.metadata import version as installed

                return installed(name)
            except Exception:  # not installed
                return None
        return getattr(module, "__version__", None)

    torch = sys.modules.get("torch")
    info = {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "llmnb": __version__,
        "torch": version("torch"),
        "transformers": version("transformers"),
        "peft": version("peft"),
        "device": str(device) if device is not None else None,
        "precision": str(autocast_dtype).replace("torch.", "") if autocast_dtype is not None else "fp32",
        "threads": torch.get_num_threads() if torch is not None else None,
    }
    if torch is not None and device is not None and getattr(device, "type", "") == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


class MemoryPeak:
    """`with MemoryPeak() as peak: ...`, then `peak.mb` (resident memory) and `peak.gpu_mb`."""

    def __init__(self, interval: float = 0.25):
        self.interval = interval
        self.mb = self.gpu_mb = None
        self.seconds = 0.0

    def __enter__(self):
        self._start_hwm = status_mb("VmHWM")
        self._sampler = RssSampler(self.interval)
        self._sampler.start()
        _cuda_peak(reset=True)  # (torch's counter is process-wide: a measure() around the job reads the same peak)
        self._clock = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._clock
        sampled = self._sampler.stop()
        end_hwm = status_mb("VmHWM")
        risen = end_hwm is not None and self._start_hwm is not None and end_hwm > self._start_hwm
        self.mb = end_hwm if risen else sampled
        self.gpu_mb = _cuda_peak()
        return False


def _cuda_peak(reset: bool = False) -> float | None:
    """The most memory torch allocated on the current GPU since the last reset (None: no GPU in use)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    if reset:
        torch.cuda.reset_peak_memory_stats()
    return torch.cuda.max_memory_allocated() / MB

"""`llmnb.measure`: what a block of code cost, in seconds, CPU seconds and peak memory.

    with llmnb.measure() as cost:
        ft = llmnb.finetune("minilm", "reviews", max_steps=20, quiet=True)
    cost.seconds, cost.cpu_seconds, cost.peak_rss_mb, cost.added_rss_mb, cost.gpu_peak_mb
    print(cost)

Used by tutorials/03_algorithm.ipynb (section 3.3: "training costs time and resources",
measured rather than asserted).

How each number is taken:

* `seconds`: wall-clock time (`time.perf_counter`).
* `cpu_seconds`: CPU time of this process, all threads together (`time.process_time`). On a
  machine shared with other jobs it is steadier than wall time.
* `peak_rss_mb`: the largest resident memory of the process *during the block*. On Linux the
  kernel's own high-water mark (VmHWM) is reset at the start (writing 5 to
  /proc/self/clear_refs) and read at the end, so no short peak is missed. Elsewhere the
  resident size is sampled every `interval` seconds in a background thread (through psutil,
  when installed); without either, the number is None.
* `added_rss_mb`: `peak_rss_mb` minus the resident memory at the start: roughly what the block
  needed on top of what was already loaded. Memory freed earlier but kept by the allocator can
  be reused without showing up here, so read it as a lower bound.
* `gpu_peak_mb`: the most memory torch had allocated on the current CUDA GPU during the block
  (None without one).
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

from llmnb.core.memory import RssSampler, resident_mb, status_mb
from llmnb.errors import ConfigError

MB = 1024 * 1024
_CLEAR_REFS = "/proc/self/clear_refs"


@dataclass
class Cost:
    """The cost of one `with llmnb.measure():` block. Filled in when the block ends.

    Taught in chapter 3 (tutorials/03_algorithm.ipynb).
    """

    seconds: float = 0.0
    cpu_seconds: float = 0.0
    start_rss_mb: float | None = None
    peak_rss_mb: float | None = None
    gpu_peak_mb: float | None = None
    method: str = ""  # how the peak was taken: "VmHWM", "sampled" or "" (not available)

    @property
    def added_rss_mb(self) -> float | None:
        """Peak resident memory above the level at the start of the block (a lower bound)."""
        if self.peak_rss_mb is None or self.start_rss_mb is None:
            return None
        return max(0.0, self.peak_rss_mb - self.start_rss_mb)

    def as_dict(self) -> dict:
        """The numbers as a plain dict (one row of a pandas table)."""
        return {
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
            "peak_rss_mb": self.peak_rss_mb,
            "added_rss_mb": self.added_rss_mb,
            "gpu_peak_mb": self.gpu_peak_mb,
        }

    def __str__(self):
        def mb(x):
            return "n/a" if x is None else f"{x:,.0f} MB"

        text = f"{self.seconds:.1f} s wall, {self.cpu_seconds:.1f} s CPU, peak RSS {mb(self.peak_rss_mb)} (+{mb(self.added_rss_mb)})"
        return text + (f", GPU peak {mb(self.gpu_peak_mb)}" if self.gpu_peak_mb is not None else "")


def _reset_high_water_mark() -> bool:
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
        return True
    except OSError:  # not Linux, or not allowed (some containers)
        return False


class measure:
    """Context manager: `with llmnb.measure() as cost: ...`, then read `cost` (a `Cost`).

    interval: seconds between memory samples where the kernel's high-water mark is not
    available (not Linux). Nested measurements are not supported on Linux: an inner block
    resets the high-water mark the outer one reads.

    Taught in chapter 3 (tutorials/03_algorithm.ipynb).
    """

    def __init__(self, interval: float = 0.01):
        if not interval > 0:
            raise ConfigError(f"interval={interval!r} must be a positive number of seconds.")
        self.interval = interval
        self.cost = Cost()

    def __enter__(self) -> Cost:
        self._cuda = self._cuda_device()
        if self._cuda is not None:
            import torch

            torch.cuda.synchronize(self._cuda)
            torch.cuda.reset_peak_memory_stats(self._cuda)
        self.cost.start_rss_mb = resident_mb()
        self._sampler = None
        if status_mb("VmHWM") is not None and _reset_high_water_mark():
            self.cost.method = "VmHWM"
        elif self.cost.start_rss_mb is not None:
            self._sampler = RssSampler(self.interval)
            self._sampler.start()
            self.cost.method = "sampled"
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self.cost

    def __exit__(self, *exc):
        if self._cuda is not None:
            import torch

            torch.cuda.synchronize(self._cuda)
            self.cost.gpu_peak_mb = torch.cuda.max_memory_allocated(self._cuda) / MB
        self.cost.seconds = time.perf_counter() - self._wall
        self.cost.cpu_seconds = time.process_time() - self._cpu
        if self.cost.method == "VmHWM":
            self.cost.peak_rss_mb = status_mb("VmHWM")
        elif self._sampler is not None:
            self.cost.peak_rss_mb = self._sampler.stop()
        return False  # exceptions propagate

    @staticmethod
    def _cuda_device():
        """The current CUDA device when torch is already imported and sees a GPU (never imports torch)."""
        torch = sys.modules.get("torch")
        if torch is None or os.environ.get("CUDA_VISIBLE_DEVICES") == "" or not torch.cuda.is_available():
            return None
        return torch.device("cuda", torch.cuda.current_device())

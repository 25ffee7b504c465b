"""How many CPU threads training uses: the cores not busy with other work.

Measured on a 2-core machine running other jobs (load average ~6): a 2-layer GPT took 2.1 s
per step with 2 threads and 0.19 s with 1, because each thread waits at every operation for
the slowest one. On an idle machine all cores are used. (Chapter 3 shows the effect.)

It is a choice to make by hand (`threads=auto_threads()`), never the default: another thread
count sums in another order, so a seeded run would give other numbers on a busier machine.
"""
from __future__ import annotations

import contextlib
import os


def auto_threads(device=None) -> int | None:
    """CPU threads for training: the cores not busy with other work, at least 1 (None off the CPU).

    Taught in chapter 3 (tutorials/03_algorithm.ipynb).
    """
    import torch

    if device is not None and torch.device(device).type != "cpu":
        return None
    current = torch.get_num_threads()
    try:
        busy = int(os.getloadavg()[0])
    except (OSError, AttributeError):  # no load average (Windows)
        return current
    return max(1, min(current, (os.cpu_count() or current) - busy))


@contextlib.contextmanager
def cpu_threads(threads: int | None):
    """Run with `threads` torch CPU threads, then put the previous number back."""
    import torch

    before = torch.get_num_threads()
    if threads and threads != before:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)

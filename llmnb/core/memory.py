"""`release_memory`: give memory that Python and torch have freed back to the operating system.

A notebook kernel lives for hours and fine-tunes model after model. On Linux, glibc's allocator
keeps freed blocks of up to 32 MB inside the process for reuse instead of returning them, and the
blocks that a training run frees (activations, gradients, AdamW's moments, serialized copies) are
exactly that size. So a kernel's resident memory grows by 100-200 MB per MiniLM run even when the
run leaves only its 87 MB of weights behind, and a tutorial that compares six runs crosses
Binder's 2 GB limit. `malloc_trim(0)` hands the free pages back; it costs milliseconds.

Called by `finetune`, `pretrain`, `quantize`, `prune` and `step_time` when they finish. Elsewhere (macOS,
Windows, musl) it only runs the garbage collector.

Also here: how much memory the process holds now (`resident_mb`) and at most while a block ran
(`RssSampler`), read by `llmnb.measure` and by the record every run keeps (core/record.py).
"""
from __future__ import annotations

import ctypes
import gc
import sys
import threading

MB = 1024 * 1024


def release_memory() -> None:
    """Collect garbage, then return freed heap pages to the OS where the C library can (glibc).

    Taught in chapter 3 (tutorials/03_algorithm.ipynb).
    """
    gc.collect()
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim with
        pass


def available_memory() -> int | None:
    """Memory this process can still use, in bytes (None where it cannot be read).

    The smaller of the machine's MemAvailable and the room left under the container's limit.
    Binder, Docker and Kubernetes enforce a cgroup limit that /proc/meminfo does not show: on a
    free Binder session MemAvailable reports the whole host (often 100+ GB) while the session is
    killed at 2 GiB.

    Taught in chapter 9 (tutorials/09_faq.ipynb).
    """
    candidates = [value for value in (_meminfo_available(), _cgroup_room()) if value is not None]
    return min(candidates) if candidates else None


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_room(root: str = "/sys/fs/cgroup", membership: str = "/proc/self/cgroup") -> int | None:
    """limit - usage of this process's memory cgroup (v2 or v1); None when no limit is set.

    `membership` lists the process's groups: "0::/path" (v2) or "4:memory:/path" (v1). Inside a
    container the path is usually "/" and the files sit at the top of `root`.
    """
    from pathlib import Path

    base, v2, v1 = Path(root), "/", "/"
    try:
        for line in open(membership):
            number, controllers, path = line.rstrip("\n").split(":", 2)
            if number == "0" and not controllers:
                v2 = path
            elif "memory" in controllers.split(","):
                v1 = path
    except (OSError, ValueError):
        pass
    tries = [(base / v2.lstrip("/"), "memory.max", "memory.current"), (base, "memory.max", "memory.current"),
             (base / "memory" / v1.lstrip("/"), "memory.limit_in_bytes", "memory.usage_in_bytes"),
             (base / "memory", "memory.limit_in_bytes", "memory.usage_in_bytes")]
    for folder, limit_file, usage_file in tries:
        limit, usage = _read_number(folder / limit_file), _read_number(folder / usage_file)
        if limit is not None and usage is not None and limit < 2**60:  # v1 writes a huge number for "no limit"
            return max(0, limit - usage)
    return None


def _read_number(path) -> int | None:
    try:
        text = open(path).read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max" means no limit


# oneDNN (torch's CPU kernels for bf16 autocast, chosen on CPUs with AVX512-BF16/AMX) keeps every
# matmul it has set up in two caches of up to 1024 entries each: oneDNN's primitive cache and
# ideep's LRU cache, keyed by shape. Fine-tuning with batches grouped by length meets new shapes
# almost every step, and each entry holds its kernel and buffers (about 0.5 MB), so a kernel's
# heap grows by 200-400 MB over a notebook's runs and is never given back (malloc_trim cannot:
# the entries are live). Measured (issue 12): chapter 6 peaked 1895 MiB with the defaults and
# 1486 with both caps at 64. But caps too small thrash: with both at 64 a LoRA step of MiniLM
# rebuilds its kernels every call and runs 50x slower (96 was fine, 64 not). 256 leaves a wide
# margin above one step's working set and still keeps the growth to about half.
ONEDNN_CACHE_CAPACITY = 256


def bound_onednn_caches(capacity: int = ONEDNN_CACHE_CAPACITY) -> None:
    """Cap oneDNN's and ideep's kernel caches at `capacity` entries, unless the user set them.

    Both read their environment variable when torch first runs a oneDNN kernel, so this must run
    before that (llmnb calls it on import); later it has no effect. Values already in the
    environment are left as they are."""
    import os

    for variable in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY"):
        os.environ.setdefault(variable, str(capacity))


def status_mb(key: str) -> float | None:
    """A 'kB' line of /proc/self/status (VmRSS, VmHWM) in MB, or None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def resident_mb() -> float | None:
    """This process's resident memory now, in MB (None where neither /proc nor psutil can tell).

    Taught in chapter 9 (tutorials/09_faq.ipynb).
    """
    value = status_mb("VmRSS")
    if value is not None:
        return value
    try:
        import psutil
    except ImportError:
        return None
    return psutil.Process().memory_info().rss / MB


class RssSampler(threading.Thread):
    """Reads the resident size every `interval` seconds and keeps the largest."""

    def __init__(self, interval: float):
        super().__init__(daemon=True)
        self.interval, self.peak, self._done = interval, resident_mb(), threading.Event()

    def run(self):
        while not self._done.wait(self.interval):
            value = resident_mb()
            if value is not None:
                self.peak = value if self.peak is None else max(self.peak, value)

    def stop(self) -> float | None:
        self._done.set()
        self.join()
        value = resident_mb()  # the end of the block counts too
        return self.peak if value is None else max(self.peak or 0.0, value)

"""Where a submitted notebook's kernel runs: confined with bubblewrap, or (said aloud) unconfined.

    sandbox = Sandbox.choose("auto")          # bwrap where it works, else none (with a warning)
    km = sandbox.kernel_manager(scratch, env, cpu_seconds=600)

With bwrap (Debian's `bubblewrap`) the kernel sees:

* the whole file system read-only, and one writable folder, `scratch`, holding the copy of the
  submission it runs (a fresh one per notebook) and its HOME; /tmp is a private empty tmpfs;
* no network: a network namespace of its own (`--unshare-net`), so even 127.0.0.1 is not the
  grader's; the kernel talks to the grader over Unix sockets in `scratch` (Jupyter's ipc transport);
* a clean environment: only the variables the grader passes (no tokens, no HF or cloud keys);
* its own process namespace: when the kernel ends, everything it started ends with it;
* a CPU-time limit (prlimit), on top of the grader's wall-clock limit and memory watch.

Without bwrap (`none`) the kernel runs with the grader's rights: it can read and write whatever the
instructor can, and reach the network. The environment is still cleaned and the limits still hold.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from llmnb.errors import LlmnbError

MODES = ("auto", "bwrap", "none")
UNCONFINED_WARNING = (
    "WARNING: bubblewrap (bwrap) is not available here, so student code runs with your rights: it can read and "
    "change your files and reach the network. Install it (apt-get install bubblewrap) or grade inside a container; "
    "pass --sandbox none to make this choice explicit and silence this warning."
)
# What a graded kernel inherits from the grader's environment; everything else (tokens, keys,
# cloud credentials) is left out.
PASSED_ON = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "PYTHONPATH", "VIRTUAL_ENV", "OMP_NUM_THREADS",
             "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "MKL_NUM_THREADS")


@functools.lru_cache(maxsize=1)
def bwrap_works() -> bool:
    """True when `bwrap` is installed and can make the namespaces it needs here."""
    binary = shutil.which("bwrap")
    if binary is None:
        return False
    try:
        probe = subprocess.run([binary, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-net",
                                "--unshare-pid", "--die-with-parent", "true"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def needed_under_tmp() -> list[str]:
    """Folders under /tmp that the kernel must read: the Python environment and llmnb itself when
    they live there (a clone or a virtualenv in /tmp). Inside the sandbox /tmp is a fresh empty
    tmpfs, so these are bound back on top of it, read-only; without them the kernel cannot start."""
    import sys

    package_root = Path(__file__).resolve().parents[2]  # the folder holding llmnb/
    wanted = {sys.prefix, sys.base_prefix, str(package_root), *sys.path}
    found = sorted({str(Path(p).resolve()) for p in wanted if p and Path(p).exists()})
    under = [p for p in found if p.startswith("/tmp/")]
    return [p for p in under if not any(p.startswith(q + "/") for q in under if q != p)]  # outermost only


def clean_environment(scratch: Path, extra: dict[str, str]) -> dict[str, str]:
    """The kernel's whole environment: a few harmless variables of the grader's, HOME and the
    caches inside `scratch`, and `extra` (the grading variables)."""
    env = {k: os.environ[k] for k in PASSED_ON if k in os.environ}
    env.update(HOME=str(scratch), HF_HOME=str(scratch / ".cache" / "huggingface"), MPLCONFIGDIR=str(scratch / ".matplotlib"),
               JUPYTER_RUNTIME_DIR=str(scratch / ".jupyter-runtime"), TOKENIZERS_PARALLELISM="false")
    env.update(extra)
    return env


@dataclass(frozen=True)
class Sandbox:
    """How graded kernels run: `mode` is "bwrap" (confined) or "none" (the grader's rights)."""

    mode: str

    @classmethod
    def choose(cls, mode: str = "auto") -> "Sandbox":
        """`auto`: bwrap when it works here, else none. `bwrap` when it does not work is an error."""
        if mode not in MODES:
            raise LlmnbError(f"--sandbox {mode!r} is not one of {', '.join(MODES)}.")
        if mode == "none":
            return cls("none")
        if bwrap_works():
            return cls("bwrap")
        if mode == "bwrap":
            raise LlmnbError("--sandbox bwrap: bubblewrap is not installed or cannot create namespaces here "
                             "(apt-get install bubblewrap; inside a container, grade with --sandbox none).")
        return cls("none")

    @property
    def confined(self) -> bool:
        return self.mode == "bwrap"

    def prefix(self, scratch: Path, cpu_seconds: int | None) -> list[str]:
        """The command that the kernel's own command line is appended to."""
        limit = ["prlimit", f"--cpu={cpu_seconds}", "--"] if cpu_seconds and shutil.which("prlimit") else []
        if not self.confined:
            return limit
        kept = [arg for path in needed_under_tmp() for arg in ("--ro-bind", path, path)]
        return ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", *kept,
                "--bind", str(scratch), str(scratch),
                "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent",
                # In its own process namespace the kernel cannot see the grader's pid, so it would
                # take its parent for gone and quit; bwrap's --die-with-parent does that job instead.
                "--setenv", "JPY_PARENT_PID", "1",
                "--new-session", "--", *limit]

    def kernel_manager_class(self, scratch: Path, cpu_seconds: int | None):
        """A jupyter_client kernel manager class (asynchronous, as nbclient drives it) whose kernels
        start inside this sandbox and talk to the grader over Unix sockets in `scratch` (a kernel
        without network cannot use TCP)."""
        from jupyter_client import AsyncKernelManager

        prefix = self.prefix(scratch, cpu_seconds)

        class ConfinedKernelManager(AsyncKernelManager):
            def __init__(self, **kwargs):
                super().__init__(transport="ipc", ip=str(scratch / "kernel"), connection_file=str(scratch / "kernel.json"),
                                 **kwargs)

            def format_kernel_cmd(self, extra_arguments=None):
                return [*prefix, *super().format_kernel_cmd(extra_arguments)]

            async def interrupt_kernel(self):
                # A signal would reach bwrap (or prlimit's process), not the kernel inside it, and
                # end them both: ask the kernel itself, on its control channel.
                self._connect_control_socket()
                self.session.send(self._control_socket, self.session.msg("interrupt_request", content={}))

        return ConfinedKernelManager


class MemoryWatch(threading.Thread):
    """Kills a process tree whose resident memory passes `limit_mb`; `tripped` then says so.
    Polled every 0.2 s: a kernel filling memory a page at a time is stopped within a fraction of
    a second past the limit."""

    def __init__(self, pid: int, limit_mb: float, interval: float = 0.2):
        super().__init__(daemon=True)
        self.pid, self.limit_mb, self.interval = pid, limit_mb, interval
        self.tripped, self.peak_mb, self._done = False, 0.0, threading.Event()

    def _tree(self):
        import psutil

        root = psutil.Process(self.pid)
        return [root, *root.children(recursive=True)]

    def run(self):
        import psutil

        while not self._done.wait(self.interval):
            try:
                tree = self._tree()
                resident = sum(p.memory_info().rss for p in tree) / 2**20
            except psutil.Error:
                continue
            self.peak_mb = max(self.peak_mb, resident)
            if resident > self.limit_mb:
                self.tripped = True
                for process in reversed(tree):
                    try:
                        process.kill()
                    except psutil.Error:
                        pass
                return

    def stop(self):
        self._done.set()


def describe(sandbox: Sandbox) -> str:
    """One line for the grader's printout."""
    if sandbox.confined:
        return "student code runs in bubblewrap: files read-only but for its own scratch folder, no network, a clean environment"
    return "student code runs unconfined, with your rights (--sandbox none)"

"""Run one notebook in a fresh, confined kernel, under time and memory limits, and read values out of it.

The notebook is copied into a fresh scratch folder and runs there (so its runs/ folder never lands in
the submissions), top to bottom, like "Restart Kernel and Run All Cells", with a clean environment
(llmnb.classroom.sandbox: no tokens or keys of the grader's) plus

    LLMNB_PROFILE=fast  LLMNB_QUIET=1  HF_HUB_OFFLINE=1

It stops at the first cell that raises (unless `keep_going`, as nbgrader's autograder does), when
the kernel dies, when the notebook's time limit runs out or when its memory passes the limit; then
the kernel is killed. Cells are numbered from 1 at the top of the notebook, markdown cells included.

Then, while the kernel still lives, `read` (name -> Python expression) is evaluated in it by one
cell of the grader's own, appended after the student's (llmnb.classroom.values): its printout
carries a nonce made only now, so nothing the student's cells printed or wrote can pass for it.
"""
from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from llmnb.classroom.sandbox import MemoryWatch, Sandbox, clean_environment
from llmnb.classroom.values import read_in_kernel
from llmnb.errors import LlmnbError

GRADING_ENV = {"LLMNB_PROFILE": "fast", "LLMNB_QUIET": "1", "HF_HUB_OFFLINE": "1"}
READ_SECONDS = 120  # for the grader's own cell, on top of the notebook's limit
INTERRUPTED_READ_SECONDS = 15  # the same after the notebook ran out of time and was interrupted


@dataclass
class Outcome:
    """What happened to one notebook. `stop`: "" (it ran to the end), "error" (a cell raised),
    "timeout", "memory" (its memory passed the limit), "died" (the kernel died: the code exited
    it, or it passed the CPU-time limit), "unreadable" or "no kernel"; `cell`: the 1-based cell
    where it stopped; `error`: "NameError: name 'x' ..."; `failed`: every cell that raised,
    cell -> error (more than one only with keep_going); `values`: what `read` evaluated to in the
    kernel afterwards (name -> value, or {"error": ...}), empty when the kernel could not be asked."""

    values: dict = field(default_factory=dict)
    stop: str = ""
    cell: int | None = None
    error: str = ""
    failed: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0


def _need_nbclient():
    try:
        import nbclient
        import nbformat
    except ImportError:
        raise LlmnbError("Grading runs the notebooks with nbclient and nbformat, which are not installed: "
                         "pip install 'llmnb[lab]' (or pip install nbclient nbformat ipykernel).") from None
    return nbclient, nbformat


def check_kernel(kernel: str) -> None:
    """Refuse early, before any notebook runs, when there is no Jupyter kernel of that name."""
    _need_nbclient()
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(kernel)
    except NoSuchKernel:
        names = ", ".join(sorted(KernelSpecManager().find_kernel_specs())) or "none"
        raise LlmnbError(f"There is no Jupyter kernel called {kernel!r} (installed: {names}). Pass --kernel NAME, "
                         "or install one: python -m ipykernel install --user") from None


def describe(ename: str, evalue: str) -> str:
    """'NameError: name x is not defined', on one short line."""
    first = (str(evalue).strip().splitlines() or [""])[0]
    first = first if len(first) <= 100 else first[:99] + "…"
    return f"{ename}: {first}" if first else ename


def _error_of(cell) -> str | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return describe(output.get("ename", "Error"), output.get("evalue", ""))
    return None


def _run_cells(client, nb, outcome: Outcome, timeout: float, keep_going: bool) -> None:
    """Execute the cells in order under one deadline for them all; fills in `outcome`."""
    from nbclient.exceptions import CellTimeoutError

    began = time.monotonic()
    try:
        for index, cell in enumerate(nb.cells):
            outcome.cell = index + 1
            left = timeout - (time.monotonic() - began)
            if left <= 0:
                raise CellTimeoutError(f"no time left before cell {index + 1}")
            client.timeout = max(1, math.ceil(left))  # nbclient's limit is per cell: give it what is left
            client.execute_cell(cell, index)
            error = _error_of(cell)
            if error:
                outcome.failed[index + 1] = error
                if not keep_going and "raises-exception" not in cell.metadata.get("tags", []):
                    outcome.stop, outcome.error = "error", error
                    return
        outcome.cell = None
    finally:
        outcome.seconds = time.monotonic() - began


def run_notebook(path, timeout: float = 600, keep_going: bool = False, kernel: str = "python3", read=None,
                 read_setup: str = "", sandbox: Sandbox | None = None, memory_mb: float = 4096) -> Outcome:
    """Run the notebook at `path` in a fresh kernel (a copy of it in a scratch folder; `path` is not
    changed) for at most `timeout` seconds of cell time and `memory_mb` of resident memory, inside
    `sandbox` (default: unconfined), then evaluate `read` (name -> expression; `read_setup`: code
    run first, e.g. imports) in the kernel; return the Outcome."""
    nbclient, nbformat = _need_nbclient()
    from jupyter_core.utils import run_sync
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    sandbox = sandbox or Sandbox("none")
    outcome = Outcome()
    with tempfile.TemporaryDirectory(prefix="llmnb-grade-") as tmp:
        scratch = Path(tmp)
        workdir = scratch / "work"
        workdir.mkdir()
        try:
            copy = workdir / Path(path).name
            shutil.copyfile(path, copy)
            nb = nbformat.read(copy, as_version=4)
        except Exception as e:  # not JSON, not a notebook, an unreadable file
            outcome.stop, outcome.error = "unreadable", describe(type(e).__name__, str(e))
            return outcome
        env = clean_environment(scratch, {**GRADING_ENV, "LLMNB_RUNS_DIR": str(workdir / "runs")})
        cpu_seconds = math.ceil(timeout * (os.cpu_count() or 1)) + READ_SECONDS
        client = nbclient.NotebookClient(nb, kernel_name=kernel, kernel_manager_class=sandbox.kernel_manager_class(scratch, cpu_seconds),
                                         allow_errors=True, shutdown_kernel="immediate", resources={"metadata": {"path": str(workdir)}})
        # The kernel process's own start-up notices would interleave with the grader's lines: dropped.
        # (What the cells print reaches the notebook through Jupyter's messages, not through these.)
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        watch = None
        try:
            with client.setup_kernel(env=env, **quiet):
                watch = MemoryWatch(client.km.provisioner.process.pid, memory_mb)
                watch.start()
                try:
                    _run_cells(client, nb, outcome, timeout, keep_going)
                    client.timeout = READ_SECONDS
                except CellTimeoutError:
                    # Interrupted, the hung cell ends and what came before it can still be read;
                    # code that ignores the interrupt gives the read only a short wait. A new
                    # client: nbclient leaves the timed-out cell's reader on the old one's channel,
                    # where it would swallow the next cell's output.
                    outcome.stop = "timeout"
                    run_sync(client.km.interrupt_kernel)()
                    client.kc.stop_channels()
                    client.start_new_kernel_client()
                    client.timeout = INTERRUPTED_READ_SECONDS
                if read:
                    try:
                        outcome.values = read_in_kernel(client, read, read_setup)
                    except CellTimeoutError:
                        if outcome.stop != "timeout":
                            raise
        except CellTimeoutError:  # the grader's own cell ran out of time
            outcome.stop = "timeout"
        except DeadKernelError:
            outcome.stop, outcome.error = "died", "the kernel died (the code ended the process, or it used up its CPU time)"
        except Exception as e:  # the kernel would not start, or the connection to it broke
            outcome.stop = "died" if outcome.cell else "no kernel"
            outcome.error = describe(type(e).__name__, str(e))
        finally:
            if watch is not None:
                watch.stop()
        if watch is not None and watch.tripped:
            outcome.stop, outcome.error = "memory", f"its memory passed the {memory_mb:,.0f} MB limit"
            outcome.values = {}
    return outcome

"""Run one submitted notebook in a fresh kernel, under a time limit, and read its grade log.

The notebook is copied into a temporary folder and runs there (so its runs/ folder never lands in
the submissions), top to bottom, like "Restart Kernel and Run All Cells", with

    LLMNB_PROFILE=fast  LLMNB_QUIET=1  HF_HUB_OFFLINE=1  LLMNB_GRADE_LOG=<a temporary .jsonl>

on top of the grader's own environment. Every `check()` call appends a line to that log
(llmnb.check), which is how the grader learns what was checked and whether it was right.

It stops at the first cell that raises (unless `keep_going`, as nbgrader's autograder does), when
the kernel dies, or when the notebook's time limit runs out; then the kernel is killed. Cells
are numbered from 1 at the top of the notebook, markdown cells included.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from llmnb.errors import LlmnbError

GRADING_ENV = {"LLMNB_PROFILE": "fast", "LLMNB_QUIET": "1", "HF_HUB_OFFLINE": "1"}


@dataclass
class Outcome:
    """What happened to one notebook. `stop`: "" (it ran to the end), "error" (a cell raised),
    "timeout", "died" (the kernel died: out of memory, or the code exited it), "unreadable" or
    "no kernel"; `cell`: the 1-based cell where it stopped; `error`: "NameError: name 'x' ...";
    `failed`: every cell that raised, cell -> error (more than one only with keep_going);
    `checks`: the lines of the grade log, {"id", "ok", "question"}, in the order they ran."""

    checks: list[dict] = field(default_factory=list)
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


def read_log(path: Path) -> list[dict]:
    """The grade log's lines; a line that is not JSON (the kernel died mid-write) is skipped."""
    entries = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return entries
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and "id" in entry:
            entries.append(entry)
    return entries


def kernel_env(workdir: Path, log: Path) -> dict[str, str]:
    """The grader's environment with the grading variables set; no MPLBACKEND, so plots are inline
    as in a student's kernel; runs/ goes to the working folder."""
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env.update(GRADING_ENV, LLMNB_GRADE_LOG=str(log), LLMNB_RUNS_DIR=str(workdir / "runs"))
    return env


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


def run_notebook(path, timeout: float = 600, keep_going: bool = False, kernel: str = "python3") -> Outcome:
    """Run the notebook at `path` in a fresh kernel (a temporary copy of it; `path` is not
    changed) for at most `timeout` seconds of cell time, and return its Outcome."""
    nbclient, nbformat = _need_nbclient()
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    outcome = Outcome()
    with tempfile.TemporaryDirectory(prefix="llmnb-grade-") as tmp:
        workdir, log = Path(tmp) / "work", Path(tmp) / "grade-log.jsonl"
        workdir.mkdir()
        try:
            copy = workdir / Path(path).name
            shutil.copyfile(path, copy)
            nb = nbformat.read(copy, as_version=4)
        except Exception as e:  # not JSON, not a notebook, an unreadable file
            outcome.stop, outcome.error = "unreadable", describe(type(e).__name__, str(e))
            return outcome
        client = nbclient.NotebookClient(nb, kernel_name=kernel, allow_errors=True, shutdown_kernel="immediate",
                                         resources={"metadata": {"path": str(workdir)}})
        # The kernel process's own start-up notices would interleave with the grader's lines: dropped.
        # (What the cells print reaches the notebook through Jupyter's messages, not through these.)
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        try:
            with client.setup_kernel(env=kernel_env(workdir, log), **quiet):
                _run_cells(client, nb, outcome, timeout, keep_going)
        except CellTimeoutError:
            outcome.stop = "timeout"
        except DeadKernelError:
            outcome.stop, outcome.error = "died", "the kernel died (out of memory, or the code ended the process)"
        except Exception as e:  # the kernel would not start, or the connection to it broke
            outcome.stop = "died" if outcome.cell else "no kernel"
            outcome.error = describe(type(e).__name__, str(e))
        outcome.checks = read_log(log)
    return outcome

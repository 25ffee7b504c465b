"""grading: what confining student code costs the classroom grader.

    .venv/bin/python benchmarks/grading.py [--quick]

A class of copies of the quickstart (tutorials/00_quickstart.ipynb with its exercises solved and
its self-check answers blank, run in the fast profile as the grader does) is graded twice per round, once with every kernel inside bubblewrap
(--sandbox bwrap: read-only files, no network, its own namespaces, a CPU-time limit) and once
unconfined (--sandbox none), the order alternating between rounds. Both gradings read the answers
out of the kernels and judge them against the same release's keys. `sandbox_cost_ratio` is the
median over rounds of (bwrap seconds / none seconds); the goal is <= 1.2. Both gradings must give
every student the same rows.
"""
from __future__ import annotations

import json
from dataclasses import astuple
import shutil
import tempfile
import time
from pathlib import Path

import common
from common import Section, interleave, median, spread

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "tutorials" / "00_quickstart.ipynb"
# quick: the class of 10 the goal names, graded once each way (about 10 minutes on 2 quiet cores).
SETTINGS = {"quick": dict(students=10, rounds=1), "full": dict(students=10, rounds=3), "smoke": dict(students=1, rounds=1)}


def _class(folder: Path, released: Path, students: int) -> Path:
    """`students` copies of the released quickstart, with the instructor's solutions put back."""
    source = json.loads(QUICKSTART.read_text())
    copy = json.loads((released / QUICKSTART.name).read_text())
    for index, cell in enumerate(source["cells"]):
        if cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
            copy["cells"][index]["source"] = cell["source"]
    submissions = folder / "submitted"
    for n in range(students):
        (submissions / f"student{n:02d}").mkdir(parents=True)
        (submissions / f"student{n:02d}" / QUICKSTART.name).write_text(json.dumps(copy))
    return submissions


def run(quick: bool) -> Section:
    from llmnb.classroom.grade import grade
    from llmnb.classroom.release import release
    from llmnb.classroom.sandbox import bwrap_works

    if not bwrap_works():
        return Section({"sandbox_cost_ratio": None}, [], "skipped: bubblewrap is not installed here")
    settings = common.pick(SETTINGS, quick)
    work = Path(tempfile.mkdtemp(prefix="llmnb-bench-grading-"))
    try:
        release(QUICKSTART, work / "release", echo=None)
        submissions = _class(work, work / "release", settings["students"])
        found = {}

        def graded(mode):
            def contender():
                began = time.perf_counter()
                rows = grade(submissions, out=work / f"{mode}.csv", release=work / "release", sandbox=mode, echo=None)
                found.setdefault(mode, [astuple(row)[:5] for row in rows])
                return {"seconds": time.perf_counter() - began, "points": sum(row.points for row in rows)}
            return contender

        results = interleave({"bwrap": graded("bwrap"), "none": graded("none")}, settings["rounds"], "grading")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert found["bwrap"] == found["none"], "the confined and the unconfined grading gave different rows"
    ratios = [b["seconds"] / n["seconds"] for b, n in zip(results["bwrap"], results["none"])]
    summary = {
        "sandbox_cost_ratio": median(ratios),
        "sandbox_cost_spread": spread(ratios),
        "grading_seconds": {mode: round(median([r["seconds"] for r in rows]), 1) for mode, rows in results.items()},
        "graded_students": settings["students"],
    }
    notes = {"sandbox_cost_ratio": ("grading seconds in bubblewrap / unconfined, the same class",
                                    f"{settings['students']} quickstarts, {len(ratios)} rounds, spread {summary['sandbox_cost_spread']}")}
    return Section(summary, common.round_rows(results), f"grading {settings['students']} copies of the quickstart, "
                   "confined (bwrap) and unconfined, interleaved", notes)


if __name__ == "__main__":
    common.main_for(run)

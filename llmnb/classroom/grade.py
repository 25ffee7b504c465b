"""Grade a class's submitted notebooks into a CSV: one row per student and question.

    python -m llmnb.classroom grade submitted/ --out grades.csv [--release student/] [--timeout 600]

A student is a folder directly under SUBMISSIONS; their notebooks sit in it or one folder deeper
(nbgrader's submitted/<student>/<assignment>/<notebook>.ipynb). Each notebook runs in a fresh
kernel (llmnb.classroom.execute) and its grade log says which checks ran and how they went.

Each row has a status: correct, wrong, missing (the question's check is not in the notebook, or
never ran although the notebook finished), not run (the notebook stopped before the check: a cell
raised, the kernel died), or timed out; 1 point for correct, else 0; and a detail saying why.
When a check runs more than once, the last run counts.

The questions expected of each notebook come from the release manifest (`--release`, else a
release.json in SUBMISSIONS or its parent), else from the course's own tutorials/ next to the
package, else from what the submitted notebook itself checks.
"""
from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Callable

from llmnb.classroom.cells import notebook_questions, question_cells, read_notebook
from llmnb.classroom.execute import Outcome, check_kernel, run_notebook
from llmnb.classroom.release import MANIFEST
from llmnb.errors import LlmnbError

STATUSES = ("correct", "wrong", "missing", "not run", "timed out")
COLUMNS = ("student", "notebook", "question", "status", "points", "detail")
COURSE = Path(__file__).resolve().parents[2] / "tutorials"  # the course's own notebooks, in a source checkout
SKIP = {"__pycache__", ".ipynb_checkpoints"}  # folders under SUBMISSIONS that are not students


@dataclass(frozen=True)
class Row:
    """One line of the grades CSV."""

    student: str
    notebook: str
    question: str
    status: str
    points: int
    detail: str = ""


def find_submissions(folder: Path) -> dict[str, dict[str, Path]]:
    """student -> {notebook -> file}. A notebook is named by its file name, whichever of the two
    layouts the student used; by its path in the student's folder only when two share a name."""
    if not folder.is_dir():
        raise LlmnbError(f"There is no folder {folder}. Give the folder that holds one folder per student: "
                         "SUBMISSIONS/<student>/<notebook>.ipynb (or nbgrader's SUBMISSIONS/<student>/<assignment>/).")
    students = {}
    for student in sorted(p for p in folder.iterdir() if p.is_dir()):
        if student.name.startswith(".") or student.name in SKIP:
            continue
        found = [p for p in sorted([*student.glob("*.ipynb"), *student.glob("*/*.ipynb")])
                 if p.is_file() and not any(part.startswith(".") for part in p.relative_to(student).parts)]
        names = Counter(p.name for p in found)
        notebooks = {(p.name if names[p.name] == 1 else p.relative_to(student).as_posix()): p for p in found}
        if notebooks:
            students[student.name] = notebooks
    if not students:
        raise LlmnbError(f"No submissions in {folder}: expected one folder per student holding notebooks, "
                         f"e.g. {folder / 'alice' / '03_algorithm.ipynb'} or {folder / 'alice' / 'week3' / '03_algorithm.ipynb'}.")
    return students


def _manifest_file(submissions: Path, release) -> Path | None:
    if release is not None:
        path = Path(release)
        path = path / MANIFEST if path.is_dir() else path
        if not path.is_file():
            raise LlmnbError(f"No release manifest at {path}: give the folder that `python -m llmnb.classroom release` "
                             f"wrote (it holds {MANIFEST}), or the {MANIFEST} file itself.")
        return path
    return next((p for p in (submissions / MANIFEST, submissions.parent / MANIFEST) if p.is_file()), None)


def expected_questions(submissions: Path, release=None) -> tuple[dict[str, list[str]], str, bool]:
    """Notebook file name -> its question ids; where they came from (for the printout); and
    whether that is a release manifest (then only the notebooks it lists are graded)."""
    path = _manifest_file(submissions, release)
    if path is not None:
        try:
            notebooks = json.loads(path.read_text(encoding="utf-8"))["notebooks"]
            return {name: list(entry["questions"]) for name, entry in notebooks.items()}, str(path), True
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise LlmnbError(f"{path} is not a release manifest ({type(e).__name__}: {e}); "
                             "make it again with `python -m llmnb.classroom release`.") from None
    if COURSE.is_dir():
        found = {}
        for notebook in sorted(COURSE.glob("*.ipynb")):
            try:
                found[notebook.name] = notebook_questions(read_notebook(notebook))
            except LlmnbError:
                continue
        if found:
            return found, f"the course's notebooks in {COURSE}", False
    return {}, "the checks in each submitted notebook (no release manifest found)", False


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def rows_for(student: str, notebook: str, outcome: Outcome | None, expected: list[str] | None,
             in_notebook: dict[str, int], timeout: float) -> list[Row]:
    """The rows of one student's notebook. `outcome` is None when the student did not submit it;
    `expected` is None when no manifest knows the notebook (then: what it checks and what ran);
    `in_notebook`: question -> the cell that checks it in the submitted copy."""
    if outcome is None:
        return [Row(student, notebook, q, "missing", 0, f"no {notebook} in this submission") for q in expected or [""]]
    ran: dict[str, list[bool]] = {}
    for entry in outcome.checks:
        ran.setdefault(str(entry["id"]), []).append(bool(entry.get("ok")))
    questions = list(expected) if expected is not None else list(dict.fromkeys([*in_notebook, *ran]))
    if not questions and outcome.stop:  # nothing known to grade, but say what went wrong
        questions = [""]
    rows = []
    for question in questions:
        cell = in_notebook.get(question)
        if question in ran:
            results = ran[question]
            status = "correct" if results[-1] else "wrong"
            detail = f"checked {len(results)} times; the last counts" if len(results) > 1 else ""
        elif outcome.stop in ("unreadable", "no kernel"):
            status = "not run"
            detail = ("cannot read the notebook: " if outcome.stop == "unreadable" else "the kernel did not start: ") + outcome.error
        elif question and cell is None:
            status, detail = "missing", f"no check('{question}', ...) call in the notebook"
        elif outcome.stop and (not question or cell >= outcome.cell):
            status = "timed out" if outcome.stop == "timeout" else "not run"
            detail = {"timeout": f"cell {outcome.cell} was still running when the {timeout:g} s limit ran out",
                      "error": f"cell {outcome.cell} raised {outcome.error}"}.get(outcome.stop, f"cell {outcome.cell}: {outcome.error}")
        elif cell in outcome.failed:  # keep_going: the check's own cell raised, the notebook went on
            status, detail = "not run", f"cell {cell} raised {outcome.failed[cell]}"
        else:
            status, detail = "missing", f"check('{question}', ...) is in cell {cell} but never ran"
        rows.append(Row(student, notebook, question, status, int(status == "correct"), detail))
    return rows


def write_csv(rows: list[Row], path) -> Path:
    path = Path(path)
    if path.parent != Path(""):
        path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows(astuple(row) for row in rows)
    return path


def summary_table(rows: list[Row]) -> str:
    """One line per student: points out of questions, and how many rows had each status."""
    students = list(dict.fromkeys(row.student for row in rows))
    width = max([len("student"), *map(len, students)])
    head = f"{'student':<{width}}  {'points':>7}  " + "  ".join(f"{s:>9}" for s in STATUSES)
    lines = [head, "-" * len(head)]
    for student in students:
        mine = [row for row in rows if row.student == student]
        counts = Counter(row.status for row in mine)
        points = f"{sum(row.points for row in mine)}/{len(mine)}"
        lines.append(f"{student:<{width}}  {points:>7}  " + "  ".join(f"{counts[s]:>9}" for s in STATUSES))
    return "\n".join(lines)


def grade(submissions, out="grades.csv", release=None, timeout: float = 600, keep_going: bool = False,
          kernel: str = "python3", echo: Callable[[str], None] | None = print) -> list[Row]:
    """Run every submitted notebook under `submissions` and write `out`, a CSV with one row per
    student x question (columns: student, notebook, question, status, points, detail).
    Returns the rows. A notebook that raises, hangs past `timeout` seconds or lost its checks
    gets rows that say so; the others are graded all the same."""
    say = echo or (lambda line: None)
    if timeout <= 0:
        raise LlmnbError(f"timeout={timeout!r}: the time limit per notebook must be a positive number of seconds.")
    submissions = Path(submissions)
    students = find_submissions(submissions)
    expected, origin, listed_only = expected_questions(submissions, release)
    check_kernel(kernel)
    notebooks = sorted({name for found in students.values() for name in found})
    if listed_only:  # a scratch notebook or a renamed copy is not part of the assignment
        for name in [n for n in notebooks if Path(n).name not in expected]:
            owners = ", ".join(student for student, found in students.items() if name in found)
            say(f"skipped {name} ({owners}): the release does not list it")
        notebooks = [n for n in notebooks if Path(n).name in expected]
        if not notebooks:
            raise LlmnbError(f"None of the submitted notebooks is listed in {origin}, which lists "
                             f"{', '.join(expected) or 'no notebook'}. Pass --release with the release of this assignment.")
    say(f"grading {_plural(len(students), 'student')}, {_plural(len(notebooks), 'notebook')}; the questions come from "
        f"{origin}" + ("" if listed_only or not expected else " (for a notebook not listed there: from its own checks)"))
    rows = []
    for student, found in students.items():
        for notebook in notebooks:
            wanted = expected.get(Path(notebook).name)
            path = found.get(notebook)
            if path is None:
                rows += rows_for(student, notebook, None, wanted, {}, timeout)
                say(f"{student}  {notebook}: not submitted")
                continue
            outcome = run_notebook(path, timeout=timeout, keep_going=keep_going, kernel=kernel)
            try:
                in_notebook = question_cells(read_notebook(path)["cells"])
            except LlmnbError:
                in_notebook = {}
            mine = rows_for(student, notebook, outcome, wanted, in_notebook, timeout)
            rows += mine
            counts = Counter(row.status for row in mine)
            stopped = f"; stopped at cell {outcome.cell} ({outcome.stop})" if outcome.stop else ""
            say(f"{student}  {notebook}: " + ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
                + f" ({outcome.seconds:.0f} s{stopped})")
    path = write_csv(rows, out)
    say("")
    say(summary_table(rows))
    say(f"\n{_plural(len(rows), 'row')} written to {path}")
    return rows

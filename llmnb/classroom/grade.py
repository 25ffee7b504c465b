"""Grade a class's submitted notebooks into a CSV: one row per student and question.

    python -m llmnb.classroom grade submitted/ --out grades.csv [--release student/] [--timeout 600]
                                               [--sandbox auto|bwrap|none] [--memory 4096]

A student is a folder directly under SUBMISSIONS; their notebooks sit in it or one folder deeper
(nbgrader's submitted/<student>/<assignment>/<notebook>.ipynb). Each notebook runs in a fresh,
confined kernel (llmnb.classroom.execute, llmnb.classroom.sandbox). After the student's cells, a
cell of the grader's reads each question's answer (the expression the released `check(ID, ANSWER)`
names) out of the kernel as plain values, under a nonce made only then; the grader judges those
values against the release's keys in its own process (llmnb.check.judge). So nothing the student's
code does earlier (a forged log, a patched `check`, printouts made to look like the grader's)
changes a mark: the only way to a point is to hand back the right value.

Each row has a status: correct, wrong, missing (the answer is not in the notebook), not run (the
notebook stopped before the question: a cell raised, the kernel died), timed out, or out of memory;
1 point for correct, else 0; and a detail saying why.

The questions and their keys come from the release manifest (`--release`, else a release.json in
SUBMISSIONS or its parent), else, for the course's own notebooks, from one run of the tutorial.
"""
from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Callable

from llmnb.check import judge
from llmnb.classroom.cells import notebook_answers, notebook_questions, question_cells, read_notebook
from llmnb.classroom.execute import Outcome, check_kernel, run_notebook
from llmnb.classroom.release import KEY_READER, MANIFEST, compute_keys
from llmnb.classroom.sandbox import UNCONFINED_WARNING, Sandbox
from llmnb.classroom.sandbox import describe as describe_sandbox
from llmnb.errors import LlmnbError

STATUSES = ("correct", "wrong", "missing", "not run", "timed out", "out of memory")
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


@dataclass(frozen=True)
class Key:
    """What grading one notebook needs: its question ids in order, the answer expression each
    `check(...)` names, and each question's key (llmnb.check.key_of)."""

    questions: tuple
    answers: dict
    keys: dict


def keys_for(submissions: Path, release=None, timeout: float = 1200, sandbox=None,
             echo: Callable[[str], None] = lambda line: None) -> tuple[dict, str, bool]:
    """Notebook file name -> its Key; where they came from (for the printout); and whether that is
    a release manifest (then only the notebooks it lists are graded). Without a manifest, the
    course's own notebooks are run once each here for their keys."""
    path = _manifest_file(submissions, release)
    if path is not None:
        try:
            notebooks = json.loads(path.read_text(encoding="utf-8"))["notebooks"]
            found = {name: Key(tuple(entry["questions"]), dict(entry.get("answers", {})), dict(entry.get("keys", {})))
                     for name, entry in notebooks.items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise LlmnbError(f"{path} is not a release manifest ({type(e).__name__}: {e}); "
                             "make it again with `python -m llmnb.classroom release`.") from None
        unkeyed = [name for name, key in found.items() if set(key.questions) - set(key.keys)]
        if unkeyed:
            raise LlmnbError(f"{path} holds no keys for {', '.join(unkeyed)} (released with --no-keys, or by an older "
                             "llmnb), so its answers cannot be judged. Make the release again with keys: "
                             "`python -m llmnb.classroom release SOURCE OUT`.")
        return found, str(path), True
    return {}, f"the course's notebooks in {COURSE}", False


def _course_key(name: str, timeout: float, sandbox, echo) -> Key | None:
    """The Key of one of the course's own notebooks, from one run of it (None: not one of them)."""
    source = COURSE / Path(name).name
    if not source.is_file():
        return None
    nb = read_notebook(source)
    questions, answers = notebook_questions(nb), notebook_answers(nb)
    echo(f"no release manifest: running the course's {source.name} once, solutions in place, for its keys")
    return Key(tuple(questions), answers, compute_keys(source, answers, timeout, sandbox) if questions else {})


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def _value_of(outcome: Outcome, question: str):
    """(has a value, the value or the error text) of a question's answer read from the kernel."""
    value = outcome.values.get(question, {"error": ""})
    if isinstance(value, dict) and set(value) == {"error"}:
        return False, value["error"]
    return True, value


def rows_for(student: str, notebook: str, outcome: Outcome | None, key: Key | None, in_notebook: dict[str, int],
             timeout: float) -> list[Row]:
    """The rows of one student's notebook. `outcome` is None when the student did not submit it;
    `key` says what to ask and how to judge; `in_notebook`: question -> the cell that checks it in
    the submitted copy (to say why a question has no answer: it came after the cell that stopped)."""
    questions = list(key.questions) if key is not None else []
    if outcome is None:
        return [Row(student, notebook, q, "missing", 0, f"no {notebook} in this submission") for q in questions or [""]]
    if not questions and outcome.stop:  # nothing known to grade, but say what went wrong
        questions = [""]
    rows = []
    for question in questions:
        cell = in_notebook.get(question)
        has_value, value = _value_of(outcome, question) if question else (False, "")
        after_stop = outcome.stop and (cell is None or outcome.cell is None or cell >= outcome.cell)
        if has_value:
            status, detail = ("correct" if judge(key.keys[question], value) else "wrong"), ""
        elif outcome.stop in ("unreadable", "no kernel"):
            status = "not run"
            detail = ("cannot read the notebook: " if outcome.stop == "unreadable" else "the kernel did not start: ") + outcome.error
        elif outcome.stop == "memory":
            status, detail = "out of memory", f"the kernel was stopped at cell {outcome.cell}: {outcome.error}"
        elif outcome.stop == "timeout" and after_stop:
            status, detail = "timed out", f"cell {outcome.cell} was still running when the {timeout:g} s limit ran out"
        elif outcome.stop in ("error", "died") and after_stop and cell is not None:
            status = "not run"
            detail = f"cell {outcome.cell} raised {outcome.error}" if outcome.stop == "error" else f"cell {outcome.cell}: {outcome.error}"
        elif cell is not None and cell in outcome.failed:  # keep_going: the question's own cell raised
            status, detail = "not run", f"cell {cell} raised {outcome.failed[cell]}"
        elif value.startswith("NameError"):
            answer = key.answers.get(question) or "its answer"
            status, detail = "missing", f"{answer} is not defined in the notebook"
        else:  # the answer is there but is not of the kind asked (gradable raised): a wrong answer
            status, detail = "wrong", ""
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


GRADE_READER = KEY_READER  # the grader's cell imports llmnb.check under a name no notebook uses


def grade(submissions, out="grades.csv", release=None, timeout: float = 600, keep_going: bool = False,
          kernel: str = "python3", echo: Callable[[str], None] | None = print, sandbox: str = "auto",
          memory_mb: float = 4096) -> list[Row]:
    """Run every submitted notebook under `submissions` and write `out`, a CSV with one row per
    student x question (columns: student, notebook, question, status, points, detail).
    Each notebook runs in `sandbox` ("auto": bubblewrap where it works, else unconfined with a
    warning; "bwrap"; "none"), for at most `timeout` seconds and `memory_mb` of memory.
    Returns the rows. A notebook that raises, hangs, runs out of memory or lost its answers gets
    rows that say so; the others are graded all the same."""
    say = echo or (lambda line: None)
    if timeout <= 0:
        raise LlmnbError(f"timeout={timeout!r}: the time limit per notebook must be a positive number of seconds.")
    if memory_mb <= 0:
        raise LlmnbError(f"memory={memory_mb!r}: the memory limit per notebook must be a positive number of MB.")
    submissions = Path(submissions)
    students = find_submissions(submissions)
    confinement = Sandbox.choose(sandbox)
    keys, origin, listed_only = keys_for(submissions, release)
    check_kernel(kernel)
    notebooks = sorted({name for found in students.values() for name in found})
    if listed_only:  # a scratch notebook or a renamed copy is not part of the assignment
        for name in [n for n in notebooks if Path(n).name not in keys]:
            owners = ", ".join(student for student, found in students.items() if name in found)
            say(f"skipped {name} ({owners}): the release does not list it")
        notebooks = [n for n in notebooks if Path(n).name in keys]
        if not notebooks:
            raise LlmnbError(f"None of the submitted notebooks is listed in {origin}, which lists "
                             f"{', '.join(keys) or 'no notebook'}. Pass --release with the release of this assignment.")
    if confinement.confined or sandbox == "none":
        say(describe_sandbox(confinement))
    else:
        say(UNCONFINED_WARNING)
    say(f"grading {_plural(len(students), 'student')}, {_plural(len(notebooks), 'notebook')}; the questions and keys "
        f"come from {origin}")
    if not listed_only:
        for name in notebooks:
            key = _course_key(name, timeout * 2, confinement, say)
            if key is None:
                raise LlmnbError(f"No release manifest was found and {name} is not one of the course's notebooks, so "
                                 "there is no key to judge it against. Pass --release with the folder that "
                                 "`python -m llmnb.classroom release` wrote.")
            keys[Path(name).name] = key
    rows = []
    for student, found in students.items():
        for notebook in notebooks:
            key = keys[Path(notebook).name]
            path = found.get(notebook)
            if path is None:
                rows += rows_for(student, notebook, None, key, {}, timeout)
                say(f"{student}  {notebook}: not submitted")
                continue
            read = {q: f"__llmnb_check.gradable({q!r}, {key.answers.get(q) or 'None'})" for q in key.questions}
            outcome = run_notebook(path, timeout=timeout, keep_going=keep_going, kernel=kernel, read=read,
                                   read_setup=GRADE_READER, sandbox=confinement, memory_mb=memory_mb)
            try:
                in_notebook = question_cells(read_notebook(path)["cells"])
            except LlmnbError:
                in_notebook = {}
            mine = rows_for(student, notebook, outcome, key, in_notebook, timeout)
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

"""Student copies of the tutorial notebooks: solutions stubbed out, answers and outputs cleared.

    python -m llmnb.classroom release tutorials/ student/
    from llmnb.classroom.release import release; release("tutorials", "student")

For every notebook of the source folder (or the one notebook named) it writes a copy to OUT with

* every output and execution count cleared (and the saved widget state);
* every solution region, `### BEGIN SOLUTION` ... `### END SOLUTION` markers included, replaced by
  nbgrader's stub `# YOUR CODE HERE` / `raise NotImplementedError()` at the markers' indentation;
* every `answer_N = ...` in a cell that calls `check(` set back to `None`, its comment kept;

and OUT/release.json, the manifest that `grade` reads. For each notebook it lists the question
ids and the answer each `check("ID", ANSWER)` call of the source names, and (unless `keys=False`)
the key of each question: the source notebook, solutions in place, is run once in a confined
kernel and each exercise's key is taken from it (llmnb.check.key_of: the expected value, or a
probe of the instructor's solution). Grading decides every mark against these keys, in its own
process. The sources are only read. Everything is prepared first, so a notebook that cannot be
released (or whose keys cannot be computed) stops the release before anything is written.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Callable

from llmnb.classroom.cells import (
    as_lines,
    blank_answers,
    calls_check,
    notebook_answers,
    notebook_questions,
    read_notebook,
    source_of,
    strip_solutions,
)
from llmnb.errors import LlmnbError

MANIFEST = "release.json"


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def source_notebooks(source: Path) -> list[Path]:
    """The notebooks to release: the one file given, or the folder's *.ipynb (not its subfolders)."""
    if source.is_file():
        if source.suffix != ".ipynb":
            raise LlmnbError(f"{source} is not a notebook: give a folder of .ipynb files or one .ipynb file.")
        return [source]
    if not source.is_dir():
        raise LlmnbError(f"There is no folder or notebook {source}: give the folder of the course's notebooks, "
                         "e.g. tutorials/.")
    found = sorted(p for p in source.glob("*.ipynb") if p.is_file())
    if not found:
        raise LlmnbError(f"{source} holds no notebooks (*.ipynb), so there is nothing to release: give the folder "
                         "that holds the course's notebooks, e.g. tutorials/.")
    return found


def _refuse_unsafe_out(source: Path, out: Path) -> None:
    folder = (source if source.is_dir() else source.parent).resolve()
    target = out.resolve()
    if _inside(target, folder):
        raise LlmnbError(
            f"The student copies would go to {out}, which is {'the source folder' if target == folder else 'inside the source folder'} "
            f"{folder}. Student copies never go next to the notebooks they are made from: one could overwrite a "
            "notebook holding the solutions, or be handed out along with them. Choose a folder outside it, "
            "e.g. `python -m llmnb.classroom release tutorials/ student/`.")
    if target.exists() and not target.is_dir():
        raise LlmnbError(f"{out} is a file; the student copies need a folder. Choose another path.")


def student_copy(nb: dict, name: str = "notebook") -> tuple[dict, dict]:
    """A student version of one notebook (a new dict; `nb` is left as it was) and what was done:
    {"questions": [...], "solutions": n, "answers": n}."""
    student = copy.deepcopy(nb)
    solutions = answers = 0
    for number, cell in enumerate(student["cells"], start=1):
        kind, text = cell.get("cell_type"), source_of(cell)
        where = f"{name}, cell {number}"
        if kind == "code":
            cell["outputs"], cell["execution_count"] = [], None
            cell.get("metadata", {}).pop("execution", None)  # timings that nbclient records
            text, stripped = strip_solutions(text, where=where)
            solutions += stripped
            if calls_check(text):
                text, blanked = blank_answers(text)
                answers += blanked
        elif kind == "markdown":
            text, stripped = strip_solutions(text, markdown=True, where=where)
            solutions += stripped
        else:
            continue
        cell["source"] = as_lines(text)
    student.get("metadata", {}).pop("widgets", None)  # the saved state of ipywidgets is output too
    return student, {"questions": notebook_questions(nb), "solutions": solutions, "answers": answers}


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def _notebook_text(nb: dict) -> str:
    """The JSON layout Jupyter itself writes (one-space indent, sorted keys, a final newline)."""
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


KEY_READER = "import llmnb.check as __llmnb_check"


def compute_keys(path: Path, answers: dict[str, str], timeout: float = 1200, sandbox=None) -> dict[str, dict]:
    """Question id -> its key, from one run of the source notebook at `path` (solutions in place):
    `llmnb.check.key_of(id, ANSWER)` evaluated in its kernel after the last cell. An LlmnbError
    names the notebook and what went wrong (a cell that raised, a question without a key)."""
    from llmnb.classroom.execute import run_notebook

    read = {q: f"__llmnb_check.key_of({q!r}, {answer or 'None'})" for q, answer in answers.items()}
    outcome = run_notebook(path, timeout=timeout, read=read, read_setup=KEY_READER, sandbox=sandbox)
    if outcome.stop:
        where = f" at cell {outcome.cell}" if outcome.cell else ""
        raise LlmnbError(f"The keys of {path.name} come from running it, solutions in place, and it stopped{where} "
                         f"({outcome.stop}{': ' + outcome.error if outcome.error else ''}). Fix the notebook, or "
                         "release it with --no-keys (then it cannot be graded).")
    keys = {}
    for question in answers:
        key = outcome.values.get(question)
        if not isinstance(key, dict) or "kind" not in key:
            problem = key.get("error") if isinstance(key, dict) else "nothing came back"
            raise LlmnbError(f"{path.name}: no key for question {question} ({problem}). Its check(...) call must name "
                             "the answer, and a predicate exercise needs a probe= to be graded.")
        keys[question] = key
    return keys


def release(source, out, echo: Callable[[str], None] | None = print, keys: bool = True, timeout: float = 1200,
            sandbox=None) -> dict:
    """Write a student copy of each notebook of `source` (a folder or one .ipynb) into `out`,
    and `out`/release.json listing each notebook's questions, their answers and (with `keys`) the
    keys grading judges against, from one confined run of each source notebook of at most
    `timeout` seconds. Returns the manifest. Refuses, writing nothing, when `out` is the source
    folder or inside it, when there are no notebooks or when a key cannot be computed.
    `echo` gets one line per notebook (None: silent)."""
    from llmnb.classroom.sandbox import Sandbox

    source, out = Path(source), Path(out)
    notebooks = source_notebooks(source)
    _refuse_unsafe_out(source, out)
    sandbox = sandbox or Sandbox.choose("auto")  # the instructor's own code, run as the students' will be
    prepared, manifest = [], {"made_by": "python -m llmnb.classroom release", "notebooks": {}}
    for path in notebooks:  # everything in memory first: a broken notebook stops the release here
        nb = read_notebook(path)
        student, summary = student_copy(nb, path.name)
        prepared.append((path, _notebook_text(student), summary))
        entry = manifest["notebooks"][path.name] = {"questions": summary["questions"], "answers": notebook_answers(nb)}
        if keys and entry["questions"]:
            if echo:
                echo(f"{path.name}: running it once, solutions in place, for the keys")
            entry["keys"] = compute_keys(path, entry["answers"], timeout, sandbox)
    out.mkdir(parents=True, exist_ok=True)
    for path, text, summary in prepared:
        (out / path.name).write_text(text, encoding="utf-8")
        if echo:
            echo(f"{path.name}: {_count(summary['solutions'], 'solution')} stripped, "
                 f"{_count(summary['answers'], 'answer')} blanked, "
                 f"{_count(len(summary['questions']), 'question')} -> {out / path.name}")
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    if echo:
        echo(f"{_count(len(prepared), 'notebook')} released; questions listed in {out / MANIFEST}")
    return manifest

"""Student copies of the tutorial notebooks: solutions stubbed out, answers and outputs cleared.

    python -m llmnb.classroom release tutorials/ student/
    from llmnb.classroom.release import release; release("tutorials", "student")

For every notebook of the source folder (or the one notebook named) it writes a copy to OUT with

* every output and execution count cleared (and the saved widget state);
* every solution region, `### BEGIN SOLUTION` ... `### END SOLUTION` markers included, replaced by
  nbgrader's stub `# YOUR CODE HERE` / `raise NotImplementedError()` at the markers' indentation;
* every `answer_N = ...` in a cell that calls `check(` set back to `None`, its comment kept;

and OUT/release.json, the manifest that `grade` reads: each notebook's question ids, taken from
the `check("ID", ...)` calls of the source. The sources are only read. Everything is prepared in
memory first, so a notebook that cannot be released stops the release before anything is written.
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


def release(source, out, echo: Callable[[str], None] | None = print) -> dict:
    """Write a student copy of each notebook of `source` (a folder or one .ipynb) into `out`,
    and `out`/release.json listing each notebook's question ids. Returns the manifest.
    Refuses, writing nothing, when `out` is the source folder or inside it, or when there are no
    notebooks. `echo` gets one line per notebook (None: silent)."""
    source, out = Path(source), Path(out)
    notebooks = source_notebooks(source)
    _refuse_unsafe_out(source, out)
    prepared, manifest = [], {"made_by": "python -m llmnb.classroom release", "notebooks": {}}
    for path in notebooks:  # everything in memory first: a broken notebook stops the release here
        student, summary = student_copy(read_notebook(path), path.name)
        prepared.append((path, _notebook_text(student), summary))
        manifest["notebooks"][path.name] = {"questions": summary["questions"]}
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

"""A tiny course notebook ("chapter 99") for the classroom tests: made in memory, runs in a second.
The fixture `course` writes the instructor's copy to tmp_path/source/99_tiny.ipynb."""
import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

SOLUTION_META = {"nbgrader": {"solution": True, "grade": False, "locked": False,
                              "grade_id": "99.e1-solution", "schema_version": 3}}
SOLUTION = 'def double(x):\n    """Twice x."""\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION'
ANSWERS = 'answer_1 = 4  # a number\nanswer_2 = 9  # a number\n\ncheck("99.1", answer_1)\ncheck("99.2", answer_2)'


def chapter_99(outputs: bool = True):
    """The instructor's copy: solution in, answers filled, and (if `outputs`) run outputs kept."""
    cells = [
        new_markdown_cell("# Chapter 99 · a tiny chapter"),
        new_code_cell("from llmnb.check import Exercise, check, number, predicate, register"),
        new_code_cell('register(Exercise("99.1", "Two plus two", number(4), "add them"))\n'
                      'register(Exercise("99.2", "Three times three", number(9), "multiply them"))'),
        new_markdown_cell("### Your turn (99.e1): write `double(x)`"),
        new_code_cell(SOLUTION, metadata=SOLUTION_META),
        new_code_cell('register(Exercise("99.e1", "Write double(x)", predicate(lambda f: f(3) == 6 and f(-1) == -2, probe=lambda f: [f(3), f(-1)]), '
                      '"x + x"))\ncheck("99.e1", double)'),
        new_code_cell(ANSWERS),
    ]
    if outputs:
        for count, cell in enumerate(c for c in cells if c.cell_type == "code"):
            cell.execution_count = count + 1
            cell.outputs = [new_output("stream", name="stdout", text="[99.1] ✓ Correct\n")]
    return new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                              "language": "python"}})


def write(nb, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def code(path: Path) -> list[str]:
    """The sources of a notebook file's cells, as strings."""
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in json.loads(Path(path).read_text())["cells"]]


@pytest.fixture
def course(tmp_path):
    """tmp_path/source/99_tiny.ipynb, the instructor's copy of chapter 99 (with run outputs)."""
    return write(chapter_99(), tmp_path / "source" / "99_tiny.ipynb")

"""Student copies (llmnb.classroom.release): of every chapter, of a tiny made-up one, and the refusals."""
import ast
import io
import json
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import nbformat
import pytest

from llmnb.classroom.__main__ import main
from llmnb.classroom.release import release
from llmnb.errors import LlmnbError

ROOT = Path(__file__).resolve().parents[2]
TUTORIALS = ROOT / "tutorials"
REGION = re.compile(r"^[ \t]*### BEGIN SOLUTION\n(.*?)^[ \t]*### END SOLUTION", re.M | re.S)


def sources(path):
    return [(c["cell_type"], "".join(c["source"]) if isinstance(c["source"], list) else c["source"])
            for c in json.loads(Path(path).read_text())["cells"]]


def answers_and_comments(source):
    """(name, value, comment) of every `answer_N = value` line of a cell."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "").startswith("answer_") for t in node.targets):
            line = source.splitlines()[node.end_lineno - 1]
            comment = [t.string for t in tokenize.generate_tokens(io.StringIO(line).readline) if t.type == tokenize.COMMENT]
            found.append((node.targets[0].id, ast.unparse(node.value), comment))
    return found


def test_release_of_every_chapter(tmp_path):
    before = {p.name: p.read_bytes() for p in TUTORIALS.glob("*.ipynb")}
    manifest = release(TUTORIALS, tmp_path / "student", echo=None, keys=False)  # keys: tests/test_notebooks.py
    assert {p.name: p.read_bytes() for p in TUTORIALS.glob("*.ipynb")} == before, "a source notebook changed"
    assert json.loads((tmp_path / "student" / "release.json").read_text()) == manifest
    assert sorted(manifest["notebooks"]) == sorted(before)
    stripped = 0
    for name in before:
        copy = tmp_path / "student" / name
        nbformat.validate(nbformat.read(copy, as_version=4))
        nb = json.loads(copy.read_text())
        assert all(c["outputs"] == [] and c["execution_count"] is None for c in nb["cells"] if c["cell_type"] == "code")
        original, student = sources(TUTORIALS / name), sources(copy)
        assert len(original) == len(student), name
        assert "BEGIN SOLUTION" not in copy.read_text() and "END SOLUTION" not in copy.read_text(), name
        for (kind, before_text), (_, after_text) in zip(original, student):
            for solution in REGION.findall(before_text):
                stripped += 1
                body = [line.strip() for line in solution.splitlines() if line.strip()]
                assert not [line for line in body if line in after_text], f"{name}: solution text left"
                assert "# YOUR CODE HERE" in after_text and "raise NotImplementedError()" in after_text
            if kind == "code" and "check(" in before_text:
                want = [(n, "None", comment) for n, _, comment in answers_and_comments(before_text)]
                assert answers_and_comments(after_text) == want, name
            elif "BEGIN SOLUTION" not in before_text:
                assert after_text == before_text, f"{name}: a cell without a solution or a check changed"
        # Every question the source checks, from its text, is in the manifest, in order.
        code = "\n".join(text for kind, text in original if kind == "code")
        ids = list(dict.fromkeys(re.findall(r'^\s*check\("([^"]+)"', code, re.M)))
        assert manifest["notebooks"][name]["questions"] == ids == list(manifest["notebooks"][name]["answers"]), name
        assert len(ids) >= 3, name
    assert stripped >= 1, "no chapter has an exercise with a solution to strip"


def test_release_of_a_made_up_chapter_clears_outputs_stubs_solutions_and_blanks_answers(course, tmp_path, capsys):
    source_bytes = course.read_bytes()
    assert main(["release", str(course.parent), str(tmp_path / "student")]) == 0
    assert course.read_bytes() == source_bytes
    assert capsys.readouterr().out.splitlines() == [
        "99_tiny.ipynb: running it once, solutions in place, for the keys",
        f"99_tiny.ipynb: 1 solution stripped, 2 answers blanked, 3 questions -> {tmp_path / 'student' / '99_tiny.ipynb'}",
        f"1 notebook released; questions listed in {tmp_path / 'student' / 'release.json'}",
    ]
    copy = json.loads((tmp_path / "student" / "99_tiny.ipynb").read_text())
    assert [c.get("outputs") for c in copy["cells"] if c["cell_type"] == "code"] == [[]] * 5
    assert [c.get("execution_count") for c in copy["cells"] if c["cell_type"] == "code"] == [None] * 5
    after = [text for _, text in sources(tmp_path / "student" / "99_tiny.ipynb")]
    assert after[4] == 'def double(x):\n    """Twice x."""\n    # YOUR CODE HERE\n    raise NotImplementedError()'
    assert copy["cells"][4]["metadata"]["nbgrader"]["grade_id"] == "99.e1-solution"  # nbgrader can still read it
    assert after[6] == 'answer_1 = None  # a number\nanswer_2 = None  # a number\n\ncheck("99.1", answer_1)\ncheck("99.2", answer_2)'
    assert [text for _, text in sources(course)][:4] == after[:4]
    number = {"kind": "number", "rel": 1e-6, "tol": 0.0}
    assert json.loads((tmp_path / "student" / "release.json").read_text())["notebooks"] == {
        "99_tiny.ipynb": {"questions": ["99.e1", "99.1", "99.2"],
                          "answers": {"99.e1": "double", "99.1": "answer_1", "99.2": "answer_2"},
                          # the key of the exercise is its probe of the instructor's double()
                          "keys": {"99.e1": {"kind": "probe", "value": [6, -2], "tol": 1e-4},
                                   "99.1": {**number, "value": 4.0}, "99.2": {**number, "value": 9.0}}}}


def test_release_of_one_notebook_file(course, tmp_path):
    manifest = release(course, tmp_path / "week", echo=None, keys=False)
    assert list(manifest["notebooks"]) == ["99_tiny.ipynb"]
    assert sorted(p.name for p in (tmp_path / "week").iterdir()) == ["99_tiny.ipynb", "release.json"]
    assert "keys" not in manifest["notebooks"]["99_tiny.ipynb"]


def test_a_notebook_whose_keys_cannot_be_computed_stops_the_release(course, tmp_path):
    nb = json.loads(course.read_text())
    nb["cells"][5]["source"] = "".join(nb["cells"][5]["source"]).replace(", probe=lambda f: [f(3), f(-1)]", "")
    course.write_text(json.dumps(nb))
    with pytest.raises(LlmnbError, match="no key for question 99.e1 .NotGradable.*needs a probe="):
        release(course, tmp_path / "out", echo=None)
    nb["cells"][2]["source"] = "".join(nb["cells"][2]["source"]) + "\nraise RuntimeError('broken')"
    course.write_text(json.dumps(nb))
    with pytest.raises(LlmnbError, match="stopped at cell 3 .error: RuntimeError: broken"):
        release(course, tmp_path / "out", echo=None)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("out, says", [
    (".", "which is the source folder"),
    ("student", "inside the source folder"),
    ("student/week3", "inside the source folder"),
])
def test_release_refuses_to_write_into_the_source_folder(course, out, says):
    before = sorted(course.parent.rglob("*"))
    with pytest.raises(LlmnbError, match=says):
        release(course.parent, course.parent / out, echo=None)
    with pytest.raises(LlmnbError, match=says):  # the same when one notebook of that folder is named
        release(course, course.parent / out, echo=None)
    assert sorted(course.parent.rglob("*")) == before


def test_release_refuses_an_empty_source_a_missing_one_and_a_broken_notebook(course, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(LlmnbError, match="holds no notebooks"):
        release(tmp_path / "empty", tmp_path / "out", echo=None)
    with pytest.raises(LlmnbError, match="There is no folder or notebook"):
        release(tmp_path / "nope", tmp_path / "out", echo=None)
    nb = json.loads(course.read_text())
    nb["cells"][4]["source"] = ["def double(x):\n", "    ### BEGIN SOLUTION\n", "    return 2 * x\n"]
    (course.parent / "98_broken.ipynb").write_text(json.dumps(nb))
    with pytest.raises(LlmnbError, match=r"98_broken.ipynb, cell 5: a BEGIN SOLUTION line has no END SOLUTION"):
        release(course.parent, tmp_path / "out", echo=None)
    assert not (tmp_path / "out").exists(), "nothing is written when one notebook cannot be released"


def test_the_command_line_refuses_with_exit_code_2_and_one_paragraph(course, tmp_path):
    run = subprocess.run([sys.executable, "-m", "llmnb.classroom", "release", str(course.parent), str(course.parent)],
                         capture_output=True, text=True)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.startswith("error: The student copies would go to") and "\n\n" not in run.stderr
    assert sorted(p.name for p in course.parent.iterdir()) == ["99_tiny.ipynb"]

"""Grading (llmnb.classroom.grade): a made-up class on a tiny chapter and on chapter 1, the rows for
every way a notebook can fail, and where the questions and their keys come from. The attacks on
grading are in test_attacks.py."""
import csv
import json
import re
import shutil
from pathlib import Path

import pytest

import llmnb.classroom.grade as grading
from llmnb.classroom.__main__ import main
from llmnb.classroom.execute import Outcome
from llmnb.classroom.grade import STATUSES, Key, Row, find_submissions, keys_for, rows_for
from llmnb.classroom.release import release
from llmnb.errors import LlmnbError

ROOT = Path(__file__).resolve().parents[2]
ANSWERS_99 = 'answer_1 = 4  # a number\nanswer_2 = 9\n\ncheck("99.1", answer_1)\ncheck("99.2", answer_2)'


def read_rows(path):
    with open(path, newline="") as f:
        return [tuple(row) for row in csv.reader(f)]


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def hand_in(released, submissions, student, edit, name=None):
    """A student's copy: the released notebook with `edit(cells)` applied, saved where they hand it in."""
    nb = json.loads(Path(released).read_text())
    edit(nb["cells"])
    path = submissions / student / (name or Path(released).name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb))
    return path


def put(cells, index, text):
    cells[index]["source"] = text


# ---------------------------------------------------------------- a class of five on chapter 99
def test_grading_a_made_up_class(course, tmp_path, capsys):
    """Right, wrong, raising, hanging (5 s limit) and with a deleted check: each gets the rows that
    say so, and the submissions are left exactly as they were."""
    release(course.parent, tmp_path / "student", echo=None)
    released, subs = tmp_path / "student" / "99_tiny.ipynb", tmp_path / "submitted"
    solution = json.loads(course.read_text())["cells"][4]["source"]
    answers = 'answer_1 = 4  # a number\nanswer_2 = 9\n\ncheck("99.1", answer_1)\ncheck("99.2", answer_2)'

    def right(cells):
        put(cells, 4, solution)
        put(cells, 6, answers)
        # The grading environment, and a working folder that is not the submission's.
        put(cells, 1, "".join(cells[1]["source"]) + '\nimport os\nfrom pathlib import Path\n'
                      'assert os.environ["LLMNB_PROFILE"] == "fast" and os.environ["LLMNB_QUIET"] == "1"\n'
                      'assert os.environ["HF_HUB_OFFLINE"] == "1" and "LLMNB_GRADE_LOG" not in os.environ\n'
                      'assert "submitted" not in os.getcwd()\nPath("runs").mkdir()')

    def wrong(cells):
        put(cells, 6, answers.replace("= 4", "= 5"))  # 99.1 wrong, 99.2 right, the exercise left as a stub

    def raises(cells):
        put(cells, 2, "".join(cells[2]["source"]) + "\nundefined_name")

    def hangs(cells):
        right(cells)
        put(cells, 6, "import time\ntime.sleep(120)\n" + answers)

    def deleted(cells):  # the answer and its check taken out
        right(cells)
        put(cells, 6, answers.replace('check("99.2", answer_2)', "").replace("answer_2 = 9", ""))

    for student, edit in [("ana", right), ("ben", wrong), ("dev", hangs), ("eve", deleted)]:
        hand_in(released, subs, student, edit)
    hand_in(released, subs, "cai", raises, name="week9/99_tiny.ipynb")  # nbgrader's layout
    hand_in(released, subs, "ana", lambda cells: None, name="Untitled.ipynb")  # not in the release: skipped
    hand_in(released, subs, "fay", lambda cells: None, name="scratch.ipynb")   # handed in the wrong notebook
    before = snapshot(subs)

    code = main(["grade", str(subs), "--out", str(tmp_path / "grades.csv"), "--release", str(tmp_path / "student"),
                 "--timeout", "5"])
    assert code == 0
    assert snapshot(subs) == before
    nb, limit = "99_tiny.ipynb", "cell 7 was still running when the 5 s limit ran out"
    stopped = "cell 3 raised NameError: name 'undefined_name' is not defined"
    assert read_rows(tmp_path / "grades.csv") == [
        ("student", "notebook", "question", "status", "points", "detail"),
        ("ana", nb, "99.e1", "correct", "1", ""),
        ("ana", nb, "99.1", "correct", "1", ""),
        ("ana", nb, "99.2", "correct", "1", ""),
        ("ben", nb, "99.e1", "wrong", "0", ""),
        ("ben", nb, "99.1", "wrong", "0", ""),
        ("ben", nb, "99.2", "correct", "1", ""),
        ("cai", nb, "99.e1", "not run", "0", stopped),
        ("cai", nb, "99.1", "not run", "0", stopped),
        ("cai", nb, "99.2", "not run", "0", stopped),
        ("dev", nb, "99.e1", "correct", "1", ""),
        ("dev", nb, "99.1", "timed out", "0", limit),
        ("dev", nb, "99.2", "timed out", "0", limit),
        ("eve", nb, "99.e1", "correct", "1", ""),
        ("eve", nb, "99.1", "correct", "1", ""),
        ("eve", nb, "99.2", "missing", "0", "answer_2 is not defined in the notebook"),
        *[("fay", nb, q, "missing", "0", "no 99_tiny.ipynb in this submission") for q in ("99.e1", "99.1", "99.2")],
    ]
    out = capsys.readouterr().out
    assert "skipped Untitled.ipynb (ana): the release does not list it" in out
    assert "skipped scratch.ipynb (fay): the release does not list it" in out
    table = out[out.index("student  "):].splitlines()
    assert re.split(r"\s+", table[0]) == ["student", "points", "correct", "wrong", "missing", "not", "run", "timed", "out",
                                           "out", "of", "memory"]
    assert [re.split(r"\s+", line) for line in table[2:8]] == [
        ["ana", "3/3", "3", "0", "0", "0", "0", "0"], ["ben", "1/3", "1", "2", "0", "0", "0", "0"],
        ["cai", "0/3", "0", "0", "0", "3", "0", "0"], ["dev", "1/3", "1", "0", "0", "0", "2", "0"],
        ["eve", "2/3", "2", "0", "1", "0", "0", "0"], ["fay", "0/3", "0", "0", "3", "0", "0", "0"]]


# ---------------------------------------------------------------- rows, without running anything
def test_rows_say_why_a_question_has_no_result():
    where = {"01.1": 5, "01.2": 9, "01.3": 9}
    key = Key(("01.1", "01.2", "01.3"), {"01.1": "answer_1", "01.2": "answer_2", "01.3": "answer_3"},
              {q: {"kind": "number", "value": 4.0, "rel": 0.0, "tol": 0.0} for q in ("01.1", "01.2", "01.3")})
    undefined = {"error": "NameError: name 'answer_3' is not defined"}

    def row(q, status, detail=""):
        return Row("ana", "01.ipynb", q, status, int(status == "correct"), detail)

    # The values read from the kernel decide: right, wrong, of the wrong kind (wrong), never defined.
    read = Outcome(values={"01.1": 4.0, "01.2": 5.0, "01.3": undefined})
    assert rows_for("ana", "01.ipynb", read, key, where, 600) == [
        row("01.1", "correct"), row("01.2", "wrong"), row("01.3", "missing", "answer_3 is not defined in the notebook")]
    assert rows_for("ana", "01.ipynb", Outcome(values={"01.1": {"error": "WrongForm: a number"}}), key, where, 600)[0] == row("01.1", "wrong")
    # --keep-going: the notebook went on after cell 9 raised.
    going = Outcome(values={"01.1": 4.0, "01.2": undefined}, failed={9: "NameError: name 'x' is not defined"})
    assert rows_for("ana", "01.ipynb", going, key, where, 600)[1] == row(
        "01.2", "not run", "cell 9 raised NameError: name 'x' is not defined")
    # The kernel died in cell 7: nothing can be read, and what came after did not run.
    died = Outcome(stop="died", cell=7, error="the kernel died")
    assert rows_for("ana", "01.ipynb", died, key, {"01.1": 8}, 600)[0] == row("01.1", "not run", "cell 7: the kernel died")
    # Out of time in cell 7: what came before was read after the interrupt; the rest timed out.
    late = Outcome(values={"01.1": 4.0, "01.2": undefined, "01.3": undefined}, stop="timeout", cell=7)
    assert rows_for("ana", "01.ipynb", late, key, {"01.1": 5, "01.2": 9}, 600) == [
        row("01.1", "correct"), row("01.2", "timed out", "cell 7 was still running when the 600 s limit ran out"),
        row("01.3", "timed out", "cell 7 was still running when the 600 s limit ran out")]
    memory = Outcome(stop="memory", cell=6, error="its memory passed the 4,096 MB limit")
    assert rows_for("ana", "01.ipynb", memory, key, where, 600)[0] == row(
        "01.1", "out of memory", "the kernel was stopped at cell 6: its memory passed the 4,096 MB limit")
    # An unreadable file; a notebook not handed in.
    broken = Outcome(stop="unreadable", error="JSONDecodeError: Expecting value")
    assert rows_for("ana", "01.ipynb", broken, key, {}, 600)[0] == row(
        "01.1", "not run", "cannot read the notebook: JSONDecodeError: Expecting value")
    assert rows_for("ana", "01.ipynb", None, key, {}, 600)[0] == row("01.1", "missing", "no 01.ipynb in this submission")


# ---------------------------------------------------------------- students and expected questions
def test_students_are_the_folders_under_submissions(tmp_path):
    for path in ["ana/03.ipynb", "ana/notes.txt", "ben/week3/03.ipynb", "cai/a/03.ipynb", "cai/b/03.ipynb",
                 ".git/x.ipynb", "dev/.ipynb_checkpoints/03-checkpoint.ipynb", "eve/empty.txt", "top.ipynb"]:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("{}")
    found = find_submissions(tmp_path)
    assert {s: sorted(nbs) for s, nbs in found.items()} == {
        "ana": ["03.ipynb"], "ben": ["03.ipynb"], "cai": ["a/03.ipynb", "b/03.ipynb"]}
    with pytest.raises(LlmnbError, match="No submissions in"):
        find_submissions(tmp_path / "eve")
    with pytest.raises(LlmnbError, match="There is no folder"):
        find_submissions(tmp_path / "nope")


def test_questions_and_keys_come_from_the_release(course, tmp_path):
    release(course, tmp_path / "student", echo=None)
    subs = tmp_path / "class" / "submitted"
    subs.mkdir(parents=True)
    found, origin, listed = keys_for(subs, tmp_path / "student")
    key = found["99_tiny.ipynb"]
    assert key.questions == ("99.e1", "99.1", "99.2") and listed and origin == str(tmp_path / "student" / "release.json")
    assert key.answers == {"99.e1": "double", "99.1": "answer_1", "99.2": "answer_2"}
    assert key.keys["99.1"] == {"kind": "number", "value": 4.0, "rel": 1e-6, "tol": 0.0} and key.keys["99.e1"]["kind"] == "probe"
    assert keys_for(subs, tmp_path / "student" / "release.json")[0] == found
    with pytest.raises(LlmnbError, match="No release manifest"):
        keys_for(subs, tmp_path)
    shutil.copy(tmp_path / "student" / "release.json", subs.parent)
    assert keys_for(subs) == (found, str(subs.parent / "release.json"), True)
    (subs / "release.json").write_text("{}")
    with pytest.raises(LlmnbError, match="is not a release manifest"):
        keys_for(subs)
    manifest = json.loads((tmp_path / "student" / "release.json").read_text())
    del manifest["notebooks"]["99_tiny.ipynb"]["keys"]
    (subs / "release.json").write_text(json.dumps(manifest))
    with pytest.raises(LlmnbError, match="holds no keys for 99_tiny.ipynb"):
        keys_for(subs)
    (subs / "release.json").unlink()
    (subs.parent / "release.json").unlink()
    assert keys_for(subs)[:1] == ({},)  # no manifest: the course's own notebooks are keyed when graded


def test_without_a_manifest_the_course_s_own_notebook_gives_the_keys(course, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(grading, "COURSE", course.parent)
    released = tmp_path / "student"
    release(course, released, keys=False, echo=None)
    (released / "release.json").unlink()
    subs = tmp_path / "submitted"
    hand_in(released / "99_tiny.ipynb", subs, "ana", lambda cells: put(cells, 6, ANSWERS_99))
    assert main(["grade", str(subs), "--out", str(tmp_path / "g.csv"), "--sandbox", "none"]) == 0
    assert [r[3] for r in read_rows(tmp_path / "g.csv")[1:]] == ["wrong", "correct", "correct"]  # the stub, 4, 9
    assert "running the course's 99_tiny.ipynb once, solutions in place, for its keys" in capsys.readouterr().out
    monkeypatch.setattr(grading, "COURSE", tmp_path / "nowhere")
    assert main(["grade", str(subs), "--out", str(tmp_path / "g.csv"), "--sandbox", "none"]) == 2
    assert "is not one of the course's notebooks" in capsys.readouterr().err


def test_the_command_line_says_what_is_wrong_with_exit_code_2(tmp_path, capsys):
    assert main(["grade", str(tmp_path), "--out", str(tmp_path / "g.csv")]) == 2
    assert "No submissions in" in capsys.readouterr().err
    (tmp_path / "ana").mkdir()
    (tmp_path / "ana" / "01.ipynb").write_text("{}")
    assert main(["grade", str(tmp_path), "--out", str(tmp_path / "g.csv"), "--kernel", "no-such-kernel"]) == 2
    assert "no Jupyter kernel called 'no-such-kernel'" in capsys.readouterr().err
    assert main(["grade", str(tmp_path), "--out", str(tmp_path / "g.csv"), "--timeout", "0"]) == 2
    assert main(["grade", str(tmp_path), "--out", str(tmp_path / "g.csv"), "--memory", "-1"]) == 2
    assert "memory limit per notebook must be a positive number" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="2"):  # argparse's own message names the choices
        main(["grade", str(tmp_path), "--out", str(tmp_path / "g.csv"), "--sandbox", "docker"])
    assert "invalid choice: 'docker'" in capsys.readouterr().err
    (tmp_path / "release.json").write_text('{"notebooks": {"03_algorithm.ipynb": {"questions": ["03.1"], '
                                           '"keys": {"03.1": {"kind": "number", "value": 1, "rel": 0, "tol": 0}}}}}')
    assert main(["grade", str(tmp_path), "--out", str(tmp_path / "g.csv")]) == 2
    assert "None of the submitted notebooks is listed in" in capsys.readouterr().err
    assert not (tmp_path / "g.csv").exists()


# ---------------------------------------------------------------- a class of three on chapter 1
CHAPTER_1 = ROOT / "tutorials" / "01_background.ipynb"
# Right answers, computed by the notebook's own objects (as a careful student would).
RIGHT_ANSWERS = {
    "answer_1": 'len(tokenizer("Tokenization splits unfamiliar words like smartwatches.")["input_ids"])',
    "answer_2": "151_936 * 896 / 1e6",
    "answer_3": "closest_to_pizza()",
    "answer_4": 'int(((rule_pred == reviews_test["label"]) & decided).sum() + ((model_pred == reviews_test["label"]) & ~decided).sum())',
    "answer_5": "int(((rule_pred != model_pred) & decided).sum())",
}
WRONG_ANSWERS = {"answer_1": "0", "answer_2": "0.0", "answer_3": '"z"', "answer_4": "2.0", "answer_5": '""'}


def answered(cells, values):
    """Fill the self-check cell's `answer_N = None` lines with `values`."""
    cell = next(c for c in cells if "answer_1 = None" in "".join(c["source"]))
    text = "".join(cell["source"])
    for name, value in values.items():
        text = re.sub(rf"^{name} = None", f"{name} = {value}", text, flags=re.M)
    cell["source"] = text


@pytest.mark.slow  # two full runs of chapter 1: about 70-100 s each on 2 busy cores
@pytest.mark.notebook
def test_grading_a_class_of_three_on_chapter_1(tmp_path, capsys):
    """One student solved everything, one answered wrong and left the exercises as stubs, and one
    broke the parameters cell (the notebook stops there, before any check)."""
    release(CHAPTER_1, tmp_path / "student", echo=None)
    questions = json.loads((tmp_path / "student" / "release.json").read_text())["notebooks"]["01_background.ipynb"]["questions"]
    assert [q for q in questions if ".e" not in q] == ["01.1", "01.2", "01.3", "01.4", "01.5"]
    assert [q for q in questions if ".e" in q], "chapter 1 has no 'your turn' exercise (01.e1, ...)"
    source = json.loads(CHAPTER_1.read_text())["cells"]
    released, subs = tmp_path / "student" / "01_background.ipynb", tmp_path / "submitted"

    def right(cells):
        for index, cell in enumerate(source):
            if cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
                cells[index]["source"] = cell["source"]
        answered(cells, RIGHT_ANSWERS)

    parameters = next(i for i, c in enumerate(source) if "parameters" in c.get("metadata", {}).get("tags", []))

    def breaks(cells):
        put(cells, parameters, "".join(cells[parameters]["source"]) + '\nEPOCHS = int("two")')

    hand_in(released, subs, "ana", right)
    hand_in(released, subs, "ben", lambda cells: answered(cells, WRONG_ANSWERS))
    hand_in(released, subs, "cai", breaks)
    # A generous limit: on 2 cores shared with other work a full run of chapter 1 has taken 300 s.
    assert main(["grade", str(subs), "--out", str(tmp_path / "grades.csv"), "--release", str(tmp_path / "student"),
                 "--timeout", "1500"]) == 0
    nb = "01_background.ipynb"
    stopped = f"cell {parameters + 1} raised ValueError: invalid literal for int() with base 10: 'two'"
    assert read_rows(tmp_path / "grades.csv") == [
        ("student", "notebook", "question", "status", "points", "detail"),
        *[("ana", nb, q, "correct", "1", "") for q in questions],
        *[("ben", nb, q, "wrong", "0", "") for q in questions],
        *[("cai", nb, q, "not run", "0", stopped) for q in questions],
    ]
    n = len(questions)
    assert re.search(rf"^ana +{n}/{n} +{n}( +0){{{len(STATUSES) - 1}}}$", capsys.readouterr().out, re.M)

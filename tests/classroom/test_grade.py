"""Grading (llmnb.classroom.grade): a made-up class on a tiny chapter and on chapter 1, the rows for
every way a notebook can fail, where the questions come from, and the log that check() keeps."""
import csv
import json
import re
import shutil
from pathlib import Path

import pytest

import llmnb.classroom.grade as grading
from llmnb.check import check
from llmnb.classroom.__main__ import main
from llmnb.classroom.execute import Outcome
from llmnb.classroom.grade import Row, expected_questions, find_submissions, rows_for
from llmnb.classroom.release import release
from llmnb.errors import LlmnbError

ROOT = Path(__file__).resolve().parents[2]


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


# ---------------------------------------------------------------- the log check() writes while grading
def test_check_appends_one_json_line_per_call_when_grading(tmp_path, monkeypatch, capsys):
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("LLMNB_GRADE_LOG", str(log))
    assert check("00.2", "b") is False and check("00.2", "a") is True
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["id"], e["ok"]) for e in lines] == [("00.2", False), ("00.2", True)]
    assert lines[0]["question"].startswith("Which label does your model")
    monkeypatch.setenv("LLMNB_GRADE_LOG", str(tmp_path))  # a folder: the log cannot be written
    assert check("00.2", "a") is True
    monkeypatch.delenv("LLMNB_GRADE_LOG")
    check("00.2", "a")
    assert len(log.read_text().splitlines()) == 2
    assert capsys.readouterr().err == ""


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
                      'assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["LLMNB_GRADE_LOG"]\n'
                      'assert "submitted" not in os.getcwd()\nPath("runs").mkdir()')

    def wrong(cells):
        put(cells, 6, answers.replace("= 4", "= 5"))  # 99.1 wrong, 99.2 right, the exercise left as a stub

    def raises(cells):
        put(cells, 2, "".join(cells[2]["source"]) + "\nundefined_name")

    def hangs(cells):
        right(cells)
        put(cells, 6, "import time\ntime.sleep(120)\n" + answers)

    def deleted(cells):
        right(cells)
        put(cells, 6, answers.replace('check("99.2", answer_2)', ""))

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
        ("eve", nb, "99.2", "missing", "0", "no check('99.2', ...) call in the notebook"),
        *[("fay", nb, q, "missing", "0", "no 99_tiny.ipynb in this submission") for q in ("99.e1", "99.1", "99.2")],
    ]
    out = capsys.readouterr().out
    assert "skipped Untitled.ipynb (ana): the release does not list it" in out
    assert "skipped scratch.ipynb (fay): the release does not list it" in out
    table = out[out.index("student  "):].splitlines()
    assert re.split(r"\s+", table[0]) == ["student", "points", "correct", "wrong", "missing", "not", "run", "timed", "out"]
    assert [re.split(r"\s+", line) for line in table[2:8]] == [
        ["ana", "3/3", "3", "0", "0", "0", "0"], ["ben", "1/3", "1", "2", "0", "0", "0"],
        ["cai", "0/3", "0", "0", "0", "3", "0"], ["dev", "1/3", "1", "0", "0", "0", "2"],
        ["eve", "2/3", "2", "0", "1", "0", "0"], ["fay", "0/3", "0", "0", "3", "0", "0"]]


# ---------------------------------------------------------------- rows, without running anything
def test_rows_say_why_a_question_has_no_result():
    where = {"01.1": 5, "01.2": 9, "01.3": 9}

    def row(q, status, detail=""):
        return Row("ana", "01.ipynb", q, status, int(status == "correct"), detail)

    # A check run twice: the last run counts.
    twice = Outcome(checks=[{"id": "01.1", "ok": True}, {"id": "01.1", "ok": False}, {"id": "01.2", "ok": True}])
    assert rows_for("ana", "01.ipynb", twice, ["01.1", "01.2", "01.3"], where, 600) == [
        row("01.1", "wrong", "checked 2 times; the last counts"), row("01.2", "correct"),
        row("01.3", "missing", "check('01.3', ...) is in cell 9 but never ran")]
    # --keep-going: the notebook went on after cell 9 raised.
    going = Outcome(checks=[{"id": "01.1", "ok": True}], failed={9: "NameError: name 'x' is not defined"})
    assert rows_for("ana", "01.ipynb", going, ["01.1", "01.2"], where, 600)[1] == row(
        "01.2", "not run", "cell 9 raised NameError: name 'x' is not defined")
    # The kernel died in cell 7: what came before counts, the rest did not run.
    died = Outcome(checks=[{"id": "01.1", "ok": True}], stop="died", cell=7, error="the kernel died")
    assert rows_for("ana", "01.ipynb", died, ["01.1", "01.2"], where, 600) == [
        row("01.1", "correct"), row("01.2", "not run", "cell 7: the kernel died")]
    # An unreadable file; a notebook not handed in (with and without a list of its questions).
    broken = Outcome(stop="unreadable", error="JSONDecodeError: Expecting value")
    assert rows_for("ana", "01.ipynb", broken, ["01.1"], {}, 600) == [
        row("01.1", "not run", "cannot read the notebook: JSONDecodeError: Expecting value")]
    assert rows_for("ana", "01.ipynb", broken, None, {}, 600) == [
        row("", "not run", "cannot read the notebook: JSONDecodeError: Expecting value")]
    assert rows_for("ana", "01.ipynb", None, ["01.1"], {}, 600) == [row("01.1", "missing", "no 01.ipynb in this submission")]
    assert rows_for("ana", "01.ipynb", None, None, {}, 600) == [row("", "missing", "no 01.ipynb in this submission")]
    # No manifest knows the notebook: its own checks, then anything else that ran.
    extra = Outcome(checks=[{"id": "01.7", "ok": True}])
    assert [r.question for r in rows_for("ana", "01.ipynb", extra, None, where, 600)] == ["01.1", "01.2", "01.3", "01.7"]


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


def test_expected_questions_come_from_the_release_then_the_course_then_the_notebooks(course, tmp_path, monkeypatch):
    release(course, tmp_path / "student", echo=None)
    want = {"99_tiny.ipynb": ["99.e1", "99.1", "99.2"]}
    subs = tmp_path / "class" / "submitted"
    subs.mkdir(parents=True)
    assert expected_questions(subs, tmp_path / "student")[0] == want
    assert expected_questions(subs, tmp_path / "student" / "release.json")[0] == want
    with pytest.raises(LlmnbError, match="No release manifest"):
        expected_questions(subs, tmp_path)
    shutil.copy(tmp_path / "student" / "release.json", subs.parent)
    assert expected_questions(subs) == (want, str(subs.parent / "release.json"), True)
    shutil.copy(tmp_path / "student" / "release.json", subs)
    assert expected_questions(subs)[1] == str(subs / "release.json")
    (subs / "release.json").write_text("{}")
    with pytest.raises(LlmnbError, match="is not a release manifest"):
        expected_questions(subs)
    (subs / "release.json").unlink()
    (subs.parent / "release.json").unlink()
    monkeypatch.setattr(grading, "COURSE", course.parent)
    assert expected_questions(subs) == (want, f"the course's notebooks in {course.parent}", False)
    monkeypatch.setattr(grading, "COURSE", tmp_path / "nowhere")
    assert expected_questions(subs)[0] == {}


def test_the_command_line_says_what_is_wrong_with_exit_code_2(tmp_path, capsys):
    assert main(["grade", str(tmp_path), "--out", str(tmp_path / "g.csv")]) == 2
    assert "No submissions in" in capsys.readouterr().err
    (tmp_path / "ana").mkdir()
    (tmp_path / "ana" / "01.ipynb").write_text("{}")
    assert main(["grade", str(tmp_path), "--out", str(tmp_path / "g.csv"), "--kernel", "no-such-kernel"]) == 2
    assert "no Jupyter kernel called 'no-such-kernel'" in capsys.readouterr().err
    assert main(["grade", str(tmp_path), "--out", str(tmp_path / "g.csv"), "--timeout", "0"]) == 2
    (tmp_path / "release.json").write_text('{"notebooks": {"03_algorithm.ipynb": {"questions": ["03.1"]}}}')
    assert main(["grade", str(tmp_path), "--out", str(tmp_path / "g.csv")]) == 2
    assert "None of the submitted notebooks is listed in" in capsys.readouterr().err
    assert not (tmp_path / "g.csv").exists()


# ---------------------------------------------------------------- a class of three on chapter 1
CHAPTER_1 = ROOT / "tutorials" / "01_background.ipynb"
# Right answers, computed by the notebook's own objects (as a careful student would).
RIGHT_ANSWERS = {
    "answer_1": 'len(tokenizer("Tokenization splits unfamiliar words like smartwatches.")["input_ids"])',
    "answer_2": "table.numel() / 1e6",
    "answer_3": '{"paraphrase": "a", "opposite verdict": "b", "unrelated": "c"}[to_reference.index[0]]',
    "answer_4": 'float((reviews_test["text"].map(rule_score) == 0).mean())',
    "answer_5": 'next(t for t in tricky + list(reviews_test["text"]) if rule_label(t) != ft.predict(t))',
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
    assert re.search(rf"^ana +{n}/{n} +{n} +0 +0 +0 +0$", capsys.readouterr().out, re.M)

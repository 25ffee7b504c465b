"""Students who attack the grader, in one class with two honest ones: each attack ends as the right
status for that student only, nothing outside the scratch folders changes, nobody reaches the
network, and the honest students are graded exactly as in a class of their own."""
import json
import socket
import threading

import pytest
from classroom.test_execute import needs_bwrap, precious  # noqa: F401  (a fixture)
from classroom.test_grade import ANSWERS_99, hand_in, put, read_rows

import llmnb.classroom.sandbox as sandbox
from llmnb.classroom.__main__ import main
from llmnb.classroom.grade import grade
from llmnb.classroom.release import release
from llmnb.classroom.sandbox import UNCONFINED_WARNING

WRONG_99 = ANSWERS_99.replace("= 4", "= 5").replace("= 9", "= 10")


class Listener(threading.Thread):
    """A TCP server on 127.0.0.1 outside the sandbox that counts the connections it gets."""

    def __init__(self):
        super().__init__(daemon=True)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port, self.connections, self.done = self.server.getsockname()[1], 0, threading.Event()

    def run(self):
        while not self.done.is_set():
            try:
                conn, _ = self.server.accept()
                self.connections += 1
                conn.close()
            except OSError:
                pass

    def stop(self):
        self.done.set()
        self.join()
        self.server.close()


@pytest.fixture
def released(course, tmp_path):
    release(course, tmp_path / "student", echo=None)
    return tmp_path / "student"


def solve(cells, course, answers=ANSWERS_99):
    solution = json.loads(course.read_text())["cells"][4]["source"]
    put(cells, 4, solution)
    put(cells, 6, answers)


def add_cell(cells, source):
    cells.append({"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source})


def grade_rows(subs, released, tmp_path, name, **options):
    grade(subs, out=tmp_path / name, release=released, timeout=60, echo=None, **options)
    return read_rows(tmp_path / name)[1:]


@needs_bwrap
def test_attacks_get_no_mark_they_did_not_earn_and_touch_nothing(course, released, tmp_path, precious):  # noqa: F811
    listener = Listener()
    listener.start()
    subs, alone = tmp_path / "submitted", tmp_path / "honest-only"
    for folder in (subs, alone):
        hand_in(released / "99_tiny.ipynb", folder, "ana", lambda cells: solve(cells, course))
        hand_in(released / "99_tiny.ipynb", folder, "ben", lambda cells: solve(cells, course, WRONG_99))

    def forges_the_log(cells):  # the old grader trusted this log: every check "ok"
        add_cell(cells, "import json, os\nfor q in ('99.e1', '99.1', '99.2'):\n"
                        "    for path in filter(None, [os.environ.get('LLMNB_GRADE_LOG'), 'grade-log.jsonl']):\n"
                        "        open(path, 'a').write(json.dumps({'id': q, 'ok': True}) + '\\n')")

    def patches_check(cells):  # check() says yes to anything, and the grading helpers are replaced
        put(cells, 6, WRONG_99)
        add_cell(cells, "import llmnb.check as c\nc.check = lambda *a, **k: True\nc.judge = lambda *a: True\n"
                        "c.key_of = lambda q, r=None: {'kind': 'number', 'value': 5.0, 'rel': 0, 'tol': 0}\n"
                        "c.gradable = lambda q, a: 5.0\nfor e in c.EXERCISES.values():\n"
                        "    e.checker = lambda a: True\nprint(c.check('99.1', 'anything'))")

    def prints_like_the_grader(cells):  # values lines with every answer right, under made-up nonces,
        # printed now and again by a print() of its own whenever anything prints (the grader's cell too)
        add_cell(cells, "import builtins, json\n"
                        "FAKE = json.dumps({'99.1': 4.0, '99.2': 9.0, '99.e1': [6, -2]})\n"
                        "def print(*args, **kwargs):\n"
                        "    for tag in ('llmnb-values-' + '0' * 32, 'llmnb-values-'):\n"
                        "        builtins.print(tag + FAKE)\n"
                        "    builtins.print(*args, **kwargs)\n"
                        "print('hello')")

    def deletes_a_file(cells):  # answers right, then tries to delete the instructor's file
        solve(cells, course)
        add_cell(cells, f"import os\nos.remove({str(precious)!r})")

    def calls_home(cells):  # answers right, then tries to reach a server on the grader's loopback
        solve(cells, course)
        add_cell(cells, f"import socket\nsocket.create_connection(('127.0.0.1', {listener.port}), timeout=3)")

    def hogs_memory(cells):  # answers right, then fills memory
        solve(cells, course)
        add_cell(cells, "hog = bytearray(3 * 1024**3)")

    attackers = [("cai", forges_the_log), ("dev", patches_check), ("eve", prints_like_the_grader),
                 ("fay", deletes_a_file), ("gus", calls_home), ("hal", hogs_memory)]
    for student, edit in attackers:
        hand_in(released / "99_tiny.ipynb", subs, student, edit)
    try:
        rows = grade_rows(subs, released, tmp_path, "class.csv", sandbox="bwrap", memory_mb=600)
    finally:
        listener.stop()
    by_student = {}
    for student, _nb, question, status, points, detail in rows:
        by_student.setdefault(student, []).append((question, status, points))
    assert by_student["ana"] == [("99.e1", "correct", "1"), ("99.1", "correct", "1"), ("99.2", "correct", "1")]
    assert by_student["ben"] == [("99.e1", "correct", "1"), ("99.1", "wrong", "0"), ("99.2", "wrong", "0")]
    for student in ("cai", "eve"):  # the stub and answers left as None: nothing forged counts
        assert by_student[student] == [("99.e1", "wrong", "0"), ("99.1", "wrong", "0"), ("99.2", "wrong", "0")], student
    assert by_student["dev"] == [("99.e1", "wrong", "0"), ("99.1", "wrong", "0"), ("99.2", "wrong", "0")]
    for student in ("fay", "gus"):  # their last cell failed; what they answered before it still counts
        assert by_student[student] == [("99.e1", "correct", "1"), ("99.1", "correct", "1"), ("99.2", "correct", "1")]
    assert [status for _q, status, _p in by_student["hal"]] == ["out of memory"] * 3
    assert listener.connections == 0
    # The precious file is checked unchanged when the fixture ends; the submissions too:
    assert not list(subs.rglob("grade-log.jsonl")) and not list(subs.rglob("runs"))
    # The honest students, graded in a class of their own, get the very same rows.
    honest = [row for row in rows if row[0] in ("ana", "ben")]
    assert grade_rows(alone, released, tmp_path, "alone.csv", sandbox="bwrap", memory_mb=600) == honest


def test_without_bubblewrap_the_grader_warns_before_the_first_notebook(course, released, tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "bwrap_works", lambda: False)
    subs = tmp_path / "submitted"
    hand_in(released / "99_tiny.ipynb", subs, "ana", lambda cells: solve(cells, course))
    lines = []
    grade(subs, out=tmp_path / "g.csv", release=released, timeout=60, echo=lines.append)
    warned = lines.index(UNCONFINED_WARNING)
    assert warned < next(i for i, line in enumerate(lines) if line.startswith("ana  "))
    assert [r[3] for r in read_rows(tmp_path / "g.csv")[1:]] == ["correct"] * 3
    lines.clear()
    grade(subs, out=tmp_path / "g.csv", release=released, timeout=60, echo=lines.append, sandbox="none")
    assert UNCONFINED_WARNING not in lines and any("unconfined, with your rights (--sandbox none)" in line for line in lines)
    assert main(["grade", str(subs), "--out", str(tmp_path / "g.csv"), "--release", str(released), "--sandbox", "bwrap"]) == 2

"""Tests for llmnb.check: self-check exercises. No kernel, no model, no torch."""
from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from llmnb import check as chk
from llmnb.check import (
    Exercise,
    Hidden,
    check,
    choice,
    fingerprint,
    items,
    number,
    predicate,
    progress,
    register,
    text,
)


# A small chapter "00" as a notebook would register it (tutorials/00_quickstart.ipynb registers its own).
CHAPTER_00 = (
    ("00.1", "How many parameters (in millions, ±0.5) does the bundled MiniLM have?",
     lambda: number(22.7, tol=0.5, form="a number of millions, e.g. 12.3"), "read .num_parameters / 1e6."),
    ("00.2", "Which label does 'Absolutely loved it' get? (a) positive  (b) negative",
     lambda: choice({"a": "positive", "b": "negative"}, Hidden(fingerprint("a"))), "answer with a letter."),
    ("00.3", "What share of the reviews is positive (a fraction between 0 and 1)?",
     lambda: number(0.5, tol=0.005, form="a fraction between 0 and 1, e.g. 0.25"), "count the labels."),
)


@pytest.fixture(autouse=True)
def isolated(monkeypatch):
    """Each test gets its own catalogue (chapter 00 above) and its own session's results."""
    monkeypatch.setattr(chk, "EXERCISES", {})
    monkeypatch.setattr(chk, "_results", {})
    monkeypatch.setattr(chk, "_misses", {})
    monkeypatch.delenv("LLMNB_QUIET", raising=False)
    for exercise_id, question, checker, hint in CHAPTER_00:
        register(Exercise(exercise_id, question, checker(), hint))


@pytest.fixture
def num():
    return register(Exercise("99.1", "Pick a number", number(3.75, rel=0.01), "think of pi, then add a bit"))


@pytest.fixture
def word():
    return register(Exercise("99.2", "Name the part that splits text", text("tokenizer"), "it makes tokens"))


def result(capsys, exercise_id, answer):
    ok = check(exercise_id, answer)
    return ok, capsys.readouterr().out


def test_right_answer_returns_true_and_prints_correct(capsys, num, word):
    for exercise_id, answer in [("99.1", 3.75), ("99.2", "tokenizer"), ("00.1", 22.7), ("00.2", "a"), ("00.3", 0.5)]:
        ok, out = result(capsys, exercise_id, answer)
        assert ok is True, exercise_id
        assert out.strip() == f"[{exercise_id}] ✓ Correct"


def test_wrong_answer_returns_false_and_prints_hint(capsys, num):
    ok, out = result(capsys, "99.1", 2.0)
    assert ok is False
    assert "✗ Not yet" in out and "hint: think of pi, then add a bit" in out
    assert "Correct" not in out
    ok, out = result(capsys, "00.2", "b")
    assert ok is False and "hint: answer with a letter." in out


def test_expected_answer_is_never_shown(capsys, num, word):
    for answer in (1.0, 100, "3.75?", None):
        ok, out = result(capsys, "99.1", answer)
        assert ok is False and "3.75" not in out, answer
    for answer in ("embedding", "token", 42):
        ok, out = result(capsys, "99.2", answer)
        assert ok is False and "tokenizer" not in out.lower(), answer
    for answer in (20, "many", 0):
        ok, out = result(capsys, "00.1", answer)
        assert ok is False and "22.7" not in out
    ok, out = result(capsys, "00.3", 0.7)
    assert ok is False and "0.5" not in out and "0.50" not in out
    # nor in reprs, nor in the catalogue's source for the fixed built-in fact
    assert "3.75" not in repr(num) and "tokenizer" not in repr(word) and "22.7" not in repr(chk.EXERCISES["00.1"])
    assert "22.7" not in Path(chk.__file__).read_text()
    assert fingerprint("a") not in repr(Hidden(fingerprint("a")))


def test_number_tolerance_absolute_and_relative(capsys):
    # 00.1 is 22.7 within ±0.5
    assert [check("00.1", x) for x in (22.25, 23.15, 22.1, 23.3)] == [True, True, False, False]
    register(Exercise("99.3", "q", number(1000.0, rel=0.01), "h"))
    assert [check("99.3", x) for x in (1009, 991.0, 1011, 989)] == [True, True, False, False]
    register(Exercise("99.4", "q", number(lambda: 2.0), "h"))  # computed at check time, near-exact default
    assert [check("99.4", x) for x in (2, 2.0000001, 2.01)] == [True, True, False]


def test_number_accepts_numpy_values(capsys):
    import numpy as np

    assert check("00.3", np.float64(0.5)) is True
    assert check("00.1", np.array([22.7])[0]) is True


def test_wrong_type_is_not_yet_with_a_form_hint(capsys, num, word):
    cases = [
        ("00.1", "22.7", "the answer should be a number of millions"),
        ("99.1", [3.75], "the answer should be a number"),
        ("99.1", True, "the answer should be a number"),
        ("99.2", 7, "the answer should be a string"),
        ("00.2", "z", "the answer should be one of the letters a, b"),
        ("00.2", 1, "the answer should be one of the letters a, b"),
    ]
    for exercise_id, answer, form in cases:
        ok, out = result(capsys, exercise_id, answer)  # must not raise
        assert ok is False and "✗ Not yet" in out and form in out, (exercise_id, answer)


def test_choice_accepts_letter_forms_and_option_text(capsys):
    assert [check("00.2", a) for a in ("a", " (A) ", "a.", "Positive", "b", "negative")] == [True] * 4 + [False] * 2
    register(Exercise("99.5", "q", choice("abc", "c"), "h"))
    assert [check("99.5", a) for a in ("C", "a")] == [True, False]


def test_items_are_order_insensitive_unless_ordered(capsys):
    register(Exercise("99.6", "q", items(["Cat", "dog"]), "h"))
    assert [check("99.6", a) for a in (["dog", "cat"], {"cat", "DOG"}, ("cat",), ["cat", "dog", "cow"])] == [
        True, True, False, False]
    register(Exercise("99.7", "q", items([1, 2, 3], ordered=True), "h"))
    assert [check("99.7", a) for a in ([1, 2, 3], [3, 2, 1])] == [True, False]
    register(Exercise("99.8", "q", items(Hidden(fingerprint({"x", "y"}))), "h"))
    assert [check("99.8", a) for a in (["Y", "x"], ["x"])] == [True, False]
    ok, out = result(capsys, "99.6", "cat dog")
    assert ok is False and "the answer should be a list or set of items" in out


def test_text_ignores_case_and_spaces_and_works_hidden(capsys, word):
    assert [check("99.2", a) for a in ("  Tokenizer ", "TOKENIZER", "token izer")] == [True, True, False]
    register(Exercise("99.9", "q", text(Hidden(fingerprint("Attention Mask"))), "h"))
    assert [check("99.9", a) for a in ("attention   mask", "attention")] == [True, False]


def test_predicate_checks_behaviour_and_hides_its_errors(capsys):
    def doubles(fn):
        if fn(21) == 42:
            return True
        raise AssertionError("expected 42 for 21")  # must not be shown

    register(Exercise("99.10", "Write f(x) = 2x", predicate(doubles, form="a function of one number"), "use *"))
    assert check("99.10", lambda x: 2 * x) is True
    ok, out = result(capsys, "99.10", lambda x: x + 1)
    assert ok is False and "AssertionError" in out and "should be a function of one number" in out
    assert "42" not in out and "hint: use *" in out
    ok, out = result(capsys, "99.10", "not a function")
    assert ok is False and "TypeError" in out


def test_unknown_id_raises_value_error_listing_the_chapter(num):
    with pytest.raises(ValueError) as info:
        check("00.9", 1)
    assert "'00.9'" in str(info.value) and "00.1, 00.2, 00.3" in str(info.value)
    assert "99.1" not in str(info.value)  # only the chapter's own ids
    with pytest.raises(ValueError, match="chapter 42 has none.*00, 99"):
        check("42.1", 1)


def test_progress_reflects_answers(capsys):
    def statuses():
        progress("00")
        out = capsys.readouterr().out
        return {line.split()[0]: line.rsplit("  ", 1)[1].strip() for line in out.splitlines() if line[:3] == "00."}, out

    rows, out = statuses()
    assert rows == {"00.1": "· not tried", "00.2": "· not tried", "00.3": "· not tried"} and "0/3 correct" in out
    check("00.1", 22.7)
    check("00.2", "b")
    rows, out = statuses()
    assert rows == {"00.1": "✓ correct", "00.2": "✗ not yet", "00.3": "· not tried"} and "1/3 correct" in out
    check("00.1", 1)  # right once in the session stays right
    check("00.2", "a")
    rows, out = statuses()
    assert rows["00.1"] == "✓ correct" and rows["00.2"] == "✓ correct" and "2/3 correct" in out
    assert "How many parameters" in out


def test_nothing_on_stderr_even_when_checkers_write_there(capfd, monkeypatch, num):
    def noisy(answer):
        print("debug", file=sys.stderr)
        warnings.warn("careful")
        return answer == 1

    register(Exercise("99.11", "q", predicate(noisy), "h"))
    for quiet in ("1", None):
        if quiet:
            monkeypatch.setenv("LLMNB_QUIET", quiet)
        else:
            monkeypatch.delenv("LLMNB_QUIET")
        assert check("99.11", 1) is True and check("99.11", 2) is False
        assert check("99.1", "text") is False and check("00.3", 0.5) is True
        progress()
        out, err = capfd.readouterr()
        assert err == "", quiet
        assert "✓ Correct" in out and "✗ Not yet" in out and "correct" in out.splitlines()[-1]


def test_notebook_gets_html_but_quiet_mode_prints_plain_text(capsys, monkeypatch, num):
    import IPython.display

    import llmnb.display

    shown = []
    monkeypatch.setattr(llmnb.display, "in_notebook", lambda: True)
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append(obj))
    check("99.1", 2.0)
    assert len(shown) == 1 and "Not yet" in shown[0]["text/html"] and "3.75" not in str(shown[0])
    assert capsys.readouterr().out == ""
    monkeypatch.setenv("LLMNB_QUIET", "1")
    check("99.1", 3.75)
    assert len(shown) == 1 and capsys.readouterr().out.strip() == "[99.1] ✓ Correct"


def test_import_and_check_do_not_import_torch():
    code = (
        "import sys, llmnb.check as c\n"
        "assert 'torch' not in sys.modules, 'import'\n"
        "c.register(c.Exercise('00.1', 'q', c.number(22.7, tol=0.5), ('nudge', 'idea'), kind='compute'))\n"
        "c.register(c.Exercise('00.3', 'q', c.number(0.5, tol=0.005), 'h'))\n"
        "c.check('00.3', 0.5); c.check('00.1', 'x'); c.progress()\n"
        "assert 'torch' not in sys.modules, 'check'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def test_a_grader_judges_plain_values_against_keys_outside_the_kernel(num, word):
    """gradable (in the student's kernel) -> plain values; key_of (in the instructor's) -> a key;
    judge (in the grader's process) decides, and agrees with check() for value checkers."""
    import json

    from llmnb.check import gradable, judge, key_of

    def round_trip(exercise_id, answer, reference=None):
        key, value = key_of(exercise_id, reference), gradable(exercise_id, answer)
        return judge(json.loads(json.dumps(key)), json.loads(json.dumps(value)))  # as plain JSON travels

    assert round_trip("99.1", 3.76) and not round_trip("99.1", 4.0)
    assert round_trip("99.2", "  Tokenizer ") and not round_trip("99.2", "model")
    assert round_trip("00.2", "(A)") and not round_trip("00.2", "b")  # a Hidden letter: only its sha256 travels
    assert set(key_of("00.2")) == {"kind", "sha256"}  # the key holds no answer in the clear
    register(Exercise("99.3", "Three items", items(Hidden(fingerprint(["x", "y", "z"]))), "xyz"))
    assert round_trip("99.3", {"z", "Y", "x"}) and not round_trip("99.3", ["x", "y"])
    # A predicate is graded on its probe: the student's function's outputs against the solution's.
    register(Exercise("99.4", "Write double(x)", predicate(lambda f: f(3) == 6, probe=lambda f: [f(3), f(-1.5)]), "x + x"))
    assert round_trip("99.4", lambda x: x * 2, reference=lambda x: x + x)
    assert not round_trip("99.4", lambda x: 6 if x == 3 else 0, reference=lambda x: x + x)  # passes fn, not the probe
    assert key_of("99.4", lambda x: x + x) == {"kind": "probe", "value": [6, -3.0], "tol": 1e-4}
    # Wrong kinds of answer are WrongForm in the kernel; a tampered value is simply wrong in the grader.
    with pytest.raises(chk.WrongForm):
        gradable("99.1", "3.75")
    assert not judge(key_of("99.1"), "3.75") and not judge(key_of("99.1"), True) and not judge(key_of("99.2"), 3)
    register(Exercise("99.5", "No probe", predicate(lambda f: True), "h"))
    with pytest.raises(chk.NotGradable):
        gradable("99.5", print)


def test_hints_come_in_tiers_one_more_with_each_wrong_answer(capsys):
    register(Exercise("99.5", "q", number(2.0), ("a nudge", "the idea"), kind="compute"))
    ok, out = result(capsys, "99.5", 1.0)
    assert not ok and "(hint 1 of 2) a nudge" in out and "the idea" not in out and "next hint" in out
    ok, out = result(capsys, "99.5", 1.5)
    assert "(hint 1 of 2) a nudge (hint 2 of 2) the idea" in out and "next hint" not in out
    ok, out = result(capsys, "99.5", 3.0)  # no third tier: the two stay
    assert "(hint 2 of 2) the idea" in out
    register(Exercise("99.5", "q", number(2.0), ("a nudge", "the idea")))  # registered again: back to the nudge
    ok, out = result(capsys, "99.5", 1.0)
    assert "the idea" not in out
    ok, out = result(capsys, "00.1", 1.0)  # a single hint is shown as before
    assert "hint: read .num_parameters / 1e6." in out and "hint 1" not in out


def test_an_exercise_says_whether_it_asks_to_predict_or_compute():
    assert Exercise("99.6", "q", number(1), "h").kind is None
    assert Exercise("99.6", "q", number(1), "h", kind="predict").kind == "predict"
    assert Exercise("99.6", "q", number(1), ("n", "i"), "compute").hints == ("n", "i")
    with pytest.raises(ValueError, match="kind must be one of"):
        Exercise("99.6", "q", number(1), "h", kind="recall")
    with pytest.raises(ValueError, match="hint must be"):
        Exercise("99.6", "q", number(1), ("nudge", ""))

"""The self-check rules of tests/selfcheck_rules.py: held by every tutorial's source (the "printed"
rule runs in tests/test_notebooks.py, on the executed notebook), and each rule shown to fail once
on a small doctored notebook."""
import hashlib
import json
from pathlib import Path

import pytest

import selfcheck_rules as rules
from llmnb.check import Exercise, Hidden, choice, key_of, number, register, text

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"


def tutorials():
    return {rules.chapter_of(p.stem): rules.registered(json.loads(p.read_text())) for p in sorted(TUTORIALS.glob("*.ipynb"))}


def test_every_tutorial_keeps_the_static_rules_or_is_allowed_to_break_them():
    problems = rules.check_static(tutorials())
    assert not problems, "\n".join(problems)


def test_the_allowlists_name_real_chapters_and_real_rules():
    chapters = set(tutorials())
    assert set(rules.ALLOWED) == {"printed", "predict", "hints", "letters"}
    for rule, allowed in rules.ALLOWED.items():
        assert set(allowed) <= chapters, (rule, set(allowed) - chapters)


# ---- a doctored notebook for each rule

def md(text):
    return {"cell_type": "markdown", "source": text, "metadata": {}}


def code(source, *printed):
    return {"cell_type": "code", "source": source, "metadata": {}, "outputs": [
        {"output_type": "stream", "name": "stdout", "text": t} for t in printed]}


def hidden(letter):
    return f'Hidden("{hashlib.sha256(letter.encode()).hexdigest()}")'


@pytest.fixture
def keys(monkeypatch):
    """Keys as key_of gives them, for a few questions of a chapter "98"."""
    import llmnb.check as chk

    monkeypatch.setattr(chk, "EXERCISES", {})
    register(Exercise("98.1", "share (±0.001)", number(0.36712, tol=0.001), "h"))
    register(Exercise("98.2", "count", number(64), "h"))
    register(Exercise("98.3", "exception", text(Hidden(chk.fingerprint("AttributeError"))), "h"))
    register(Exercise("98.4", "letter", choice("abc", Hidden(chk.fingerprint("b"))), "h"))
    register(Exercise("98.5", "share of weights (±0.0001)", number(0.07801, tol=1e-4), "h"))
    register(Exercise("98.6", "ratio (±2 %)", number(3.4567, rel=0.02), "h"))
    return {q: key_of(q) for q in ("98.1", "98.2", "98.3", "98.4", "98.5", "98.6")}


CHECKS = code('check("98.1", answer_1)\ncheck("98.2", answer_2)\ncheck("98.3", answer_3)\n'
              'check("98.4", answer_4)\ncheck("98.5", answer_5)\ncheck("98.6", answer_6)\n')


def test_printed_rule_flags_an_answer_shown_above_its_question(keys):
    nb = {"cells": [
        md("# Chapter 98\nThe model has 64 layers and b is a letter."),
        code("print(...)", "test accuracy 0.367 on 240 reviews\n"),     # 98.1 at three decimals
        code("e", "5.1 fails: AttributeError - no decode\n"),            # 98.3, a word of a line
        code("t", "share of all weights  7.80%\n", "ratio 3.46\n"),      # 98.5 as a percentage; 98.6 within 2 %
        CHECKS,
    ]}
    assert rules.printed_answers(nb, keys) == {"98.1": ["0.367"], "98.3": ["attributeerror"], "98.5": ["7.80%"],
                                               "98.6": ["3.46"]}
    with pytest.raises(AssertionError, match="98.1"):
        rules.check_printed("98_doctored", nb, keys)


def test_printed_rule_leaves_common_integers_letters_and_later_outputs_alone(keys):
    nb = {"cells": [
        md("64 labels, 480 reviews, 1,000 steps, answer (b)."),       # 98.2 = 64 is too common a number to flag
        code("x", "accuracy 0.37\n", "ratio 3.3\n"),                   # 0.37 is outside ±0.001; 3.3 outside 2 %
        code("y", "time factor 3.41\n"),                              # within 2 % of 98.6, but not 3.4567 printed: another number
        CHECKS,
        code("print(share)", "0.367\n"),                               # below the question: fine
    ]}
    assert rules.printed_answers(nb, keys) == {}
    rules.check_printed("98_doctored", nb, keys)


def test_printed_rule_reads_the_question_s_own_hint(keys):
    checked = dict(CHECKS, outputs=[{"output_type": "stream", "name": "stdout",
                                     "text": "[98.2] ✗ Not yet — hint: ...\n[98.1] ✗ Not yet — hint: it is 0.3671\n"}])
    assert rules.printed_answers({"cells": [md("# 98"), checked]}, keys) == {"98.1": ["0.3671"]}


def test_printed_rule_is_a_ratchet(keys, monkeypatch):
    monkeypatch.setitem(rules.ALLOWED, "printed", {"98": "not rebuilt yet"})
    leaky = {"cells": [code("x", "0.367\n"), CHECKS]}
    rules.check_printed("98_doctored", leaky, keys)   # allowed to leak
    with pytest.raises(AssertionError, match="take '98' off"):
        rules.check_printed("98_doctored", {"cells": [CHECKS]}, keys)


def notebook(*exercises):
    return {"cells": [code("from llmnb.check import *\n" + "\n".join(exercises))]}


GOOD = notebook(
    'register(Exercise("97.1", "q", number(lambda: 45), ("nudge", "idea"), kind="compute"))',
    f'register(Exercise("97.2", "q", choice("abc", {hidden("a")}), ("nudge", "idea"), "predict"))',
    f'register(Exercise("97.3", "q", choice("abcd", expected={hidden("c")}), hint=("n", "i")))',
    f'register(Exercise("97.4", "q", choice("ab", {hidden("b")}), ("n", "i")))',
    'register(Exercise("97.e1", "write f", predicate(bool), "one hint is fine for a coding exercise"))',
)


def test_source_rules_read_kinds_tiers_and_hidden_letters():
    assert rules.registered(GOOD) == {
        "97.1": {"kind": "compute", "tiers": 2, "letter": None},
        "97.2": {"kind": "predict", "tiers": 2, "letter": "a"},
        "97.3": {"kind": None, "tiers": 2, "letter": "c"},
        "97.4": {"kind": None, "tiers": 2, "letter": "b"},
    }
    assert rules.check_static({"97": rules.registered(GOOD)}) == []


def test_predict_and_hint_rules_fail_on_a_doctored_chapter():
    flat = notebook(
        'register(Exercise("97.1", "q", number(1), "only a hint", kind="compute"))',
        'register(Exercise("97.2", "q", number(2), ("nudge", "idea")))',
    )
    problems = rules.check_static({"97": rules.registered(flat)})
    assert any("97 breaks the 'predict' rule" in p and "1 self-checks marked" in p for p in problems), problems
    assert any("97 breaks the 'hints' rule" in p and "97.1: 1 hint tier" in p for p in problems), problems


def test_letter_rule_fails_when_one_letter_holds_more_than_40_percent():
    leaning = notebook(*(f'register(Exercise("96.{n}", "q", choice("abc", {hidden(letter)}), ("n", "i"), "predict"))'
                         for n, letter in enumerate("bbca", start=1)))
    problems = rules.check_static({"96": rules.registered(leaning)})
    assert problems == ["multiple-choice answers of ['96'] lean on one letter: {'a': 0.25, 'b': 0.5, 'c': 0.25}; "
                        "no letter may hold more than 40%"]
    assert rules.spread_ok(list("abcab")) and not rules.spread_ok(list("abcabb"))


def test_static_rules_are_ratchets(monkeypatch):
    for rule in ("predict", "hints", "letters"):
        monkeypatch.setitem(rules.ALLOWED, rule, {"97": "not rebuilt yet"})
    problems = rules.check_static({"97": rules.registered(GOOD)})
    assert sorted(problems) == sorted(f"97 keeps the {r!r} rule{' when counted in' if r == 'letters' else ''}: "
                                      f"take it off ALLOWED[{r!r}]" for r in ("predict", "hints", "letters"))


def test_the_letter_ratchet_asks_only_for_what_can_come_off_together(monkeypatch):
    """Each of two all-"b" chapters could be counted in alone, but not both: only the first must come off."""
    spread = notebook(*(f'register(Exercise("95.{n}", "q", choice("abcd", {hidden(c)}), ("n", "i"), "predict"))'
                        for n, c in enumerate("acd", start=1)))
    leaning = lambda chapter: notebook(*(f'register(Exercise("{chapter}.{n}", "q", choice("ab", {hidden("b")}), ("n", "i")))'
                                         for n in (1, 2)))
    chapters = {c: rules.registered(nb) for c, nb in (("95", spread), ("93", leaning("93")), ("94", leaning("94")))}
    monkeypatch.setitem(rules.ALLOWED, "letters", {"93": "", "94": ""})
    problems = [p for p in rules.check_static(chapters) if "letters" in p]
    assert problems == ["93 keeps the 'letters' rule when counted in: take it off ALLOWED['letters']"]

"""The rules a chapter's closing self-checks keep (issue 24; docs/teaching.md, "Writing self-checks").

* printed: no self-check asks for a value that the notebook printed, or stated in its prose,
  above the question, nor shows it in the question's own hint. Read from an executed notebook
  and each question's key (tests/test_notebooks.py::test_notebook_runs_clean).
* predict: each chapter has at least two self-checks marked `kind="predict"` or `"compute"`.
* hints: every self-check's hint comes in tiers, at least a nudge and then the idea.
* letters: over the chapters' multiple-choice answers kept as `Hidden` fingerprints, no letter
  holds more than 40 %.

The last three are read from the notebooks' source, without running them (tests/test_selfcheck_rules.py).

Chapters not yet rebuilt are listed in ALLOWED below, rule by rule. The list is a ratchet: a
listed chapter that keeps a rule fails the test until it is taken off the list, so it only shrinks.
Self-checks are the questions "CC.N" ("03b.N"); the "your turn" exercises "CC.eN" are not.
"""
from __future__ import annotations

import ast
import hashlib
import re
import string

from llmnb.check import KINDS, judge
from llmnb.classroom.cells import _parse, question_cells, source_of

# Chapter (the file name's prefix) -> why it may still break the rule. Every chapter is rebuilt (issue 24), so the
# lists are empty; a new chapter that cannot keep a rule yet goes here with its reason.
ALLOWED = {
    "printed": {},
    "predict": {},
    "hints": {},
    # Counted in, a chapter listed here would put more than 40 % of the answers on one letter.
    "letters": {},
}
MOST_ON_ONE_LETTER = 0.40
SELF_CHECK = re.compile(r"\d+[a-z]?\.\d+")
LETTERS = {hashlib.sha256(c.encode()).hexdigest(): c for c in string.ascii_lowercase}


def chapter_of(stem: str) -> str:
    """"03b_inside_gpt" -> "03b": the chapter is the file name's prefix."""
    return stem.split("_")[0]


# ---- printed: a self-check's answer among what the notebook showed above it

NUMBER = re.compile(r"(?<![\w.])[-−]?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?(%?)(?![\w])")


def _distinctive(token: str) -> bool:
    """Worth flagging when printed: a fractional part, or three significant digits or more.
    "0.367", "22.7", "1.5e-3", "432" and "1,772,546" are; "2", "64", "480" and "1,000" are not
    (sizes and counts that a notebook prints for other reasons)."""
    mantissa = re.split(r"[eE]", token.lstrip("-−").rstrip("%").replace(",", ""))[0]
    if "." in mantissa and mantissa.split(".")[1].strip("0"):
        return True
    return len(mantissa.split(".")[0].strip("0")) >= 3


def printed_numbers(text: str) -> list[tuple[str, float]]:
    """The distinctive numbers in `text`, as printed and as values; "12.5%" gives both 12.5 and 0.125."""
    found = []
    for match in NUMBER.finditer(text):
        token = match.group(0)
        if not _distinctive(token):
            continue
        try:
            value = float(token.replace(",", "").replace("−", "-").rstrip("%"))
        except ValueError:
            continue
        found.append((token, value))
        if match.group(1):
            found.append((token, value / 100))
    return found


def shows(token: str, value: float, answer: float) -> bool:
    """Whether the printed `token` (read as `value`) is `answer` written at the token's precision:
    "0.367" shows 0.36712, "3.46" shows 3.4567, "7.80%" shows 0.07801. A number that only falls
    within a check's tolerance is another quantity that happens to be near the answer (a CI run
    printed a timing factor of 1.644 within 2 % of a timing answer): a learner has no reason to
    copy it, and flagging it made the rule fail by chance."""
    mantissa, _, exponent = token.replace(",", "").rstrip("%").lstrip("-−").lower().partition("e")
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    last_place = 10.0 ** (int(exponent or 0) - decimals)
    if token.endswith("%") and value != float(token.replace(",", "").replace("−", "-").rstrip("%")):
        last_place /= 100   # the percentage read as a fraction
    return abs(answer - value) <= 0.5 * last_place * (1 + 1e-9)


def _phrases(text: str, longest: int = 6):
    """Every run of 1..`longest` words of each line, normalised as llmnb.check's text answers are,
    with and without the punctuation around them."""
    for line in text.splitlines():
        words = line.lower().split()
        for n in range(1, longest + 1):
            for i in range(len(words) - n + 1):
                phrase = " ".join(words[i:i + n])
                yield phrase
                yield phrase.strip(string.punctuation + "“”‘’ ")


def _texts_of(cell) -> list[str]:
    if cell.get("cell_type") == "markdown":
        return [source_of(cell)]
    texts = []
    for output in cell.get("outputs", []) or []:
        text = output.get("text", "")
        texts.append(text if isinstance(text, str) else "".join(text))
        plain = (output.get("data") or {}).get("text/plain", "")
        texts.append(plain if isinstance(plain, str) else "".join(plain))
    return texts


def shown_before(nb, question: str) -> str:
    """What the learner has seen when they answer `question`: every markdown cell and every cell's
    output above the cell that checks it, and the lines of that cell's output about the question
    (its hint, as shown to a wrong or missing answer)."""
    cells = nb["cells"]
    where = question_cells(cells)[question] - 1  # 0-based index of the checking cell
    texts = [t for cell in cells[:where] for t in _texts_of(cell)]
    texts += [line for t in _texts_of(cells[where]) for line in t.splitlines() if f"[{question}]" in line]
    return "\n".join(texts)


def printed_answers(nb, keys: dict[str, dict]) -> dict[str, list[str]]:
    """Self-check -> what the notebook showed above it that would be marked right as its answer.

    `keys`: question -> its key (llmnb.check.key_of). A number counts when a distinctive printed
    number (see `_distinctive`) is the answer at the precision it is printed with (see `shows`) and
    within the check's tolerance, so a value printed to three decimals counts against a tolerance
    of 0.001; an exact text answer counts when a phrase of the
    output hashes to its key. Letters (multiple choice) and probes of functions are not read."""
    found: dict[str, list[str]] = {}
    for question, key in keys.items():
        if not SELF_CHECK.fullmatch(question) or not isinstance(key, dict):
            continue
        shown = shown_before(nb, question)
        if key.get("kind") == "number":
            hits = sorted({token for token, value in printed_numbers(shown)
                           if judge(key, value) and shows(token, value, key["value"])})
        elif key.get("kind") == "exact" and key["sha256"] not in LETTERS:
            hits = sorted({phrase for phrase in _phrases(shown)
                           if hashlib.sha256(phrase.encode("utf-8")).hexdigest() == key["sha256"]})
        else:
            continue
        if hits:
            found[question] = hits
    return found


def check_printed(stem: str, nb, keys: dict[str, dict]) -> None:
    """The rule, with its ratchet, for one executed notebook."""
    chapter, found = chapter_of(stem), printed_answers(nb, keys)
    if chapter in ALLOWED["printed"]:
        assert found, (f"{stem} no longer shows a self-check's answer above it: take {chapter!r} off "
                       f"ALLOWED['printed'] in tests/selfcheck_rules.py")
        return
    assert not found, (f"{stem}: self-checks whose answer the notebook prints (or states) above them, "
                       f"or in their hint; ask what the learner must predict or compute instead: {found}")


# ---- read from the source: the self-checks a notebook registers

def registered(nb) -> dict[str, dict]:
    """Self-check id -> {"kind", "tiers" (number of hint tiers, or None when not written out),
    "letter" (the Hidden multiple-choice answer, or None)}, from the `Exercise(...)` calls of the
    notebook's code cells."""
    found = {}
    for cell in nb["cells"]:
        if cell.get("cell_type") != "code":
            continue
        tree = _parse(source_of(cell))
        for node in ast.walk(tree) if tree else ():
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "Exercise"):
                continue
            arguments = dict(zip(("id", "question", "checker", "hint", "kind"), node.args))
            arguments.update({k.arg: k.value for k in node.keywords})
            first = arguments.get("id")
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str) and SELF_CHECK.fullmatch(first.value)):
                continue
            kind, hint = arguments.get("kind"), arguments.get("hint")
            found[first.value] = {
                "kind": kind.value if isinstance(kind, ast.Constant) else None,
                "tiers": len(hint.elts) if isinstance(hint, (ast.Tuple, ast.List)) else 1 if isinstance(hint, ast.Constant) else None,
                "letter": _hidden_letter(arguments.get("checker")),
            }
    return found


def _hidden_letter(checker) -> str | None:
    """The letter of `choice(..., Hidden("<sha256>"))`, found by hashing the letters as Hidden does."""
    if not (isinstance(checker, ast.Call) and getattr(checker.func, "id", getattr(checker.func, "attr", None)) == "choice"):
        return None
    expected = checker.args[1] if len(checker.args) > 1 else {k.arg: k.value for k in checker.keywords}.get("expected")
    if (isinstance(expected, ast.Call) and getattr(expected.func, "id", None) == "Hidden" and expected.args
            and isinstance(expected.args[0], ast.Constant)):
        return LETTERS.get(expected.args[0].value)
    return None


def predict_problems(exercises: dict[str, dict]) -> list[str]:
    """Why a chapter breaks the "predict" and "hints" rules (empty when it keeps them)."""
    marked = [q for q, e in exercises.items() if e["kind"] in KINDS]
    return [] if len(marked) >= 2 else [f"{len(marked)} self-checks marked predict/compute ({marked}); at least 2"]


def hint_problems(exercises: dict[str, dict]) -> list[str]:
    return [f"{q}: {e['tiers']} hint tier(s)" for q, e in exercises.items() if (e["tiers"] or 0) < 2]


def letter_spread(letters: list[str]) -> dict[str, float]:
    return {c: letters.count(c) / len(letters) for c in sorted(set(letters))} if letters else {}


def spread_ok(letters: list[str]) -> bool:
    return all(share <= MOST_ON_ONE_LETTER for share in letter_spread(letters).values())


def check_static(chapters: dict[str, dict[str, dict]]) -> list[str]:
    """Every problem with the "predict", "hints" and "letters" rules over `chapters`
    (chapter -> its `registered` self-checks), ratchets included; empty when all is well."""
    problems = []
    for rule, broken in (("predict", predict_problems), ("hints", hint_problems)):
        for chapter, exercises in chapters.items():
            found = broken(exercises)
            if chapter in ALLOWED[rule] and not found:
                problems.append(f"{chapter} keeps the {rule!r} rule: take it off ALLOWED[{rule!r}]")
            elif chapter not in ALLOWED[rule] and found:
                problems.append(f"{chapter} breaks the {rule!r} rule: {found}")
    letters = lambda names: [e["letter"] for c in names for e in chapters[c].values() if e["letter"]]
    counted = [c for c in chapters if c not in ALLOWED["letters"]]
    if not spread_ok(letters(counted)):
        problems.append(f"multiple-choice answers of {counted} lean on one letter: {letter_spread(letters(counted))}; "
                        f"no letter may hold more than {MOST_ON_ONE_LETTER:.0%}")
    # The ratchet, in the list's order: a listed chapter that could be counted in with those before it
    # (so that taking every chapter named here off the list still keeps the rule) must come off.
    for chapter in ALLOWED["letters"]:
        if chapter in chapters and spread_ok(letters([*counted, chapter])):
            problems.append(f"{chapter} keeps the 'letters' rule when counted in: take it off ALLOWED['letters']")
            counted.append(chapter)
    return problems

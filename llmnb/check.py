"""Self-check exercises for the end of each tutorial notebook.

    from llmnb.check import check, progress
    check("00.3", answer)    # prints "✓ Correct" or "✗ Not yet — hint: …", returns True/False
    progress("00")           # table of this chapter's exercises and how you did

A wrong answer, or an answer of the wrong type, never raises: it prints a hint. The expected
answer is never printed: not in messages, not in reprs, not in error text. The tutorials register
their exercises with expected values computed from the notebook's objects at check time, or kept
as a sha256 fingerprint (`Hidden`). That is NOT secure (anyone can read the notebook or
brute-force a two-letter choice); it only keeps the answer off the learner's screen.

A self-check makes the learner think: it asks what they must predict or compute (`kind=`), never
a value printed above it, and its hints come in tiers, a nudge and then the idea, none of them the
answer (docs/teaching.md, "Writing self-checks"; tests/selfcheck_rules.py holds the rules).

Output goes to stdout (small HTML inside a Jupyter kernel), never to stderr, so nbgrader does not
zero the cell. With LLMNB_QUIET=1 results are plain text on stdout. Nothing here imports torch.

Notebooks add their own exercises with `register(Exercise(...))`, using the checkers `number`,
`choice`, `items`, `text` and `predicate`.

`python -m llmnb.classroom grade` does not trust what check() says in a student's kernel: it reads
each answer out of the kernel as plain values (`gradable`) and judges them against the release's
keys (`key_of`, computed from the instructor's notebook) in its own process (`judge`).
"""
from __future__ import annotations

import contextlib
import hashlib
import html
import io
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

from llmnb.errors import LlmnbError


class WrongForm(Exception):
    """Raised by a checker when the answer has the wrong type; the message names the form wanted."""


@dataclass(frozen=True)
class Hidden:
    """A fixed expected answer kept only as `fingerprint(answer)`, a sha256 hex string."""

    sha256: str = field(repr=False)


KINDS = ("predict", "compute")  # Exercise.kind: questions that make the learner think, not look up


@dataclass(repr=False)
class Exercise:
    """One self-check: an `id` like "04.1", the question, a checker (answer -> bool, from
    `number`, `choice`, `items`, `text` or `predicate`) and a hint shown when the answer is not
    right. Used by the closing exercises of every tutorial, from tutorials/00_quickstart.ipynb.

    `hint` is one string or tiers of them, e.g. `("a nudge", "the idea")`: the first wrong answer
    shows the first tier, each further one adds the next. No tier gives the answer away.
    `kind` marks what the question asks of the learner: "predict" (say what a cell, a model or a
    change will do before running it) or "compute" (work a number out from what the notebook
    showed, when it is not printed itself); None for anything else. The course asks for at least
    two of them per chapter (tests/selfcheck_rules.py counts them)."""

    id: str
    question: str
    checker: Callable[[Any], bool]
    hint: str | tuple[str, ...]
    kind: str | None = None

    def __post_init__(self):
        if self.kind is not None and self.kind not in KINDS:
            raise ValueError(f"Exercise {self.id!r}: kind must be one of {KINDS} or None, not {self.kind!r}")
        tiers = (self.hint,) if isinstance(self.hint, str) else tuple(self.hint)
        if not tiers or not all(isinstance(t, str) and t.strip() for t in tiers):
            raise ValueError(f"Exercise {self.id!r}: hint must be a string or a tuple of non-empty strings")

    @property
    def hints(self) -> tuple[str, ...]:
        """The hint's tiers, first the nudge: one string for an exercise with a single hint."""
        return (self.hint,) if isinstance(self.hint, str) else tuple(self.hint)

    def __repr__(self):  # the question only: never the checker, which holds the answer
        return f"Exercise({self.id!r}, {self.question!r})"


EXERCISES: dict[str, Exercise] = {}  # the catalogue, id -> Exercise, as the notebooks register them
_results: dict[str, bool] = {}       # id -> answered right at least once in this session
_misses: dict[str, int] = {}         # id -> wrong answers so far in this session (how many hint tiers to show)


def _norm(value) -> str:
    """Lower case, single spaces, no surrounding spaces: ' Hello  World' -> 'hello world'."""
    return " ".join(str(value).lower().split())


def _item_key(values, ordered: bool = False) -> str:
    keys = [_norm(v) for v in values]
    return "\x1f".join(keys if ordered else sorted(keys))


def fingerprint(value, ordered: bool = False) -> str:
    """sha256 of a normalised string, choice letter, or list/set of items. Authors run it once,
    outside the notebook, and write `Hidden("<the hex>")` as the exercise's expected answer."""
    key = _item_key(value, ordered) if isinstance(value, (list, tuple, set, frozenset)) else _norm(value)
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


# ---- checkers: each is a function answer -> bool that raises WrongForm for a wrong type, and
# says how a grader decides without the student's kernel (llmnb.classroom): `gradable(answer)`
# turns an answer into plain JSON values (in the kernel), `key(reference)` gives the instructor's
# key (in the instructor's kernel), and `judge(key, value)` compares the two in the grader's own
# process. For value checkers `checker(answer)` is that same judgement, so the two cannot differ.

class Checker:
    """The checkers' shared behaviour; `number`, `choice`, `items`, `text` and `predicate` build them."""

    form = "the kind of object the question asks for"

    def gradable(self, answer):
        raise NotImplementedError

    def key(self, reference=None) -> dict:
        raise NotImplementedError

    def __call__(self, answer) -> bool:
        return judge(self.key(), self.gradable(answer))


def _exact_key(value: str) -> dict:
    return {"kind": "exact", "sha256": hashlib.sha256(value.encode("utf-8")).hexdigest()}


class _Number(Checker):
    def __init__(self, expected, rel, tol, form):
        self.expected, self.rel, self.tol, self.form = expected, rel, tol, form

    def gradable(self, answer) -> float:
        if isinstance(answer, (str, bytes, bool)):
            raise WrongForm(self.form)
        try:
            return float(answer)  # ints, floats, numpy numbers, one-element tensors
        except (TypeError, ValueError, RuntimeError):  # RuntimeError: a many-element tensor
            raise WrongForm(self.form) from None

    def key(self, reference=None) -> dict:
        want = float(self.expected() if callable(self.expected) else self.expected)
        return {"kind": "number", "value": want, "rel": self.rel, "tol": self.tol}


class _Exact(Checker):
    """An answer turned into a normalised string (`to_key`) and compared with the expected one's."""

    def __init__(self, expected, to_key, form):
        self.expected, self.to_key, self.form = expected, to_key, form

    def key(self, reference=None) -> dict:
        if isinstance(self.expected, Hidden):
            return {"kind": "exact", "sha256": self.expected.sha256}
        return _exact_key(self.to_key(self.expected() if callable(self.expected) else self.expected))


class _Choice(_Exact):
    def __init__(self, labels, expected):
        super().__init__(expected, _norm, "one of the letters " + ", ".join(labels))
        self.labels = labels

    def gradable(self, answer) -> str:
        given = _norm(answer).strip("().: ") if isinstance(answer, str) else None
        letter = next((k for k, v in self.labels.items() if given in (k, v)), None)
        if letter is None:
            raise WrongForm(self.form)
        return letter


class _Items(_Exact):
    def __init__(self, expected, ordered, form):
        super().__init__(expected, lambda e: _item_key(list(e), ordered), form)
        self.ordered = ordered

    def gradable(self, answer) -> str:
        if isinstance(answer, (str, bytes, dict)) or not hasattr(answer, "__iter__"):
            raise WrongForm(self.form)
        return _item_key(list(answer), self.ordered)


class _Text(_Exact):
    def __init__(self, expected, form):
        super().__init__(expected, _norm, form)

    def gradable(self, answer) -> str:
        if not isinstance(answer, str):
            raise WrongForm(self.form)
        return _norm(answer)


class _Predicate(Checker):
    def __init__(self, fn, form, probe, tol):
        self.fn, self.form, self.probe, self.tol = fn, form, probe, tol

    def __call__(self, answer) -> bool:
        return bool(self.fn(answer))

    def gradable(self, answer):
        if self.probe is None:
            raise NotGradable("this exercise has no probe: only the learner's own kernel can check it")
        return plain(self.probe(answer))

    def key(self, reference=None) -> dict:
        return {"kind": "probe", "value": self.gradable(reference), "tol": self.tol}


class NotGradable(Exception):
    """Raised by `gradable` for an exercise that a grader cannot decide outside the kernel."""


def number(expected, rel: float = 1e-6, tol: float = 0.0, form: str = "a number"):
    """A number within `rel` (relative) or `tol` (absolute) of `expected`: a number, or a function
    computing it at check time. Used in tutorials/00_quickstart.ipynb (00.1, 00.3)."""
    return _Number(expected, rel, tol, form)


def choice(options, expected):
    """One of `options` ({"a": "positive", ...} or "abcd"): the letter ("b", "(b)", "B.") or the
    option's text. `expected`: the letter, `Hidden(fingerprint(letter))`, or a function computing
    the letter at check time, e.g. from the learner's own model. Used in
    tutorials/00_quickstart.ipynb (00.2, 00.4)."""
    labels = {_norm(k): _norm(v) for k, v in (options.items() if isinstance(options, dict) else zip(options, options))}
    return _Choice(labels, expected)


def items(expected, ordered: bool = False, form: str = "a list or set of items"):
    """A collection compared item by item as normalised strings, in any order unless `ordered`.
    `expected`: a collection, a function returning one, or `Hidden(fingerprint(collection))`."""
    return _Items(expected, ordered, form)


def text(expected, form: str = "a string"):
    """A string, ignoring case and extra spaces. `expected`: a string, a function returning one,
    or `Hidden(fingerprint(string))`."""
    return _Text(expected, form)


def predicate(fn: Callable[[Any], bool], form: str = "the kind of object the question asks for", probe=None,
              tol: float = 1e-4):
    """Any test `fn(answer) -> bool`: a tensor's shape, a function's outputs on chosen inputs.
    If `fn` raises, the answer is "not yet" and the error's text is not shown (it could hold the
    solution); `form` is shown instead.

    `probe(answer)`: what a grader compares, e.g. a function's outputs on fixed inputs (numbers,
    strings and lists of them; tensors become lists). The instructor's solution gives the key,
    a student's answer the value, and they match within `tol` (relative, for numbers)."""
    return _Predicate(fn, form, probe, tol)


def plain(value):
    """`value` as JSON-able Python: tensors and arrays as (nested) lists, numpy scalars as numbers,
    tuples as lists, dict keys as strings. Anything else is an error naming its type."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "tolist"):  # torch tensors, numpy arrays and scalars, pandas objects
        return plain(value.tolist())
    raise WrongForm(f"plain values (numbers, strings, lists), not {type(value).__name__}")


def _close(got, want, tol: float) -> bool:
    if isinstance(want, bool) or isinstance(got, bool):
        return got is want
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        return got == want or abs(got - want) <= tol * max(1.0, abs(want))
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(_close(g, w, tol) for g, w in zip(got, want))
    if isinstance(want, dict) and isinstance(got, dict):
        return got.keys() == want.keys() and all(_close(got[k], want[k], tol) for k in want)
    return got == want


def judge(key: dict, value) -> bool:
    """Whether `value` (from `gradable`) answers the question whose key is `key` (from `key`).
    Plain Python on plain values: a grader runs it in its own process, outside any kernel."""
    kind = key.get("kind")
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        want = key["value"]
        return value == want or abs(value - want) <= max(key["rel"] * abs(want), key["tol"])
    if kind == "exact":
        return isinstance(value, str) and hashlib.sha256(value.encode("utf-8")).hexdigest() == key["sha256"]
    if kind == "probe":
        return _close(value, key["value"], key["tol"])
    raise ValueError(f"unknown kind of key: {kind!r}")


# ---- registry, checking, progress

def register(exercise: Exercise) -> Exercise:
    """Add (or replace, when a cell is run again) an exercise in the catalogue. For tutorials
    that define exercises in a cell: give expected values as `Hidden(...)` or a function."""
    if not isinstance(exercise, Exercise):
        raise TypeError(f"register() takes an Exercise, got {type(exercise).__name__}")
    EXERCISES[exercise.id] = exercise
    _results.pop(exercise.id, None)  # a changed exercise starts untried
    _misses.pop(exercise.id, None)
    return exercise


def _show(plain: str, html_text: str) -> None:
    """Small HTML in a Jupyter kernel; plain text on stdout elsewhere, and always with LLMNB_QUIET=1."""
    from llmnb.core.environment import quiet as env_quiet
    from llmnb.display import in_notebook

    quiet = env_quiet()
    if not quiet and in_notebook():
        from IPython.display import display

        return display({"text/html": html_text, "text/plain": plain}, raw=True)
    print(plain)


def _lookup(exercise_id) -> Exercise:
    exercise_id = str(exercise_id)
    if exercise_id in EXERCISES:
        return EXERCISES[exercise_id]
    chapter = exercise_id.split(".")[0]
    same = sorted(i for i in EXERCISES if i.split(".")[0] == chapter)
    if same:
        raise LlmnbError(f"No exercise {exercise_id!r}. Chapter {chapter} has: {', '.join(same)}.")
    chapters = ", ".join(sorted({i.split(".")[0] for i in EXERCISES}))
    raise LlmnbError(f"No exercise {exercise_id!r}: chapter {chapter} has none. Chapters with exercises: {chapters}.")


def check(exercise_id: str, answer) -> bool:
    """Check `answer` for exercise `exercise_id` ("00.1"): shows "✓ Correct" or
    "✗ Not yet — hint: …" and returns True/False. A wrong answer or a wrong type never raises;
    an unknown id raises ValueError listing the chapter's ids. Used at the end of every tutorial."""
    exercise = _lookup(exercise_id)
    problem = ""
    # never write to stderr (nbgrader zeroes such cells): swallow warnings and stray prints there
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            ok = bool(exercise.checker(answer))
        except WrongForm as e:
            ok, problem = False, f"the answer should be {e}"
        except Exception as e:  # the answer broke a predicate; the message is not shown
            form = getattr(exercise.checker, "form", None)
            ok, problem = False, f"checking it raised {type(e).__name__}" + (f" (it should be {form})" if form else "")
    _results[exercise.id] = _results.get(exercise.id, False) or ok
    if ok:
        _show(f"[{exercise.id}] ✓ Correct", f'<div style="color:#1a7f37">[{exercise.id}] ✓ Correct</div>')
    else:
        _misses[exercise.id] = _misses.get(exercise.id, 0) + 1
        tiers = exercise.hints
        shown = tiers[:_misses[exercise.id]]
        hint = shown[0] if len(tiers) == 1 else " ".join(
            f"(hint {n} of {len(tiers)}) {t}" for n, t in enumerate(shown, start=1))
        more = " Answer again for the next hint." if len(shown) < len(tiers) else ""
        plain = f"[{exercise.id}] ✗ Not yet — {problem + '; ' if problem else ''}hint: {hint}{more}"
        _show(plain, f'<div style="color:#b35900">{html.escape(plain)}</div>')
    return ok


def gradable(exercise_id: str, answer):
    """What a grader compares for `answer` to exercise `exercise_id`: plain JSON values (a number,
    a normalised string, a probe's outputs). Raises WrongForm for an answer of the wrong kind and
    NotGradable for an exercise without a probe. Called in the student's kernel by the grader."""
    return _lookup(exercise_id).checker.gradable(answer)


def key_of(exercise_id: str, reference=None) -> dict:
    """The key a grader judges answers to `exercise_id` against (`judge`): from the exercise's
    expected value, or for a `predicate`, its probe of `reference` (the instructor's solution).
    Called in the instructor's kernel when a release is made."""
    return _lookup(exercise_id).checker.key(reference)


def progress(chapter: str | None = None) -> None:
    """Show a table (id, question, status) of the exercises, or one chapter's ("00"): ✓ correct
    (answered right at least once this session), ✗ not yet, or · not tried. For the last cell
    of every tutorial."""
    ids = sorted(i for i in EXERCISES if chapter is None or i.split(".")[0] == str(chapter))
    status = {True: "✓ correct", False: "✗ not yet", None: "· not tried"}
    rows = [(i, EXERCISES[i].question, status[_results.get(i)]) for i in ids]
    done = f"{sum(_results.get(i) is True for i in ids)}/{len(ids)} correct"
    short = [(i, q if len(q) <= 60 else q[:59] + "…", s) for i, q, s in rows]  # plain text: one line each
    plain = "\n".join([f"{'id':<6} {'question':<60}  status", *(f"{i:<6} {q:<60}  {s}" for i, q, s in short), done])
    cells = "".join(f"<tr><td>{html.escape(i)}</td><td style='text-align:left'>{html.escape(q)}</td><td>{s}</td></tr>"
                    for i, q, s in rows)
    _show(plain, f"<table><tr><th>id</th><th>question</th><th>status</th></tr>{cells}</table><div>{done}</div>")

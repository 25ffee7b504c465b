"""Reward functions for learning from rewards (`--task grpo`): the convention, the built-ins, the checks.

    def ends_politely(completions, **columns):          # one number per completion
        return [1.0 if c.endswith("please.") else 0.0 for c in completions]

    rewards = resolve_rewards(["exact_match", ends_politely])
    total, per_function = score(rewards, None, completions, prompts, columns)

The convention is TRL's: a reward receives the completions (text) as its first argument and every
other column of the data, for the same rows, as keyword arguments (`answer=[...]`), plus
`prompts=[...]`. A reward that needs a column simply names it; `**columns` takes the rest.

Built-in rewards by name (chapter 11):

    exact_match      1 when the completion equals the `answer` column (llmnb's normaliser: case,
                     spaces and final punctuation ignored), else 0
    contains         1 when the completion contains the `answer` column's text (case ignored)
    contains:WORD    1 when the completion contains WORD (case ignored)
    regex:PATTERN    1 when PATTERN matches the completion (re.search): a format reward
    length:N         closeness to N words, 1 at N words falling linearly to 0 at 0 or 2N
"""
from __future__ import annotations

import math
import numbers
import re
from typing import Callable

from llmnb.errors import ConfigError, DataError, LlmnbError

BUILT_IN = ("exact_match", "contains", "contains:WORD", "regex:PATTERN", "length:N")
SEPARATOR = ";"  # between rewards given as one string (the magic's --reward exact_match;regex:^[A-Z])


def normalise(text) -> str:
    """The answer as exact match judges it (the one normaliser of llmnb.metrics' exact_match)."""
    from llmnb.metrics.exact_match.exact_match import normalise as metric_normalise

    return metric_normalise(text)


def _needs_answer(name: str, columns: dict) -> list:
    if "answer" not in columns:
        raise DataError(f"The reward {name!r} compares each completion with an 'answer' column, and the data has none "
                        f"(its columns: {', '.join(sorted(columns)) or 'only the prompt'}).")
    return list(columns["answer"])


def exact_match(completions, **columns) -> list[float]:
    """1.0 where the completion equals the row's `answer` after normalising, else 0.0."""
    answers = _needs_answer("exact_match", columns)
    return [float(normalise(c) == normalise(a)) for c, a in zip(completions, answers)]


def contains(completions, **columns) -> list[float]:
    """1.0 where the row's `answer` appears in the completion (case ignored)."""
    answers = _needs_answer("contains", columns)
    return [float(normalise(a) in str(c).lower()) for c, a in zip(completions, answers)]


def _named(function: Callable, name: str) -> Callable:
    function.__name__ = function.__qualname__ = name
    return function


exact_match.needs_columns = contains.needs_columns = ("answer",)  # checked against the data before training


def contains_word(word: str) -> Callable:
    wanted = word.lower()
    return _named(lambda completions, **_: [float(wanted in str(c).lower()) for c in completions], f"contains:{word}")


def matches(pattern: str) -> Callable:
    try:
        compiled = re.compile(pattern)
    except re.error as e:
        raise ConfigError(f"reward 'regex:{pattern}' is not a valid regular expression: {e}.") from None
    return _named(lambda completions, **_: [float(bool(compiled.search(str(c)))) for c in completions], f"regex:{pattern}")


def length_near(words: int) -> Callable:
    def closeness(completions, **_):
        return [max(0.0, 1.0 - abs(len(str(c).split()) - words) / words) for c in completions]

    return _named(closeness, f"length:{words}")


def built_in(spec: str) -> Callable:
    """The built-in reward a name stands for (see the module's table); a clear error otherwise."""
    name, _, argument = spec.strip().partition(":")
    if name == "exact_match" and not argument:
        return exact_match
    if name == "contains":
        return contains_word(argument) if argument else contains
    if name == "regex" and argument:
        return matches(argument)
    if name == "length" and argument:
        try:
            words = int(argument)
        except ValueError:
            words = 0
        if words < 1:
            raise ConfigError(f"reward {spec!r}: length:N needs a whole number of words N >= 1, e.g. length:20.")
        return length_near(words)
    raise ConfigError(
        f"reward={spec!r} is not a built-in reward; choose one of {', '.join(BUILT_IN)}, or pass a function "
        "reward(completions, **columns) -> list of numbers."
    )


def check_columns(rewards, columns, what: str) -> None:
    """A built-in reward that reads a column (exact_match: answer) names it before any model loads."""
    for name, function in rewards:
        for needed in getattr(function, "needs_columns", ()):
            if needed not in columns:
                _needs_answer(name, {c: None for c in columns})


def reward_name(function) -> str:
    return getattr(function, "__name__", None) or type(function).__name__


def resolve_rewards(reward) -> list[tuple[str, Callable]]:
    """(name, function) for each reward in `reward`: a function, a built-in's name, several names
    joined by ';', or a list of any of these."""
    if reward is None or (isinstance(reward, (list, tuple)) and not reward):
        raise ConfigError("task='grpo' needs a reward: reward='exact_match', a function reward(completions, **columns), "
                          "or a list of them (see llmnb/instruct/rewards.py).")
    items = list(reward) if isinstance(reward, (list, tuple)) else [reward]
    out = []
    for item in items:
        if isinstance(item, str):
            out += [(part.strip(), built_in(part)) for part in item.split(SEPARATOR) if part.strip()]
        elif callable(item):
            out.append((reward_name(item), item))
        else:
            raise ConfigError(f"A reward must be a function or a built-in's name, not a {type(item).__name__}: {item!r}.")
    names = [name for name, _ in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"Two rewards have the same name ({', '.join(names)}): the panel and history name each one.")
    return out


def rewards_named(text: str, namespace: dict):
    """`exact_match;my_reward` as the magic gives it: each part a variable of `namespace` holding a
    function (or a list of them), else a built-in's name (checked when the run starts)."""
    found = []
    for part in (p.strip() for p in text.split(SEPARATOR) if p.strip()):
        value = namespace.get(part)
        if callable(value):
            found.append(value)
        elif isinstance(value, (list, tuple)) and value and all(callable(v) for v in value):
            found.extend(value)
        else:
            found.append(part)
    return found if len(found) > 1 else found[0] if found else text


def check_weights(weights, count: int) -> list[float]:
    if weights is None:
        return [1.0] * count
    weights = list(weights) if isinstance(weights, (list, tuple)) else [weights]
    if len(weights) != count or not all(isinstance(w, (int, float)) and math.isfinite(w) for w in weights):
        raise ConfigError(f"reward_weights={weights!r} must be {count} number(s), one per reward.")
    return [float(w) for w in weights]


def score(rewards, weights, completions: list[str], prompts: list, columns: dict[str, list]):
    """(weighted sum per completion, {name: values}) of every reward on `completions`.

    `columns` hold one value per completion (the prompt's row repeated for each of its
    completions). A reward that raises, returns the wrong number of values or a value that is not
    a finite number stops the run with an error naming the function and the first bad row."""
    import numpy as np

    weights = check_weights(weights, len(rewards))
    total = np.zeros(len(completions), np.float64)
    per_function = {}
    for (name, function), weight in zip(rewards, weights):
        try:
            values = function(completions, prompts=prompts, **columns)
        except LlmnbError:
            raise
        except Exception as e:
            raise LlmnbError(f"The reward {name!r} raised {type(e).__name__}: {e}. It is called as "
                             f"{name}(completions, prompts=..., <each data column>=...) with lists of {len(completions)} values.") from e
        try:
            values = list(values)
        except TypeError:
            raise LlmnbError(f"The reward {name!r} returned a {type(values).__name__}, not a list of numbers.") from None
        if len(values) != len(completions):
            raise LlmnbError(f"The reward {name!r} returned {len(values)} values for {len(completions)} completions: it "
                             "must return one number per completion.")
        for row, value in enumerate(values):
            # bools count as 0/1 and numpy scalars as numbers; text, None and NaN are mistakes.
            number = float(value) if isinstance(value, (numbers.Real, np.bool_, np.number)) else math.nan
            if not math.isfinite(number):
                raise LlmnbError(f"The reward {name!r} returned {value!r} for completion {row} "
                                 f"({str(completions[row])[:60]!r}): every value must be a finite number.")
            values[row] = number
        per_function[name] = np.asarray(values, np.float64)
        total += weight * per_function[name]
    return total, per_function

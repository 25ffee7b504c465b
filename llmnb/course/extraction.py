"""Extraction framed as classification: pull the answer to a question out of a text.

Used by tutorials/06_applications.ipynb. Extractive question answering is usually trained as
"point at the first and last token of the answer". With a sequence classifier (what `finetune`
trains) the same job can be split in two, as many information-extraction systems do:

1. simple patterns propose *candidates* of the right kind (every weekday, every time, every
   number, every capitalised word), and
2. a classifier reads the text with one candidate marked, [[like this]], and says yes or no:

    "Which day? | We can't make [[Tuesday]], so could we come on Friday instead?"   no
    "Which day? | We can't make Tuesday, so could we come on [[Friday]] instead?"   yes

    pairs = candidate_pairs(bookings, {"day": "Which day?", ...})    # text, label (yes/no)
    ft = llmnb.finetune("minilm", pairs, ...)
    extract(ft, ["We can't make Tuesday, so Friday then."], "day", "Which day?")   # -> ["Friday"]

The answer is the candidate with the highest probability of "yes". `rule_extract` is the
baseline it has to beat: the first candidate of the right kind.
"""
from __future__ import annotations

import re

from llmnb.datasets.synthetic import WEEKDAYS
from llmnb.errors import ConfigError, DataError

YES, NO = "yes", "no"
_TOKEN = re.compile(r"[A-Za-z0-9:']+|[.!?]")

# field -> does this word look like an answer of that kind? (all the patterns know)
KINDS = {
    "day": lambda w: w in WEEKDAYS,
    "time": lambda w: bool(re.fullmatch(r"\d{1,2}(:\d\d)?(am|pm)|\d{1,2}:\d\d", w)),
    "people": lambda w: w.isdigit() and 1 <= int(w) <= 30,
    "name": lambda w: w[:1].isupper() and w not in WEEKDAYS and not re.fullmatch(r"I('\w+)?", w),
}


def _tokens(text: str):
    """(word, starts a sentence) for each word of `text`, in order."""
    start = True
    for token in _TOKEN.findall(text):
        if token in ".!?":
            start = True
            continue
        word = token.strip("':")
        if word:
            yield word, start
            start = False


def candidates(text: str, field: str) -> list[str]:
    """The words of `text` that look like a `field` answer, in order, without repeats."""
    if field not in KINDS:
        raise ConfigError(f"field={field!r} is not known; choose one of: {', '.join(KINDS)}.")
    found = []
    for word, _ in _tokens(text):
        if KINDS[field](word) and word not in found:
            found.append(word)
    return found


def mark(text: str, word: str) -> str:
    """`text` with the first whole-word occurrence of `word` wrapped in [[ ]]."""
    return re.sub(rf"(?<![\w:]){re.escape(word)}(?!\w|:\d)", f"[[{word}]]", text, count=1)


def pair_text(question: str, text: str, candidate: str) -> str:
    """How one (question, text, candidate) triple is shown to the classifier."""
    return f"{question} | {mark(text, candidate)}"


def candidate_pairs(frame, questions: dict, text: str = "text"):
    """A yes/no training table from a frame whose columns hold each question's answer.

    questions: column -> question, e.g. {"day": "Which day?"}; each column name must be a
    kind in `KINDS`. Every candidate of every row gives one pair: "yes" for the answer, "no"
    for the look-alikes. Returns a DataFrame with columns text and label.

    Taught in chapter 6 (tutorials/06_applications.ipynb).
    """
    import pandas as pd

    rows = []
    for _, row in frame.iterrows():
        for field, question in questions.items():
            answer, found = str(row[field]), candidates(row[text], field)
            if answer not in found:
                raise DataError(f"The answer {answer!r} (column {field!r}) is not a candidate in {row[text]!r}.")
            rows += [{"text": pair_text(question, row[text], w), "label": YES if w == answer else NO} for w in found]
    return pd.DataFrame(rows)


def extract(result, texts, field: str, question: str, batch_size: int = 64) -> list[str]:
    """For each text, the `field` candidate with the highest probability of "yes" under `result`
    (a yes/no classifier trained on `candidate_pairs`); "" when a text has no candidate.

    Taught in chapter 6 (tutorials/06_applications.ipynb).
    """
    texts = [texts] if isinstance(texts, str) else list(texts)
    found = [candidates(t, field) for t in texts]
    flat = [pair_text(question, t, w) for t, ws in zip(texts, found) for w in ws]
    scores = result.predict(flat, batch_size=batch_size, return_scores=True)[1] if flat else []
    answers, start = [], 0
    for ws in found:
        yes = [s[YES] for s in scores[start : start + len(ws)]]
        answers.append(ws[max(range(len(ws)), key=yes.__getitem__)] if ws else "")
        start += len(ws)
    return answers


def rule_extract(text: str, field: str) -> str:
    """The baseline: the first `field` candidate, skipping sentence-initial words for names
    (they are mostly "Hi", "Table", "Please"...); "" when there is none.

    Taught in chapter 6 (tutorials/06_applications.ipynb).
    """
    for word, sentence_start in _tokens(text):
        if KINDS[field](word) and not (field == "name" and sentence_start):
            return word
    return ""


def exact_match(predictions, references) -> float:
    """Share of predictions equal to their reference (case and surrounding spaces ignored).

    Taught in chapter 6 (tutorials/06_applications.ipynb).
    """
    predictions, references = list(predictions), list(references)
    if len(predictions) != len(references):
        raise DataError(f"{len(predictions)} predictions for {len(references)} references.")
    if not references:
        return float("nan")
    same = sum(str(p).strip().lower() == str(r).strip().lower() for p, r in zip(predictions, references))
    return same / len(references)

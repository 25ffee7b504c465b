"""From whatever the user has (a DataFrame, a file, a list of dicts...) to checked texts and targets.

    frame = to_frame(data)                       # a pandas copy; the user's object is untouched
    text_col, label_col = pick_columns(frame, text=None, label=None)
    labels = LabelMap.from_values(frame[label_col])
    prepared = prepare_data(data, eval, config, task)   # all of it, split for validation

Nothing here touches a model, so mistakes in the data are reported in a second. Tokens and
batches are in `batches.py`.
"""
from __future__ import annotations

import json
import random
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from llmnb.core.task import PreparedData
from llmnb.errors import DataError, Notice

TEXT_NAMES = ("text", "sentence", "review", "content", "input", "document", "question", "source")
LABEL_NAMES = ("label", "labels", "sentiment", "target", "class", "category", "y", "score", "rating")
FILE_TYPES = (".csv", ".tsv", ".json", ".jsonl", ".txt")


# ----------------------------------------------------------------------------- reading

def to_frame(data, what: str = "data"):
    """A new pandas DataFrame from a DataFrame, list of dicts, dict of lists, a
    `datasets.Dataset`, a file path, or the name of a bundled data set."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        frame = data.copy()
    elif isinstance(data, (str, Path)):
        frame = read_file(data, what)
    elif isinstance(data, dict):
        try:
            frame = pd.DataFrame(data)
        except ValueError as e:
            raise DataError(f"The {what} dict cannot be made into a table: {e}. Give equal-length lists per column.") from None
    elif isinstance(data, (list, tuple)):
        if not data:
            raise DataError(f"The {what} is an empty list; give at least a few labelled examples.")
        if all(isinstance(row, dict) for row in data):
            frame = pd.DataFrame(list(data))
        elif all(isinstance(row, str) for row in data):
            frame = pd.DataFrame({"text": list(data)})
        else:
            raise DataError(f"The {what} list must hold dicts (one per example) or strings, not {type(data[0]).__name__}.")
    elif type(data).__module__.startswith("datasets"):
        frame = data.to_pandas()
    else:
        raise DataError(
            f"Cannot use a {type(data).__name__} as {what}. Give a pandas DataFrame, a list of dicts, a dict of "
            f"lists, a datasets.Dataset, a file ({', '.join(FILE_TYPES)}) or a bundled name such as 'reviews'."
        )
    if len(frame) == 0:
        raise DataError(f"The {what} has no rows.")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def read_file(path, what: str = "data"):
    import pandas as pd

    import llmnb.datasets as datasets

    p = Path(path).expanduser()
    if not p.exists():
        if str(path) in datasets.names():
            return datasets.load(str(path))
        raise DataError(
            f"No file '{path}' for the {what}. Give a path to a {'/'.join(FILE_TYPES)} file, a variable name, or "
            f"a bundled data set ({', '.join(datasets.names())})."
        )
    if p.is_dir():
        raise DataError(f"'{path}' is a folder; the {what} must be a single file ({', '.join(FILE_TYPES)}).")
    suffix = p.suffix.lower()
    if suffix not in FILE_TYPES:
        raise DataError(f"Cannot read '{p.name}': llmnb reads {', '.join(FILE_TYPES)} files.")
    text = _read_text(p)
    if suffix in (".csv", ".tsv"):
        import io

        try:
            return pd.read_csv(io.StringIO(text), sep="\t" if suffix == ".tsv" else ",")
        except pd.errors.ParserError as e:
            found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(e))
            where = (f"line {found.group(2)} has {found.group(3)} fields but the header has {found.group(1)}"
                     if found else " ".join(str(e).split()))
            raise DataError(f"'{p.name}' is not a well-formed table: {where}. Quote texts that contain the separator.") from None
        except pd.errors.EmptyDataError:
            raise DataError(f"'{p.name}' is empty.") from None
    if suffix == ".jsonl" or (suffix == ".json" and not text.lstrip().startswith("[")):
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise DataError(f"'{p.name}' line {number} is not valid JSON ({e.msg}): {line[:80]!r}") from None
        return pd.DataFrame(rows)
    if suffix == ".json":
        try:
            return pd.DataFrame(json.loads(text))
        except (json.JSONDecodeError, ValueError) as e:
            raise DataError(f"'{p.name}' is not a JSON list of records: {e}") from None
    return pd.DataFrame({"text": [line for line in text.splitlines() if line.strip()]})


def _read_text(p: Path) -> str:
    raw = p.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    # Spreadsheet exports on Windows are often cp1252 (latin-1 plus curly quotes); latin-1 decodes any byte.
    for encoding in ("cp1252", "latin-1"):
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        warnings.warn(f"'{p.name}' is not UTF-8; read it as {encoding}.", Notice)
        return text


# ----------------------------------------------------------------------------- columns and labels

def pick_columns(frame, text: str | None = None, label: str | None = None, need_label: bool = True):
    """Name the text and label columns, inferring them when not given."""
    columns = list(frame.columns)
    for given, kind in ((text, "text"), (label, "label")):
        if given is not None and given not in columns:
            raise DataError(f"No column '{given}' for the {kind}; the data's columns are: {', '.join(columns)}.")
    if text is None:
        text = next((c for c in columns if c.lower() in TEXT_NAMES and c != label), None)
        if text is None:
            from pandas.api.types import is_object_dtype, is_string_dtype

            strings = [c for c in columns if c != label and (is_string_dtype(frame[c]) or is_object_dtype(frame[c]))]
            if not strings:
                raise DataError(f"Found no text column among: {', '.join(columns)}. Name it with --text COLUMN.")
            # The column with the longest strings is almost always the text.
            text = max(strings, key=lambda c: frame[c].astype(str).str.len().mean())
    if need_label and label is None:
        label = next((c for c in columns if c.lower() in LABEL_NAMES and c != text), None)
        if label is None:
            others = [c for c in columns if c != text]
            if len(others) != 1:
                raise DataError(
                    f"Cannot tell which column holds the labels among: {', '.join(others) or '(none)'}. "
                    "Name it with --label COLUMN."
                )
            label = others[0]
    return text, label


def drop_missing(frame, columns, what: str = "data"):
    """Rows with an empty text or label are dropped, with a one-line notice."""
    keep = frame[columns].notna().all(axis=1) & (frame[columns[0]].astype(str).str.strip() != "")
    dropped = int((~keep).sum())
    if dropped == len(frame):
        raise DataError(f"Every row of the {what} has an empty '{columns[0]}' or label.")
    if dropped:
        warnings.warn(f"Dropped {dropped} of {len(frame)} rows of the {what} with an empty text or label.", Notice)
    return frame[keep].reset_index(drop=True)


@dataclass
class LabelMap:
    """Class names <-> ids. Ids follow sorted order of the names, so runs are repeatable."""

    names: list = field(default_factory=list)

    @classmethod
    def from_values(cls, values) -> "LabelMap":
        unique = list(dict.fromkeys(values))
        try:
            unique.sort()
        except TypeError:  # mixed types, e.g. 1 and "1": compare as text
            unique.sort(key=str)
        if len(unique) < 2:
            raise DataError(
                f"The labels have a single class ({unique[0]!r}) after dropping empty rows: a classifier needs at "
                "least two. Check the label column, or use task='regression' for numbers."
            )
        return cls([_plain(v) for v in unique])

    @property
    def id2label(self) -> dict[int, str]:
        return {i: str(name) for i, name in enumerate(self.names)}

    def encode(self, values) -> list[int]:
        index = {name: i for i, name in enumerate(self.names)}
        unseen = sorted({str(v) for v in values if _plain(v) not in index})
        if unseen:
            raise DataError(
                f"The evaluation data has labels never seen in training: {', '.join(unseen[:5])}. "
                f"Training labels are: {', '.join(map(str, self.names))}."
            )
        return [index[_plain(v)] for v in values]

    def decode(self, ids) -> list:
        return [self.names[int(i)] for i in ids]


def _plain(value):
    """numpy scalars -> Python values, so labels print and compare simply."""
    return value.item() if hasattr(value, "item") else value


def hold_out(examples: list, fraction: float, seed: int, noun: str = "examples") -> tuple[list, list]:
    """(kept, held out): a seeded `fraction` of unlabelled examples (conversations, prompts,
    questions) set aside for validation; a clear error when too few are left on either side."""
    if fraction <= 0:
        return examples, []
    keep, held = stratified_split([0] * len(examples), fraction, seed)
    if not keep or not held:
        raise DataError(f"Only {len(examples)} {noun}: too few to hold some out for validation. Add data or pass eval=...")
    return [examples[i] for i in keep], [examples[i] for i in held]


def stratified_split(labels, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Row indices (train, held_out) with each class split in the same proportion."""
    rng = random.Random(seed)
    by_class: dict = {}
    for i, y in enumerate(labels):
        by_class.setdefault(y, []).append(i)
    train, held = [], []
    for rows in by_class.values():
        rng.shuffle(rows)
        n = max(1, round(len(rows) * fraction)) if len(rows) > 1 else 0
        held += rows[:n]
        train += rows[n:]
    return sorted(train), sorted(held)


# ----------------------------------------------------------------------------- a run's data

def prepare_data(data, eval, config, task) -> PreparedData:
    """Read, check and split the data; nothing here touches a model (so errors come fast)."""
    frame = to_frame(data, "training data")
    text_col, label_col = pick_columns(frame, config.text, config.label, need_label=task.needs_target_column)
    columns = [c for c in (text_col, label_col) if c]
    frame = drop_missing(frame, columns, "training data")
    labels = LabelMap.from_values(frame[label_col].tolist()) if task.uses_labels else None
    texts = frame[text_col].astype(str).tolist()
    targets = task.make_targets(frame[label_col].tolist() if label_col else texts, labels, "training data")
    if eval is not None:
        eval_frame = to_frame(eval, "eval data")
        for col, kind in ((text_col, "text"), (label_col, "label")):
            if col and col not in eval_frame.columns:
                raise DataError(
                    f"The eval data has no '{col}' column (the {kind} column of the training data); "
                    f"its columns are: {', '.join(eval_frame.columns)}."
                )
        eval_frame = drop_missing(eval_frame, columns, "eval data")
        eval_texts = eval_frame[text_col].astype(str).tolist()
        eval_targets = task.make_targets(eval_frame[label_col].tolist() if label_col else eval_texts, labels, "eval data")
    elif config.eval_fraction > 0:
        strata = targets if labels else [0] * len(targets)
        train_rows, eval_rows = stratified_split(strata, config.eval_fraction, config.seed)
        if not train_rows or not eval_rows:
            raise DataError(f"Only {len(texts)} examples: too few to hold some out for validation. Add data or pass eval=...")
        eval_texts, eval_targets = [texts[i] for i in eval_rows], [targets[i] for i in eval_rows]
        texts, targets = [texts[i] for i in train_rows], [targets[i] for i in train_rows]
    else:
        eval_texts, eval_targets = [], []
    if labels and len(set(targets)) < 2:
        raise DataError("After holding out validation data, the training data has a single class. Add examples.")
    return PreparedData(texts, targets, eval_texts, eval_targets, labels, text_col, label_col)


def encode_like(result, data, text=None, label=None):
    """Encode new labelled data the way `result` was trained (same columns, labels, length)."""
    task = result.task
    frame = to_frame(data, "eval data")
    text_col, label_col = pick_columns(
        frame, text or _present(frame, result.text_column), label or _present(frame, result.label_column), need_label=task.needs_target_column
    )
    frame = drop_missing(frame, [c for c in (text_col, label_col) if c], "eval data")
    texts = frame[text_col].astype(str).tolist()
    targets = task.make_targets(frame[label_col].tolist() if label_col else texts, result.labels, "eval data")
    return task.encode(result.tokenizer, texts, targets, result.config.max_length)


def _present(frame, column):
    return column if column in frame.columns else None

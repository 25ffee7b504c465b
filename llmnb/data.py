"""From whatever the user has (a DataFrame, a file, a list of dicts...) to padded batches.

    frame = to_frame(data)                       # a pandas copy; the user's object is untouched
    text_col, label_col = pick_columns(frame, text=None, label=None)
    labels = LabelMap.from_values(frame[label_col])
    enc = encode(tokenizer, texts, targets, max_length)   # tokenized ONCE, no padding
    for batch in batches(enc, batch_size=16, pad_id=0, shuffle=True, seed=0): ...

Padding happens per batch, to the longest row of that batch, and batches are built from
texts of similar length, so little compute is spent on padding tokens.
"""
from __future__ import annotations

import json
import random
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DataError

TEXT_NAMES = ("text", "sentence", "review", "content", "input", "document", "question", "source")
LABEL_NAMES = ("label", "labels", "sentiment", "target", "class", "category", "y", "score", "rating")
FILE_TYPES = (".csv", ".tsv", ".json", ".jsonl", ".txt")


class Notice(UserWarning):
    """Something llmnb fixed for the user and tells them about in one line."""


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

    from . import datasets

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


# ----------------------------------------------------------------------------- tokens and batches

ENCODE_CHUNK = 2_000  # texts tokenized per call: the tokenizer's per-row Python lists never exist for all rows at once


class TokenRows:
    """Ragged rows of token ids held as one flat int32 array plus int64 row offsets.

    Why (measured, rows of ~25 tokens): as Python lists the ids held 1,000 B a row, and tokenizing
    them all at once put 100k rows 550 MB (5.6 KB a row) on a 20-step tiny-bert run's peak; here a
    row holds 4 B a token + 8 B (~110 B), and 100k rows add 86 MB (0.9 KB a row, mostly the texts).

        rows = TokenRows.from_lists([[101, 7, 102], [101, 102]])
        len(rows), rows[0], rows.lengths, rows[:1], rows.tolist()

    `rows[i]` is a numpy view (use `.tolist()` where a list is needed); `rows[a:b]` and
    `rows[[i, j]]` are TokenRows.
    """

    __slots__ = ("flat", "offsets")

    def __init__(self, flat=None, offsets=None):
        import numpy as np

        self.flat = np.ascontiguousarray(np.zeros(0, np.int32) if flat is None else flat, dtype=np.int32)
        self.offsets = np.ascontiguousarray(np.zeros(1, np.int64) if offsets is None else offsets, dtype=np.int64)
        if self.offsets.ndim != 1 or len(self.offsets) == 0 or self.offsets[0] != 0 or self.offsets[-1] != len(self.flat):
            raise ValueError("TokenRows offsets must start at 0 and end at len(flat).")

    @classmethod
    def from_lists(cls, rows) -> "TokenRows":
        """From a list of id lists (or arrays), e.g. `tokenizer(texts)["input_ids"]`."""
        import numpy as np

        if isinstance(rows, TokenRows):
            return rows
        rows = rows if isinstance(rows, (list, tuple)) else list(rows)
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, rows), dtype=np.int64, count=len(rows)), out=offsets[1:])
        if rows and all(isinstance(r, np.ndarray) for r in rows):
            flat = np.concatenate(rows).astype(np.int32, copy=False)
        else:
            from itertools import chain

            flat = np.fromiter(chain.from_iterable(rows), dtype=np.int32, count=int(offsets[-1]))
        return cls(flat, offsets)

    @classmethod
    def concat(cls, parts) -> "TokenRows":
        import numpy as np

        parts = list(parts)
        if not parts:
            return cls()
        flat = np.concatenate([p.flat for p in parts])
        shifts = np.cumsum([0] + [p.num_tokens for p in parts[:-1]])
        offsets = np.concatenate([[0]] + [p.offsets[1:] + s for p, s in zip(parts, shifts)])
        return cls(flat, offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index):
        import numpy as np

        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step == 1:
                stop = max(start, stop)
                lo, hi = self.offsets[start], self.offsets[stop]
                return TokenRows(self.flat[lo:hi], self.offsets[start : stop + 1] - lo)
            index = range(start, stop, step)
        if isinstance(index, (range, list, tuple, np.ndarray)):
            return TokenRows.from_lists([self[int(i)] for i in index])
        i = int(index)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"row {index} of {len(self)}")
        return self.flat[self.offsets[i] : self.offsets[i + 1]]

    def __iter__(self):
        flat, bounds = self.flat, self.offsets.tolist()
        for lo, hi in zip(bounds, bounds[1:]):
            yield flat[lo:hi]

    def __eq__(self, other):
        if isinstance(other, TokenRows):
            import numpy as np

            return np.array_equal(self.offsets, other.offsets) and np.array_equal(self.flat, other.flat)
        if isinstance(other, (list, tuple)):
            return self.tolist() == [list(r) for r in other]
        return NotImplemented

    __hash__ = None

    def __repr__(self) -> str:
        return f"TokenRows({len(self)} rows, {self.num_tokens} tokens)"

    @property
    def lengths(self):
        """Tokens per row (numpy int64)."""
        import numpy as np

        return np.diff(self.offsets)

    @property
    def num_tokens(self) -> int:
        return int(self.offsets[-1])

    @property
    def nbytes(self) -> int:
        return int(self.flat.nbytes + self.offsets.nbytes)

    def tolist(self) -> list[list[int]]:
        flat, bounds = self.flat.tolist(), self.offsets.tolist()
        return [flat[lo:hi] for lo, hi in zip(bounds, bounds[1:])]

    def padded(self, rows, pad_id: int):
        """(ids, lengths) for `rows`: an int64 array padded with pad_id to the longest of them."""
        import numpy as np

        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        starts = self.offsets[rows]
        lengths = self.offsets[rows + 1] - starts
        longest = int(lengths.max()) if len(rows) else 0
        out = np.full((len(rows), longest), pad_id, dtype=np.int64)
        real = np.arange(longest) < lengths[:, None]
        out[real] = self.flat[(starts[:, None] + np.arange(longest))[real]]
        return out, lengths


def tokenize_rows(tokenizer, texts, max_length: int, target: bool = False, chunk: int = ENCODE_CHUNK) -> TokenRows:
    """Token ids of `texts` (truncated, no padding), tokenized `chunk` at a time into a TokenRows.

    Only input_ids are asked for: attention masks are rebuilt per batch, and token_type_ids were
    never passed to the model (BERT's default is all zeros, which is what single texts get).
    """
    texts = texts if isinstance(texts, (list, tuple)) else list(texts)
    parts = []
    for start in range(0, len(texts), chunk):
        piece = [str(t) for t in texts[start : start + chunk]]
        kwargs = {"text_target": piece} if target else {"text": piece}
        out = tokenizer(**kwargs, truncation=True, max_length=max_length, return_attention_mask=False, return_token_type_ids=False)
        parts.append(TokenRows.from_lists(out["input_ids"]))
        del out
    return TokenRows.concat(parts)


@dataclass
class Encoded:
    """Tokenized examples, unpadded: row i of `input_ids` (a TokenRows) holds example i's ids.

    Lists of id lists given to the constructor are converted to TokenRows.
    """

    input_ids: TokenRows
    targets: list  # class ids, floats (regression), target texts (seq2seq) or None (causal LM)
    target_ids: TokenRows | None = None  # tokenized targets (seq2seq)

    def __post_init__(self):
        self.input_ids = TokenRows.from_lists(self.input_ids)
        if self.target_ids is not None:
            self.target_ids = TokenRows.from_lists(self.target_ids)

    def __len__(self):
        return len(self.input_ids)

    @property
    def lengths(self):
        """Tokens per example (numpy int64)."""
        return self.input_ids.lengths

    @property
    def num_tokens(self) -> int:
        return self.input_ids.num_tokens


def encode(tokenizer, texts, targets, max_length: int) -> Encoded:
    # eval_fraction=0 gives no texts: an empty Encoded
    return Encoded(input_ids=tokenize_rows(tokenizer, texts, max_length), targets=list(targets))


def batch_order(lengths, batch_size: int, shuffle: bool, seed: int, group_by_length: bool = True) -> list[list[int]]:
    """Indices of each batch. Every example appears exactly once per epoch.

    With group_by_length, examples are shuffled, cut into windows of 50 batches, sorted by
    length inside each window, and the resulting batches are shuffled again: batches hold
    similar lengths (little padding) yet their order stays random.
    """
    if hasattr(lengths, "tolist"):  # numpy lengths (Encoded.lengths): plain ints sort faster
        lengths = lengths.tolist()
    order = list(range(len(lengths)))
    rng = random.Random(seed)
    if shuffle:
        rng.shuffle(order)
    if group_by_length:
        window = batch_size * 50
        order = [i for s in range(0, len(order), window) for i in sorted(order[s : s + window], key=lambda i: -lengths[i])]
    groups = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    if shuffle and group_by_length:
        rng.shuffle(groups)
    return groups


def collate(enc: Encoded, rows, pad_id: int, float_targets: bool = False, with_labels: bool = True) -> dict:
    """Pad the rows to the longest among them; targets become `labels` (unless with_labels=False)."""
    import numpy as np
    import torch

    ids, lengths = enc.input_ids.padded(rows, pad_id)
    mask = (np.arange(ids.shape[1]) < lengths[:, None]).astype(np.int64)
    batch = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
    if with_labels:
        batch["labels"] = torch.tensor([enc.targets[i] for i in rows], dtype=torch.float if float_targets else torch.long)
    return batch

"""Tokenized examples held compactly, and the padded batches the engine trains on.

    enc = encode(tokenizer, texts, targets, max_length)   # tokenized ONCE, no padding
    for rows in batch_order(enc.lengths, 16, shuffle=True, seed=0): batch = collate(enc, rows, pad_id)

Padding happens per batch, to the longest row of that batch, and batches are built from
texts of similar length, so little compute is spent on padding tokens (chapter 5).
"""
from __future__ import annotations

import random
from dataclasses import dataclass

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

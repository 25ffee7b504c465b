"""Packing: several short examples in one row, each attending only to itself; and when it pays.

    bins = best_fit_decreasing([30, 70, 20, 50], capacity=100)   # [[1, 0], [3, 2]]
    batch = packed_batch(ids_rows, label_rows, bins, pad_id)    # + position_ids, segment_ids
    mask = block_causal_mask(batch["segment_ids"], torch.float32)  # (rows, 1, length, length): 0 or -3.4e38
    packed, why = choose_packing("auto", model, lengths, batches, capacity=128, device="cpu")

Padded batches spend compute on padding; a packed row holds examples back to back. Each keeps
its own positions (0, 1, 2, ...) and a block-diagonal causal mask stops it from attending to its
neighbours, so the loss and gradients are the same as unpacked (tests check both, with trained
weights, under sdpa and eager). The examples of a batch are the same with and without packing:
only their layout changes (chapter 10). Packing is not free: without a variable-length attention
kernel the mask is dense, so every packed row pays attention over its full width.
`choose_packing` packs only where that was measured to pay.
"""
from __future__ import annotations

import bisect

from llmnb.instruct.chat import IGNORE


def best_fit_decreasing(lengths, capacity: int) -> list[list[int]]:
    """Indices grouped into bins of total length <= capacity: longest first, each into the bin it fills most."""
    order = sorted(range(len(lengths)), key=lambda i: (-int(lengths[i]), i))
    bins: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (space left, bin index), sorted
    for i in order:
        need = int(lengths[i])
        at = bisect.bisect_left(free, (need, -1))
        if at < len(free):
            space, b = free.pop(at)
            bins[b].append(i)
            bisect.insort(free, (space - need, b))
        else:
            bins.append([i])
            bisect.insort(free, (capacity - need, len(bins) - 1))
    return bins


def packed_batch(ids_rows, label_rows, bins, pad_id: int) -> dict:
    """Tensors for the packed rows: input_ids, labels, position_ids, segment_ids (0 = padding)
    and attention_mask (1 on real tokens; counts tokens, the model gets `block_causal_mask`)."""
    import numpy as np
    import torch

    width = max(sum(len(ids_rows[i]) for i in b) for b in bins)
    shape = (len(bins), width)
    ids, labels = np.full(shape, pad_id, np.int64), np.full(shape, IGNORE, np.int64)
    positions, segments = np.zeros(shape, np.int64), np.zeros(shape, np.int64)
    for r, b in enumerate(bins):
        at = 0
        for k, i in enumerate(b, start=1):
            n = len(ids_rows[i])
            ids[r, at : at + n], labels[r, at : at + n] = ids_rows[i], label_rows[i]
            positions[r, at : at + n], segments[r, at : at + n] = np.arange(n), k
            at += n
    return {
        "input_ids": torch.from_numpy(ids),
        "labels": torch.from_numpy(labels),
        "position_ids": torch.from_numpy(positions),
        "segment_ids": torch.from_numpy(segments),
        "attention_mask": torch.from_numpy((segments > 0).astype(np.int64)),
    }


def block_causal_mask(segment_ids, dtype):
    """(rows, 1, L, L) additive mask in `dtype`: 0 where a token may attend (earlier tokens of its
    own example), the dtype's lowest value elsewhere. Padding (segment 0) sees earlier padding, so
    no row of the mask is empty (an empty row gives NaN in attention).

    Additive, not boolean: transformers hands a 4-D mask to the attention function as it is.
    sdpa reads a boolean mask as "True: may attend", but eager attention adds the mask to the
    scores, so a boolean one adds 1 or 0 and masks nothing: each example saw its neighbours and
    its own future (eager loss 12.94 packed vs 13.17 unpacked). An additive mask means the same to
    both, and it is what transformers itself builds for eager attention."""
    import torch

    length = segment_ids.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool, device=segment_ids.device).tril()
    allowed = (segment_ids[:, :, None] == segment_ids[:, None, :]) & causal
    mask = torch.zeros(allowed.shape, dtype=dtype, device=segment_ids.device)
    return mask.masked_fill_(~allowed, torch.finfo(dtype).min)[:, None]


def attention_of(model) -> str:
    """The model's attention implementation as transformers names it (eager when it says none)."""
    return str(getattr(getattr(model, "config", None), "_attn_implementation", None) or "eager")


def varlen_attention(model) -> bool:
    """Whether the model attends per example from the position ids alone (flash attention's
    variable-length kernels): no mask, and no attention between examples is computed."""
    return "flash" in attention_of(model)


def scores_dtype(model, device):
    """The attention scores' dtype: autocast's where it is on, else the weights' (as transformers'
    own masks). A mask of another dtype is converted (sdpa) or widens the scores (eager) at every
    layer: an fp32 mask under bf16 autocast cost 4% (sdpa) and 10% (eager) per step on a CPU."""
    import torch

    if torch.is_autocast_enabled(device.type):
        return torch.get_autocast_dtype(device.type)
    return next(model.parameters()).dtype


def packed_forward(model, batch):
    """The model's output on a packed batch: the block mask, or on flash attention the position ids
    alone (transformers finds the examples' boundaries from them)."""
    inputs = {k: v for k, v in batch.items() if k not in ("segment_ids", "attention_mask")}
    if not varlen_attention(model):
        inputs["attention_mask"] = block_causal_mask(batch["segment_ids"], scores_dtype(model, batch["input_ids"].device))
    return model(**inputs)


def padding_share(lengths, batches, capacity: int | None) -> float:
    """Share of the positions computed that are padding, for these batches (lists of indices),
    padded to each batch's longest example (capacity None) or packed into rows of `capacity`."""
    real = computed = 0
    for rows in batches:
        sizes = [int(lengths[i]) for i in rows]
        real += sum(sizes)
        if capacity is None:
            computed += max(sizes) * len(sizes)
        else:
            bins = best_fit_decreasing(sizes, capacity)
            computed += max(sum(sizes[i] for i in b) for b in bins) * len(bins)
    return 1 - real / max(computed, 1)


# What one position of a packed row costs relative to one of a padded row where the mask is dense
# (every attention but flash attention's variable-length path): a padded batch without padding
# runs sdpa's causal kernel with no mask at all, a packed row always carries a 4-D mask and pays
# attention over its full width (128 here against ~57 for a padded row). Measured with
# benchmarks/sft.py --quick (chapter 10's GPT, CPU, bf16 autocast), on length-grouped batches (1% of
# positions padding padded, 2% packed): packed/padded tokens/s 0.74 under sdpa and 0.96 under eager
# on a quiet machine (0.97 and 0.90 on a busy one), i.e. 1.34x and 1.04x per position. On random
# batches (22% padding padded, 11% packed: 14% fewer positions) packing ran 1.22x (sdpa) and 1.28x
# (eager) faster: there the padded batches carry a mask too, so the 1.34 does not apply in full.
# One figure for both, 1.10 (packing must save over a tenth of the positions), picks the faster
# layout in all four cases of both runs; a cost model per batch (mask-free where unpadded) would
# be closer. Not measured on GPUs yet: assumed the same there until benchmarks/sft.py runs on one.
DENSE_MASK_COST = {"sdpa": 1.10, "eager": 1.10}
MEASURED_ON = "cpu"


def choose_packing(setting, model, lengths, batches, capacity: int, device) -> tuple[bool, str]:
    """(pack or not, why) for training `model` on examples of `lengths` in `batches` (lists of indices)
    cut into rows of `capacity`. setting True or False decides alone; "auto" packs only where it pays:
    on a variable-length attention path (flash attention: no mask, nothing computed between
    examples), or where padding wastes more positions than a dense block mask costs on this device."""
    import torch

    padded = padding_share(lengths, batches, None)
    packed = padding_share(lengths, batches, capacity)
    shares = f"padding {padded:.0%} of positions padded, {packed:.0%} packed"
    if isinstance(setting, bool):
        return setting, shares
    attention = attention_of(model)
    if varlen_attention(model):
        return True, f"{attention} attends per example from the position ids (no mask); {shares}"
    kind = torch.device(device).type
    cost = DENSE_MASK_COST.get(attention, max(DENSE_MASK_COST.values()))
    # Padded: real / (1 - padded) positions at cost 1. Packed: real / (1 - packed) positions at `cost`.
    break_even = 1 - (1 - packed) / cost
    measured = "" if kind == MEASURED_ON else f" (measured on {MEASURED_ON}; {kind} not yet)"
    why = (f"{shares}; under {attention} a dense block mask makes a packed position cost {cost:.2f}x{measured}, "
           f"so packing pays above {max(break_even, 0):.0%} padding")
    return padded > break_even, why

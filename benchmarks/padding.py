"""padding: what llmnb's batching saves on texts of mixed lengths.

    .venv/bin/python benchmarks/padding.py [--quick]

Mixed-length examples (each 1-8 bundled reviews joined, max_length 256). llmnb's batches
(batch_order(group_by_length=True) + collate: each batch padded to its own longest row) against
every batch padded to the data set's longest row: the same texts, one epoch, batch 16, the same
plain loop, one step of each in turn. Reported: real (non-pad) tokens per second.
"""
from __future__ import annotations

import copy
import random

import common
import torch
from engine import PlainLoop
from common import BATCH, LLMNB_LR, SEED, Section, interleave, median, spread

from llmnb.finetuning.batches import batch_order, collate, encode

SETTINGS = {"quick": dict(examples=64, rounds=2, deadline=500), "full": dict(examples=256, rounds=3, deadline=None),
            "smoke": dict(examples=32, rounds=1, deadline=None)}


def mixed_length_texts(texts, labels, n, seed=SEED, most=8):
    """n examples, each 1..`most` bundled reviews joined by spaces (label: the first one's)."""
    rng = random.Random(seed)
    out_texts, out_labels = [], []
    for _ in range(n):
        picks = [rng.randrange(len(texts)) for _ in range(rng.randint(1, most))]
        out_texts.append(" ".join(texts[i] for i in picks))
        out_labels.append(labels[picks[0]])
    return out_texts, out_labels


def pad_to(batch, length, pad_id):
    extra = length - batch["input_ids"].shape[1]
    if extra <= 0:
        return batch
    pad = torch.nn.functional.pad
    return {
        "input_ids": pad(batch["input_ids"], (0, extra), value=pad_id),
        "attention_mask": pad(batch["attention_mask"], (0, extra), value=0),
        "labels": batch["labels"],
    }


def run(quick: bool, max_length: int = 256) -> Section:
    settings = common.pick(SETTINGS, quick)
    if common.busy_scale(quick) < common.BUSY_SCALE:
        settings["rounds"] = 1
    common.warm_up()
    template, tokenizer = common.load_minilm(common.minilm_path())
    texts, labels = mixed_length_texts(*common.load_data()["train"], settings["examples"])
    enc = encode(tokenizer, texts, labels, max_length)
    lengths = [len(ids) for ids in enc.input_ids]
    pad_id = tokenizer.pad_token_id
    longest = max(lengths)
    grouped = [collate(enc, rows, pad_id) for rows in batch_order(lengths, BATCH, True, SEED, True)]
    padded = [pad_to(collate(enc, rows, pad_id), longest, pad_id) for rows in batch_order(lengths, BATCH, True, SEED, False)]
    real = int(sum(b["attention_mask"].sum() for b in grouped))
    assert real == int(sum(b["attention_mask"].sum() for b in padded)) == sum(lengths)  # the same tokens, batched two ways

    def one_round():
        loops = {}
        for name, batches in (("llmnb batching", grouped), ("pad to longest", padded)):
            model = copy.deepcopy(template)
            torch.manual_seed(SEED)
            loops[name] = PlainLoop(model, batches, LLMNB_LR, fused=True).step
        seconds = common.lockstep(loops, len(grouped))
        return {"seconds": sum(seconds.values()), **{f"{k} tok/s": real / v for k, v in seconds.items()}}

    results = interleave({"lockstep": one_round}, settings["rounds"], "padding", deadline=common.deadline(settings["deadline"], quick))
    speedup = [r["llmnb batching tok/s"] / r["pad to longest tok/s"] for r in results["lockstep"]]
    slots = {name: sum(b["input_ids"].numel() for b in bs) for name, bs in (("grouped", grouped), ("padded", padded))}
    summary = {
        "padding_speedup": median(speedup),
        "padding_spread": spread(speedup),
        "padding_tokens_per_s": {name: round(median([r[f"{name} tok/s"] for r in results["lockstep"]]), 1)
                                 for name in ("llmnb batching", "pad to longest")},
        "padding_token_slots": slots,
        "padding_real_tokens": real,
        "padding_examples": settings["examples"],
        "padding_length_range": [min(lengths), longest],
    }
    notes = {"padding_speedup": ("real tokens/s: llmnb batching / pad to longest",
                                 f"per round {summary['padding_spread']}; {settings['examples']} texts of {min(lengths)}-{longest} tokens, "
                                 f"token slots {slots['grouped']} vs {slots['padded']} for {real} real")}
    timed = f"{settings['examples']} mixed-length texts, llmnb's batches vs padded to the longest row, one step of each in turn"
    return Section(summary, common.round_rows(results), timed, notes)


if __name__ == "__main__":
    common.main_for(run)

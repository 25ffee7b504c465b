"""sft: instruction tuning, timed side by side in one process: packing, and the engine's cost.

    .venv/bin/python benchmarks/sft.py              # 3 rounds of 100 steps per contender
    .venv/bin/python benchmarks/sft.py --quick      # 2 rounds of 60 steps (run.py --quick)
    .venv/bin/python benchmarks/sft.py --rounds 1 --steps 20

Model: llmnb's GPT (2 layers x 128, context 128) with its byte-level tokenizer, the shape that
chapter 10 tunes; its weights do not matter for timing. Data: the bundled instruction set.
Every contender takes the same examples in the same batches (16 examples each) for the same
number of optimizer steps; only the layout or the loop around it differs.

  packing_speedup        real tokens/s packed (rows of 128, best-fit-decreasing) / padded
                         (each batch padded to its longest example, llmnb's length-grouped
                         batches); also reported against naive padding (random batches)
  sft_overhead_vs_plain  llmnb.finetune(task="sft") training time / a hand-written loop doing the
                         same steps (same packed batches, llmnb's AdamW and schedule, clipping):
                         goal <= 1.05

Contenders alternate within each round and the order rotates, so drift in the machine's load
hits both; the median of the per-round ratios is reported.
"""
from __future__ import annotations

import argparse
import statistics
import time

import common
import torch
from common import Section

import llmnb

BATCH, LENGTH = 16, 128
SETTINGS = {"quick": dict(rounds=2, steps=60), "full": dict(rounds=3, steps=100), "smoke": dict(rounds=1, steps=3)}


def base_model():
    """A GPT of chapter 10's shape and its tokenizer (one pretraining step: the weights are irrelevant)."""
    return llmnb.pretrain(max_steps=1, block_size=LENGTH, corpus_chars=60_000, quiet=True)


def llmnb_tokens_per_s(gpt, steps, packing, group_by_length=True):
    ft = llmnb.finetune(gpt, "instructions", task="sft", max_steps=steps, batch_size=BATCH, packing=packing,
                        group_by_length=group_by_length, eval_fraction=0, save_checkpoints=False, quiet=True, lr=1e-3,
                        max_length=LENGTH, log_every=steps)
    return ft.history.tokens_per_second.dropna().iloc[-1]  # real tokens / training seconds (no evaluation: no eval data)


def plain_tokens_per_s(gpt, steps):
    """The same packed batches through a loop written by hand: forward, backward, clip, AdamW, schedule."""
    import copy

    from llmnb.finetuning.config import FineTuneConfig
    from llmnb.core.task import make_task

    config = FineTuneConfig(task="sft", max_steps=steps, batch_size=BATCH, max_length=LENGTH, lr=1e-3, eval_fraction=0)
    task = make_task(config)
    model, tokenizer = copy.deepcopy(gpt.model), copy.deepcopy(gpt.tokenizer)
    task.prepare_tokenizer(tokenizer)
    prepared = task.prepare("instructions", None, config)
    enc = task.encode(tokenizer, prepared.train_texts, prepared.train_targets, LENGTH)
    # The same optimizer and schedule as the engine's (fused AdamW where torch has it): the ratio is the loop's cost.
    optimizer = llmnb.make_optimizer(model, config, torch.device("cpu"))
    schedule = llmnb.make_scheduler(optimizer, config, steps)
    model.train()
    tokens, start, done = 0, time.perf_counter(), 0
    while done < steps:
        for batch in task.batches(enc, config, done, tokenizer.pad_token_id):
            loss = task.compute_loss(model, batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            tokens += int(batch["attention_mask"].sum())
            done += 1
            if done == steps:
                break
    return tokens / (time.perf_counter() - start)


def measure(rounds: int = 3, steps: int = 100) -> tuple[dict, list[dict]]:
    """(figures, one row of tokens/s per round) of `rounds` rounds of the four contenders."""
    gpt = base_model()
    llmnb_tokens_per_s(gpt, 3, True)  # warm-up: first-call costs out of the timed rounds
    packing, naive, overhead, rows = [], [], [], []
    for r in range(rounds):
        order = ["packed", "padded", "naive", "plain"]
        order = order[r % 4 :] + order[: r % 4]
        speed = {}
        for name in order:
            if name == "plain":
                speed[name] = plain_tokens_per_s(gpt, steps)
            else:
                speed[name] = float(llmnb_tokens_per_s(gpt, steps, packing=name == "packed", group_by_length=name != "naive"))
        packing.append(float(speed["packed"] / speed["padded"]))
        naive.append(float(speed["packed"] / speed["naive"]))
        overhead.append(float(speed["plain"] / speed["packed"]))
        rows.append({"round": r + 1, "order": " ".join(order), **{f"{k} tok/s": round(speed[k], 1) for k in ("packed", "padded", "naive", "plain")}})
        common.log(f"  sft round {r + 1}: tokens/s " + ", ".join(f"{k} {v:.0f}" for k, v in speed.items()))
    figures = {
        "packing_speedup": statistics.median(packing),
        "packing_speedup_vs_naive": statistics.median(naive),
        "sft_overhead_vs_plain": statistics.median(overhead),
        "sft_spread": {"packing": [round(x, 3) for x in packing], "naive": [round(x, 3) for x in naive],
                       "overhead": [round(x, 3) for x in overhead]},
        "sft_steps": steps, "sft_rounds": rounds,
    }
    return figures, rows


def run(quick: bool) -> Section:
    settings = common.pick(SETTINGS, quick)
    figures, rows = measure(settings["rounds"], settings["steps"])
    spread = figures["sft_spread"]
    notes = {
        "packing_speedup": ("sft real tokens/s: packed / padded (length-grouped)",
                            f"per round {spread['packing']}; vs naive padding {figures['packing_speedup_vs_naive']:.3f}; "
                            f"{settings['steps']} steps x {settings['rounds']} round(s), bundled instructions, GPT 2x128"),
        "sft_overhead_vs_plain": ("finetune(task='sft') / hand-written loop, same packed batches", f"per round {spread['overhead']}"),
    }
    timed = (f"finetune(task='sft') packed, padded (length-grouped), naively padded, and a hand-written loop on the packed batches, "
             f"{settings['steps']} steps x {settings['rounds']} round(s), chapter 10's GPT")
    return Section(figures, rows, timed, notes)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds of 60 steps")
    parser.add_argument("--smoke", action="store_true", help="3 steps: checks that it runs")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    args = parser.parse_args()
    common.MODE = "smoke" if args.smoke else None
    settings = common.pick(SETTINGS, args.quick)
    SETTINGS[common.mode(args.quick)] = {"rounds": args.rounds or settings["rounds"], "steps": args.steps or settings["steps"]}
    common.set_threads("auto")
    common.print_section("sft", run(args.quick))

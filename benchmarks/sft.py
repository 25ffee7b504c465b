"""sft: instruction tuning, timed side by side in one process: packing per attention, and the engine's cost.

    .venv/bin/python benchmarks/sft.py              # 3 rounds of 100 steps per contender
    .venv/bin/python benchmarks/sft.py --quick      # 2 rounds of 60 steps (run.py --quick)
    .venv/bin/python benchmarks/sft.py --rounds 1 --steps 20

Model: llmnb's GPT (2 layers x 128, context 128) with its byte-level tokenizer, the shape that
chapter 10 tunes; its weights do not matter for timing. Data: the bundled instruction set.
Every contender takes the same examples in the same batches (16 examples each) for the same
number of optimizer steps; only the layout, the attention implementation or the loop differs.

For each attention implementation (sdpa, eager; flash_attention_2 where flash-attn and a GPU are
there) and each batching (llmnb's length-grouped batches, and random ones, which carry more
padding), packed and padded runs are timed, and what `packing="auto"` picks is recorded:

  packing_speedup        real tokens/s packed (rows of 128, best-fit-decreasing) / padded, sdpa,
                         length-grouped (the default run); the other pairs in the table
  packing_auto_vs_best   over every (attention, batching) pair: the tokens/s of the layout auto
                         picked / the faster layout's; goal >= 0.95 (auto never picks the layout
                         that is slower by more than the rounds' noise)
  sft_overhead_vs_plain  llmnb.finetune(task='sft') training time / a hand-written loop doing the
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


def attentions() -> tuple[str, ...]:
    """The attention implementations timed: flash attention's variable-length path only where it can run."""
    import importlib.util

    flash = importlib.util.find_spec("flash_attn") is not None and torch.cuda.is_available()
    return ("sdpa", "eager") + (("flash_attention_2",) if flash else ())


def with_attention(gpt, attention):
    gpt.model.set_attn_implementation(attention)  # finetune copies the model, attention and all
    return gpt


def llmnb_tokens_per_s(gpt, steps, packing, group_by_length=True):
    ft = llmnb.finetune(gpt, "instructions", task="sft", max_steps=steps, batch_size=BATCH, packing=packing,
                        group_by_length=group_by_length, eval_fraction=0, save_checkpoints=False, quiet=True, lr=1e-3,
                        max_length=LENGTH, log_every=steps)
    return ft.history.tokens_per_second.dropna().iloc[-1]  # real tokens / training seconds (no evaluation: no eval data)


def sft_task(gpt, group_by_length=True, packing=True):
    """The sft task, its encoded data and a copy of the model, as finetune prepares them."""
    import copy

    from llmnb.finetuning.config import FineTuneConfig
    from llmnb.core.task import make_task

    config = FineTuneConfig(task="sft", max_steps=1, batch_size=BATCH, max_length=LENGTH, lr=1e-3, eval_fraction=0,
                            group_by_length=group_by_length, packing=packing)
    task = make_task(config)
    model, tokenizer = copy.deepcopy(gpt.model), copy.deepcopy(gpt.tokenizer)
    task.prepare_tokenizer(tokenizer)
    prepared = task.prepare("instructions", None, config)
    enc = task.encode(tokenizer, prepared.train_texts, prepared.train_targets, LENGTH)
    return task, config, model, tokenizer, enc


def auto_choice(gpt, group_by_length) -> tuple[bool, str]:
    """What packing="auto" picks for this attention and batching (the function finetune calls)."""
    task, _, model, _, enc = sft_task(gpt, group_by_length, packing="auto")
    task.choose_layout(model, enc)
    return task.packed, task.packing_reason


def plain_tokens_per_s(gpt, steps):
    """The same packed batches through a loop written by hand: forward, backward, clip, AdamW, schedule."""
    task, config, model, tokenizer, enc = sft_task(gpt)
    config = config.replace(max_steps=steps)
    task.choose_layout(model, enc)  # packing=True: packed
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


BATCHINGS = {"grouped": True, "random": False}  # group_by_length


def measure(rounds: int = 3, steps: int = 100) -> tuple[dict, list[dict]]:
    """(figures, one row of tokens/s per round) of `rounds` rounds: packed and padded for every
    attention and batching, and the hand-written loop."""
    gpt = base_model()
    llmnb_tokens_per_s(gpt, 3, True)  # warm-up: first-call costs out of the timed rounds
    pairs = [(a, b) for a in attentions() for b in BATCHINGS]
    chosen = {pair: auto_choice(with_attention(gpt, pair[0]), BATCHINGS[pair[1]]) for pair in pairs}
    with_attention(gpt, "sdpa")
    speedups = {pair: [] for pair in pairs}
    overhead, rows = [], []
    contenders = [(a, b, layout) for a, b in pairs for layout in ("packed", "padded")] + [("sdpa", "grouped", "plain")]
    for r in range(rounds):
        order = contenders[r % len(contenders):] + contenders[: r % len(contenders)]
        speed = {}
        for attention, batching, layout in order:
            with_attention(gpt, attention)
            if layout == "plain":
                speed[attention, batching, layout] = plain_tokens_per_s(gpt, steps)
            else:
                speed[attention, batching, layout] = float(llmnb_tokens_per_s(gpt, steps, layout == "packed", BATCHINGS[batching]))
        for pair in pairs:
            speedups[pair].append(speed[(*pair, "packed")] / speed[(*pair, "padded")])
        overhead.append(float(speed["sdpa", "grouped", "plain"] / speed["sdpa", "grouped", "packed"]))
        for attention, batching in pairs:
            rows.append({"round": r + 1, "attention": attention, "batching": batching,
                         "packed tok/s": round(speed[attention, batching, "packed"], 1),
                         "padded tok/s": round(speed[attention, batching, "padded"], 1),
                         "auto": "packed" if chosen[attention, batching][0] else "padded"})
        common.log(f"  sft round {r + 1}: tokens/s " + ", ".join(f"{'/'.join(k)} {v:.0f}" for k, v in speed.items()))
    speedup = {pair: statistics.median(values) for pair, values in speedups.items()}
    # The layout auto picked, against the faster one: 1 where it picked the faster.
    auto_vs_best = {pair: (speedup[pair] if chosen[pair][0] else 1.0) / max(speedup[pair], 1.0) for pair in pairs}
    figures = {
        "packing_speedup": speedup["sdpa", "grouped"],
        "packing_speedup_by_attention": {f"{a}/{b}": round(v, 3) for (a, b), v in speedup.items()},
        "packing_auto": {f"{a}/{b}": ("packed" if c[0] else "padded") for (a, b), c in chosen.items()},
        "packing_auto_reasons": {f"{a}/{b}": c[1] for (a, b), c in chosen.items()},
        "packing_auto_vs_best": min(auto_vs_best.values()),
        "sft_overhead_vs_plain": statistics.median(overhead),
        "sft_spread": {"packing": {f"{a}/{b}": [round(x, 3) for x in v] for (a, b), v in speedups.items()},
                       "overhead": [round(x, 3) for x in overhead]},
        "sft_steps": steps, "sft_rounds": rounds,
    }
    return figures, rows


def run(quick: bool) -> Section:
    settings = common.pick(SETTINGS, quick)
    figures, rows = measure(settings["rounds"], settings["steps"])
    spread = figures["sft_spread"]
    pairs = ", ".join(f"{k} {v:.2f} (auto: {figures['packing_auto'][k]})" for k, v in figures["packing_speedup_by_attention"].items())
    notes = {
        "packing_speedup": ("sft real tokens/s: packed / padded (sdpa, length-grouped)",
                            f"per round {spread['packing']['sdpa/grouped']}; {settings['steps']} steps x "
                            f"{settings['rounds']} round(s), bundled instructions, GPT 2x128"),
        "packing_auto_vs_best": ("tokens/s of the layout auto picked / the faster layout's (worst pair)", f"packed/padded: {pairs}"),
        "sft_overhead_vs_plain": ("finetune(task='sft') / hand-written loop, same packed batches", f"per round {spread['overhead']}"),
    }
    timed = (f"finetune(task='sft') packed and padded under {', '.join(attentions())}, with length-grouped and random "
             f"batches, and a hand-written loop on the packed batches, {settings['steps']} steps x {settings['rounds']} "
             "round(s), chapter 10's GPT")
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

"""grpo: learning from rewards, llmnb's task against a minimal hand-written loop, side by side in one process.

    .venv/bin/python benchmarks/grpo.py              # 3 rounds of 20 steps per contender
    .venv/bin/python benchmarks/grpo.py --quick      # 2 rounds of 10 steps (run.py --quick)

Model: llmnb's GPT of chapter 10's shape (2 layers x 128, context 128) with its tokenizer and
llmnb's chat template; its weights do not matter for timing (an untrained GPT rarely writes the
end-of-text token, so nearly every completion runs to max_new_tokens in both contenders). Data:
the prompts of the bundled instruction set, a "contains" reward. Both contenders do the same work
per step: 8 prompts x 8 completions of up to 16 tokens, sampled with `generate`, scored,
group-relative advantages, one forward and backward pass over the completions, AdamW.

  grpo_overhead_vs_plain   llmnb.finetune(task='grpo') training seconds / the hand loop's, same
                           steps; goal <= 1.10 (what the task adds: statistics, the log rows,
                           the per-call seeding)
  grpo_generation_tokens_per_s   completion tokens sampled per second of generation (llmnb's run)
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time

import common
import torch
from common import Section

import llmnb

PROMPTS, GROUP, NEW_TOKENS = 8, 8, 16
SETTINGS = {"quick": dict(rounds=2, steps=10), "full": dict(rounds=3, steps=20), "smoke": dict(rounds=1, steps=2)}


def base_model():
    gpt = llmnb.pretrain(max_steps=1, block_size=128, corpus_chars=60_000, quiet=True)
    from llmnb.instruct.chat import ensure_chat_template

    ensure_chat_template(gpt.tokenizer)
    return gpt


def prompts():
    data = llmnb.datasets.load("instructions")
    return [{"prompt": (f"{i}\n\n{q}" if isinstance(i, str) and i else q)} for i, q in zip(data["input"], data["instruction"])][:400]


def reward(completions, **_):
    return [float("the" in c.lower()) for c in completions]


def llmnb_run(gpt, steps):
    ft = llmnb.finetune(gpt, prompts(), task="grpo", reward=reward, max_steps=steps, batch_size=PROMPTS,
                        num_generations=GROUP, max_new_tokens=NEW_TOKENS, lr=1e-3, eval_fraction=0, probe=False,
                        save_checkpoints=False, quiet=True, log_every=1, precision="fp32")
    history = ft.history.dropna(subset=["reward_mean"])
    return float(history.seconds.iloc[-1]), float(history.completion_tokens_per_second.median())


def plain_run(gpt, steps):
    """The loop a reader would write from the paper: sample, score, centre by group, step."""
    from llmnb.core.engine import make_optimizer, make_scheduler
    from llmnb.finetuning.config import FineTuneConfig
    from llmnb.instruct.chat import render

    model, tokenizer = copy.deepcopy(gpt.model), gpt.tokenizer
    config = FineTuneConfig(lr=1e-3, max_steps=steps)
    optimizer = make_optimizer(model, config, torch.device("cpu"))
    scheduler = make_scheduler(optimizer, config, steps)
    rows = [tokenizer(render(tokenizer, [{"role": "user", "content": p["prompt"]}], add_generation_prompt=True),
                      add_special_tokens=False)["input_ids"][-(128 - NEW_TOKENS):] for p in prompts()]
    pad = tokenizer.eos_token_id
    model.train()
    start = time.perf_counter()
    for step in range(steps):
        chunk = rows[step * PROMPTS : (step + 1) * PROMPTS]
        width = max(map(len, chunk))
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in chunk]).repeat_interleave(GROUP, 0)
        mask = (torch.arange(width) >= torch.tensor([width - len(r) for r in chunk]).unsqueeze(1)).long().repeat_interleave(GROUP, 0)
        model.eval()
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=1.0, top_k=0,
                                 max_new_tokens=NEW_TOKENS, pad_token_id=pad, eos_token_id=pad)
        model.train()
        completion = out[:, width:]
        done = (completion == pad).long()
        scored = ((done.cumsum(1) - done) == 0).long()
        texts = tokenizer.batch_decode(completion * scored + pad * (1 - scored), skip_special_tokens=True)
        r = torch.tensor(reward(texts)).view(-1, GROUP)
        advantages = ((r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + 1e-4)).view(-1, 1)
        full_mask = torch.cat([mask, scored], 1)
        logits = model(input_ids=out, attention_mask=full_mask, position_ids=(full_mask.cumsum(1) - 1).clamp(min=0)).logits
        logps = logits[:, width - 1 : -1].float().log_softmax(-1).gather(2, completion.unsqueeze(-1)).squeeze(-1)
        loss = -(advantages * logps * scored).sum() / scored.sum().clamp(min=1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def measure(rounds: int, steps: int):
    gpt = base_model()
    llmnb_run(gpt, 2), plain_run(gpt, 2)  # warm-up: first calls pay for kernel selection and imports
    ratios, rows, generation = [], [], []
    for round_number in range(rounds):
        order = ("llmnb", "plain") if round_number % 2 == 0 else ("plain", "llmnb")
        seconds = {}
        for contender in order:
            if contender == "llmnb":
                seconds["llmnb"], tokens_per_s = llmnb_run(gpt, steps)
                generation.append(tokens_per_s)
            else:
                seconds["plain"] = plain_run(gpt, steps)
        ratios.append(seconds["llmnb"] / seconds["plain"])
        rows.append({"round": round_number, "llmnb s": round(seconds["llmnb"], 2), "plain s": round(seconds["plain"], 2),
                     "ratio": round(ratios[-1], 3), "generation tokens/s": round(generation[-1], 1)})
        common.log(rows[-1])
    figures = {"grpo_overhead_vs_plain": statistics.median(ratios),
               "grpo_generation_tokens_per_s": statistics.median(generation),
               "grpo_spread": [round(r, 3) for r in ratios], "grpo_steps": steps, "grpo_rounds": rounds}
    return figures, rows


def run(quick: bool) -> Section:
    settings = common.pick(SETTINGS, quick)
    figures, rows = measure(settings["rounds"], settings["steps"])
    notes = {"grpo_overhead_vs_plain": ("finetune(task='grpo') / hand-written loop, same steps and sizes",
                                        f"per round {figures['grpo_spread']}; {settings['steps']} steps x {settings['rounds']} "
                                        f"round(s), {PROMPTS} prompts x {GROUP} completions of <= {NEW_TOKENS} tokens")}
    timed = (f"finetune(task='grpo') and a hand-written GRPO loop, {settings['steps']} steps x {settings['rounds']} round(s), "
             f"{PROMPTS} prompts x {GROUP} completions of up to {NEW_TOKENS} tokens, chapter 10's GPT, fp32")
    return Section(figures, rows, timed, notes)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds of 10 steps")
    parser.add_argument("--smoke", action="store_true", help="2 steps: checks that it runs")
    args = parser.parse_args()
    common.MODE = "smoke" if args.smoke else None
    common.set_threads("auto")
    common.print_section("grpo", run(args.quick))

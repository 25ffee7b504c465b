"""engine: llmnb's Engine against a hand-written loop, step for step, and the FLOP/s it reaches.

    .venv/bin/python benchmarks/engine.py [--quick]

The same 480 review sentences, the same pre-collated batches (llmnb's length-grouped, dynamically
padded order), the same MiniLM weights, AdamW with two weight-decay groups, warmup + linear decay,
clipping, fp32, no evaluation, no display. Per round: llmnb's Engine and, in lockstep beside it
(one step of each after every engine step, their order rotating), hand-written loops with the
engine's own optimizer (fused AdamW) and with foreach AdamW, in fp32 and in bf16 autocast; then a
2048 x 2048 fp32 matmul (the peak that MFU divides by). Engine time = the run's wall time minus
the companions'. Plus the Engine's own bookkeeping per step against a plain loop on a near-free
model. The rounds are run once per process: bf16.py reads their bf16 companions too.

The hand-written loop (`PlainLoop`) and the matmul peak (`matmul_flops`) are here; padding.py
and gpu.py use them too.
"""
from __future__ import annotations

import copy
import functools
import time

import common
import torch
import transformers
from common import BATCH, LLMNB_LR, SEED, Section, interleave, median, spread, values

from llmnb.core.engine import Engine
from llmnb.core.events import Callback
from llmnb.finetuning.batches import batch_order, collate, encode
from llmnb.finetuning.config import FineTuneConfig

SETTINGS = {"quick": dict(steps=24, rounds=3, deadline=200), "full": dict(steps=60, rounds=5, deadline=None),
            "smoke": dict(steps=3, rounds=1, deadline=None)}
# name -> PlainLoop options: the engine's own optimizer first ("plain"), the rest for bf16.py and fused_adamw_speedup.
COMPANIONS = {
    "plain": dict(fused=True),
    "plain foreach": dict(foreach=True),
    "plain bf16": dict(fused=True, autocast_dtype=torch.bfloat16),
    "plain bf16 foreach": dict(foreach=True, autocast_dtype=torch.bfloat16),
}


def plain_optimizer(model, lr, weight_decay, **kind):
    """AdamW over two groups, decayed (matrices) and not (biases, LayerNorm), as written by hand."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, **kind)


def linear_warmup_decay(optimizer, warmup: float, steps: int):
    warm = int(round(warmup * steps))

    def factor(step):
        if step < warm:
            return (step + 1) / (warm + 1)
        return max(0.0, 1 - (step - warm) / max(1, steps - warm))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class PlainLoop:
    """A hand-written PyTorch loop over `batches`: forward, backward, clip, AdamW, schedule, and
    no logging at all. `step(i)` does optimizer step i, so two loops can run in lockstep.
    `kind`: AdamW's implementation, fused=True (llmnb's) or foreach=True."""

    def __init__(self, model, batches, lr, weight_decay=0.01, warmup=0.1, grad_clip=1.0, autocast_dtype=None, device="cpu", **kind):
        self.model, self.batches, self.grad_clip, self.device = model, batches, grad_clip, torch.device(device)
        self.autocast_dtype = autocast_dtype
        self.optimizer = plain_optimizer(model, lr, weight_decay, **kind)
        self.scheduler = linear_warmup_decay(self.optimizer, warmup, len(batches))
        self.loss = None
        model.train()

    def step(self, i):
        batch = {k: v.to(self.device, non_blocking=True) for k, v in self.batches[i].items()}
        dtype = self.autocast_dtype
        with torch.autocast(self.device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            loss = self.model(**batch).loss
        loss.backward()
        if self.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.loss = loss.detach()


def train_plain(model, batches, lr, **options):
    """Run a PlainLoop over every batch; returns the last loss (read once, after the loop)."""
    loop = PlainLoop(model, batches, lr, **options)
    for i in range(len(batches)):
        loop.step(i)
    return float(loop.loss) if loop.loss is not None else float("nan")


def matmul_flops(dtype=None, n=2048, seconds=0.6, device="cpu") -> float:
    """FLOP/s of square n x n matrix products: the practical peak of this machine for `dtype`."""
    dtype = dtype or torch.float32
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    a @ b  # first call: allocation, kernel choice
    sync()
    count, start = 0, time.perf_counter()
    while True:
        a @ b
        count += 1
        sync()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and count >= 2:
            return 2 * n**3 * count / elapsed


class Companions(Callback):
    """Runs one step of each companion loop after every engine step (on_log with log_every=1),
    timing each: the engine and the hand-written loops then advance in lockstep."""

    def __init__(self, loops: dict):
        self.loops, self.seconds, self._done = loops, dict.fromkeys(loops, 0.0), 0

    def on_log(self, state, row):
        for i in range(self._done, state.step):
            names = list(self.loops)
            shift = i % len(names)
            for name in names[shift:] + names[:shift]:
                start = time.perf_counter()
                self.loops[name](i)
                self.seconds[name] += time.perf_counter() - start
        self._done = state.step

    @property
    def total(self):
        return sum(self.seconds.values())


class Bench:
    """MiniLM, its tokenizer and `steps` pre-collated batches in llmnb's own order."""

    def __init__(self, steps: int):
        common.warm_up()
        self.template, tokenizer = common.load_minilm(common.minilm_path())
        texts, labels = common.load_data()["train"]
        enc = encode(tokenizer, texts, labels, 128)
        lengths = [len(ids) for ids in enc.input_ids]
        batches, epoch = [], 0
        while len(batches) < steps:  # llmnb's own order, epoch after epoch
            batches += [collate(enc, rows, tokenizer.pad_token_id) for rows in batch_order(lengths, BATCH, True, SEED + epoch, True)]
            epoch += 1
        self.batches, self.steps = batches[:steps], steps
        self.tokenizer = tokenizer
        self.tokens = int(sum(b["attention_mask"].sum() for b in self.batches))
        self.config = FineTuneConfig(lr=LLMNB_LR, max_steps=steps, batch_size=BATCH, precision="fp32", early_stopping=None,
                                     log_every=1, eval_fraction=0, save_checkpoints=False, quiet=True, plot=True)

    def fresh(self):
        model = copy.deepcopy(self.template)
        torch.manual_seed(SEED)
        return model

    def plain(self, **options):
        return PlainLoop(self.fresh(), self.batches, LLMNB_LR, **options).step

    def engine(self, precision: str, companions: dict) -> dict:
        """One Engine run with `companions` (name -> PlainLoop options) in lockstep; seconds of each.
        "seconds" is the engine's own: the wall time minus the companions' time."""
        lockstep = Companions({name: self.plain(**options) for name, options in companions.items()})
        start = time.perf_counter()
        done = Engine(self.fresh(), self.config.replace(precision=precision), lambda epoch: self.batches, self.steps, None,
                      [lockstep]).fit()
        wall = time.perf_counter() - start
        assert done.status == "finished" and done.step == self.steps, (done.status, done.message)
        return {"seconds": wall - lockstep.total, "wall": wall, **{f"{k} s": v for k, v in lockstep.seconds.items()}}


@functools.cache
def fp32_rounds(quick: bool):
    """Per round: Engine fp32 with every companion in lockstep, and the fp32 matmul peak (run once)."""
    settings = common.pick(SETTINGS, quick)
    bench = Bench(common.scaled_steps(settings["steps"], quick))
    contenders = {
        "engine fp32": lambda: bench.engine("fp32", COMPANIONS),
        "matmul fp32": lambda: {"seconds": 1.0, "flops": matmul_flops(torch.float32)},
    }
    return bench, interleave(contenders, settings["rounds"], "engine", deadline=common.deadline(settings["deadline"], quick))


class TinyClassifier(torch.nn.Module):
    """A model that costs almost nothing, so that a loop's own bookkeeping is what gets timed."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(8, 2)

    def forward(self, input_ids, attention_mask=None, labels=None):
        logits = self.linear(input_ids[:, :8].float())
        return transformers.modeling_outputs.SequenceClassifierOutput(loss=torch.nn.functional.cross_entropy(logits, labels), logits=logits)


def bookkeeping_ms(steps=300, rounds=3):
    """Milliseconds per step that the Engine adds to a hand-written loop, both driving a near-free
    model (log_every=1: the engine's worst case, a history row and a host read every step)."""
    g = torch.Generator().manual_seed(0)
    batches = [{"input_ids": torch.randint(0, 100, (BATCH, 16), generator=g), "attention_mask": torch.ones(BATCH, 16, dtype=torch.long),
                "labels": torch.randint(0, 2, (BATCH,), generator=g)} for _ in range(steps)]
    config = FineTuneConfig(lr=LLMNB_LR, max_steps=steps, precision="fp32", early_stopping=None, log_every=1, eval_fraction=0,
                            save_checkpoints=False, quiet=True)

    def engine():
        start = time.perf_counter()
        Engine(TinyClassifier(), config, lambda epoch: batches, steps).fit()
        return {"seconds": time.perf_counter() - start}

    def plain():
        start = time.perf_counter()
        train_plain(TinyClassifier(), batches, LLMNB_LR, fused=True)
        return {"seconds": time.perf_counter() - start}

    results = interleave({"engine": engine, "plain": plain}, rounds, "bookkeeping", quiet=True)
    return median([(e - p) / steps * 1000 for e, p in zip(values(results, "engine"), values(results, "plain"))])


def run(quick: bool) -> Section:
    bench, results = fp32_rounds(quick)
    rounds = results["engine fp32"]
    overhead = [r["seconds"] / r["plain s"] for r in rounds]
    fused = [r["plain foreach s"] / r["plain s"] for r in rounds]
    step_s = median([r["seconds"] for r in rounds]) / bench.steps
    flops_per_token = 6 * common.non_embedding_parameters(bench.template)
    peak = median(values(results, "matmul fp32", "flops"))
    achieved = flops_per_token * bench.tokens / median([r["seconds"] for r in rounds])
    extra_ms = bookkeeping_ms(rounds=1 if common.mode(quick) == "smoke" else 3)
    summary = {
        "overhead_vs_plain": median(overhead),
        "overhead_spread": spread(overhead),
        "mfu": achieved / peak,
        "mfu_precision": "fp32",
        "engine_bookkeeping_ms_per_step": extra_ms,
        "engine_bookkeeping_fraction": extra_ms / 1000 / step_s,
        "fused_adamw_speedup": median(fused),
        "achieved_gflops": {"fp32": round(achieved / 1e9, 2)},
        "peak_gflops": {"fp32": round(peak / 1e9, 2)},
        "non_embedding_params": flops_per_token // 6,
        "step_seconds_fp32": step_s,
        "tokens_per_step": bench.tokens / bench.steps,
        "engine_steps": bench.steps,
        "engine_rounds": len(rounds),
    }
    notes = {
        "overhead_vs_plain": ("Engine / hand-written loop (lockstep, same batches, fp32)",
                              f"per round {summary['overhead_spread']}; {bench.steps} steps x {len(rounds)} rounds, {step_s:.3f} s/step; "
                              f"engine bookkeeping {extra_ms:.3f} ms/step = {summary['engine_bookkeeping_fraction']:.4f} of a step"),
        "mfu": ("6 x non-emb. params x tokens/s / matmul peak, fp32",
                f"{summary['achieved_gflops']['fp32']} of {summary['peak_gflops']['fp32']} GFLOP/s; {summary['tokens_per_step']:.0f} tokens/step; "
                f"fused / foreach AdamW, plain step: {summary['fused_adamw_speedup']:.3f}"),
    }
    rows = [{k: v for k, v in row.items() if "bf16" not in k} for row in common.round_rows(results)]
    timed = (f"Engine fp32 vs hand-written loops in lockstep (fused AdamW as the engine, and foreach), {bench.steps} MiniLM steps "
             f"x {len(rounds)} rounds, llmnb's batches; fp32 matmul peak; bookkeeping on a near-free model")
    return Section(summary, rows, timed, notes)


if __name__ == "__main__":
    common.main_for(run)

"""llmnb's speed claims, measured: every number a ratio of contenders run side by side.

    .venv/bin/python benchmarks/run.py --quick     # <= 13 minutes on 2 busy cores
    .venv/bin/python benchmarks/run.py             # more steps and rounds: steadier medians
    .venv/bin/python benchmarks/run.py --only engine,padding --threads 2

Sections (each runs its contenders in this one process, interleaved: whole runs round-robin with
the order rotating every round, or single steps in lockstep; a ratio is the median over rounds of
that round's ratio):

  engine    the same 480 review sentences, the same pre-collated batches (llmnb's length-grouped,
            dynamically padded order), the same MiniLM weights, AdamW, warmup + linear decay,
            clipping, no evaluation. Per round: (A) llmnb's Engine in fp32 with the live notebook
            display, and in lockstep beside it (one step each after every engine step) hand-written
            loops in fp32 and bf16 autocast, each with foreach and with fused AdamW (the latter a
            proposed change); (C) the Engine in bf16 with a plain fp32 loop in lockstep; a large
            matmul in fp32 and bf16 (the peak FLOP/s that MFU divides by). Plus the Engine's own
            bookkeeping per step, against a plain loop, on a near-free model.
  finetune  llmnb.finetune (fp32 and bf16) against transformers.Trainer, equal settings: lr 1e-4,
            batch 16, warmup 10 %, linear decay, weight decay 0.01, clip 1.0, dynamic padding,
            evaluation on reviews_test after each epoch, no checkpoints. Timed from model load to
            the end of training. Accuracy is recomputed afterwards on reviews_test.
  padding   mixed-length texts (1-8 bundled reviews joined per example): llmnb's batching
            (batch_order(group_by_length=True) + collate) against every batch padded to the data
            set's longest row, one step of each in turn; real (non-pad) tokens per second.
  load_ext  `%load_ext llmnb` in fresh processes (IPython's own start-up excluded).
  memory    peak RSS of a separate process running the bundled fine-tune.
  cell      a whole default `%finetune` cell (imports to final image, every default) against the
            Trainer recipe (lr 5e-5, 3 epochs, fp32), each in a fresh process, on 600 / 272
            sentences: `cell_ratio_vs_trainer` and both accuracies (benchmarks/cell.py; it also
            prints the split of llmnb's cell by phase).
  sft       instruction tuning of chapter 10's GPT on the bundled instructions: real tokens/s
            packed vs padded, same examples and steps (`packing_speedup`), and finetune(task='sft')
            against a hand-written loop on the same packed batches (`sft_overhead_vs_plain`;
            benchmarks/sft.py).

The last line printed is one JSON object with every headline number (see docs/performance.md).
"""
import argparse  # noqa: E402
import contextlib  # noqa: E402
import copy  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import os
import random  # noqa: E402
import subprocess  # noqa: E402
import sys
import tempfile  # noqa: E402
import time  # noqa: E402

import common  # noqa: F401  (sets the offline environment before torch/transformers load)
import torch  # noqa: E402
import transformers  # noqa: E402
from common import (  # noqa: I001
    BATCH,
    SEED,
    PlainLoop,
    cpu_flags,
    cpu_name,
    interleave,
    load_data,
    load_minilm,
    lockstep,
    matmul_flops,
    median,
    non_embedding_parameters,
    paired_ratio,
    set_threads,
    spread,
    tokenize,
    train_plain,
    values,
    versions,
    warm_up,
)
from transformers import (  # noqa: E402
    DataCollatorWithPadding,
    PrinterCallback,
    Trainer,
    TrainingArguments,
)

import llmnb.core.engine  # noqa: E402
import llmnb.display  # noqa: E402
import llmnb.finetuning.inference  # noqa: E402,F401
from llmnb import finetune  # noqa: E402
from llmnb.core.engine import Engine  # noqa: E402
from llmnb.core.events import Callback  # noqa: E402
from llmnb.core.models import bundled_minilm_path  # noqa: E402
from llmnb.display.notebook import NotebookDisplay  # noqa: E402
from llmnb.finetuning.batches import batch_order, collate, encode  # noqa: E402
from llmnb.finetuning.config import FineTuneConfig  # noqa: E402

LLMNB_LR = 1e-4  # llmnb's default; every contender here uses it
GOALS = {
    "overhead_vs_plain": ("<=", 1.02),
    "trainer_ratio": ("<=", 0.9),
    "cell_ratio_vs_trainer": ("<=", 0.9),
    "padding_speedup": (">=", 1.5),
    "display_cost_fraction": ("<=", 0.01),
    "load_ext_seconds": ("<=", 0.3),
    "bf16_speedup": (">=", 1.5),
    "bf16_accuracy_delta": ("abs<=", 0.01),
    "mfu": (">=", 0.5),
    "packing_speedup": (">=", 1.5),
    "sft_overhead_vs_plain": ("<=", 1.05),
}
SETTINGS = {
    # engine: steps per contender and rounds; ft: epochs and rounds (ft_fused: also time the proposed
    # fused AdamW); pad: mixed-length texts and rounds; load_ext: fresh processes; memory: steps (None: all)
    "quick": dict(engine_steps=24, engine_rounds=3, ft_epochs=1, ft_rounds=2, ft_fused=False, pad_examples=64, pad_rounds=2,
                  load_ext_runs=3, memory_steps=10, cell_rounds=1, sft_rounds=2, sft_steps=60),
    "full": dict(engine_steps=60, engine_rounds=5, ft_epochs=4, ft_rounds=3, ft_fused=True, pad_examples=256, pad_rounds=3,
                 load_ext_runs=7, memory_steps=None, cell_rounds=3, sft_rounds=3, sft_steps=100),
    "smoke": dict(engine_steps=3, engine_rounds=1, ft_epochs=0.1, ft_rounds=1, ft_fused=True, pad_examples=32, pad_rounds=1,
                  load_ext_runs=1, memory_steps=2, cell_rounds=0, sft_rounds=1, sft_steps=3),
}
# --quick is sized for a MiniLM training step (batch of 16 reviews, fp32) of REFERENCE_STEP_S. On a busier
# machine (slower steps) the engine section takes proportionally fewer steps (at least 6), and past
# BUSY_SCALE the fine-tune and padding sections do one round instead of two. If the machine gets busier
# during the run, no new round of a section starts after its deadline (seconds after the start of the
# script's work; imports take another 20-60 s), so that --quick stays within 10 minutes before the
# cell section, whose one round of two whole default cells takes about 2-3 minutes more.
REFERENCE_STEP_S, BUSY_SCALE = 0.4, 0.6
QUICK_DEADLINES = {"engine": 200, "finetune": 330, "padding": 440, "memory": 480}


def log(*args, **kwargs):
    print(*args, **kwargs)


# ============================================================================= engine section

def calibrate(path, data, steps=3):
    """Seconds per fp32 training step of MiniLM on a batch of 16 reviews (median of `steps`)."""
    model, tokenizer = load_minilm(path)
    texts, labels = data["train"]
    batch = dict(tokenizer(texts[:BATCH], padding=True, return_tensors="pt"), labels=torch.tensor(labels[:BATCH]))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-9, foreach=True)
    times = []
    for i in range(steps + 1):
        start = time.perf_counter()
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if i:  # the first step allocates the optimizer's state
            times.append(time.perf_counter() - start)
    return median(times)


class FakeOutput:
    """Stands in for IPython's display handle outside a kernel: keeps the latest HTML string
    (already rendered by llmnb's render_html, which is the real work of a redraw)."""

    def __init__(self):
        self.updates, self.last = 0, None

    def __call__(self, obj, display_id=None, **kwargs):  # the display_fn
        self.updates += 1
        self.last = getattr(obj, "data", obj)
        return self

    def update(self, obj):
        self.updates += 1
        self.last = getattr(obj, "data", obj)


class Timed(Callback):
    """Forwards every event to `inner` and adds up the seconds spent inside it."""

    def __init__(self, inner):
        self.inner, self.seconds, self.final_seconds = inner, 0.0, 0.0

    def _call(self, name, *args):
        start = time.perf_counter()
        getattr(self.inner, name)(*args)
        spent = time.perf_counter() - start
        self.seconds += spent
        return spent

    def on_train_begin(self, state):
        self._call("on_train_begin", state)

    def on_log(self, state, row):
        self._call("on_log", state, row)

    def on_evaluate(self, state, metrics):
        self._call("on_evaluate", state, metrics)

    def on_epoch_end(self, state):
        self._call("on_epoch_end", state)

    def on_train_end(self, state):
        self.final_seconds = self._call("on_train_end", state)  # the final HTML + the PNG of the curve


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


@contextlib.contextmanager
def fused_adamw():
    """The proposed engine change, applied in this process only: AdamW(fused=True) on every device."""
    original = llmnb.core.engine.make_optimizer

    def make_optimizer(model, config, device):
        groups = [{"params": g["params"], "weight_decay": g["weight_decay"]} for g in original(model, config, device).param_groups]
        return torch.optim.AdamW(groups, lr=config.lr, fused=True)

    llmnb.core.engine.make_optimizer = make_optimizer
    try:
        yield
    finally:
        llmnb.core.engine.make_optimizer = original


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
        train_plain(TinyClassifier(), batches, LLMNB_LR, foreach=True)
        return {"seconds": time.perf_counter() - start}

    results = interleave({"engine": engine, "plain": plain}, rounds, "bookkeeping", log=lambda *a, **k: None)
    return median([(e - p) / steps * 1000 for e, p in zip(values(results, "engine"), values(results, "plain"))])


def engine_section(path, data, steps, rounds, deadline=None):
    """Two Engine runs per round, each with hand-written loops stepping in lockstep beside it:

    A  Engine fp32 + live notebook display | plain fp32, plain bf16, and both with fused AdamW
    C  Engine bf16                          | plain fp32
    plus a large matmul in fp32 and in bf16 (the peak for MFU).

    Engine time = run wall - companions' time - time inside the display (all measured).
    """
    template, tokenizer = load_minilm(path)
    texts, labels = data["train"]
    enc = encode(tokenizer, texts, labels, 128)
    lengths = [len(ids) for ids in enc.input_ids]
    pad_id = tokenizer.pad_token_id
    batches = []
    epoch = 0
    while len(batches) < steps:  # llmnb's own order, epoch after epoch
        batches += [collate(enc, rows, pad_id) for rows in batch_order(lengths, BATCH, True, SEED + epoch, True)]
        epoch += 1
    batches = batches[:steps]
    tokens = int(sum(b["attention_mask"].sum() for b in batches))
    flops_per_token = 6 * non_embedding_parameters(template)
    config = FineTuneConfig(
        lr=LLMNB_LR, max_steps=steps, batch_size=BATCH, precision="fp32", early_stopping=None, log_every=1,
        eval_fraction=0, save_checkpoints=False, quiet=True, plot=True,
    )

    def fresh():
        model = copy.deepcopy(template)
        torch.manual_seed(SEED)
        return model

    def plain(**options):
        return PlainLoop(fresh(), batches, LLMNB_LR, **options).step

    def run(precision, companions, display):
        companions = Companions(companions)
        callbacks = [companions]
        if display:
            output = FakeOutput()

            def engine_clock():  # the throttle sees the engine's own time, not the companions'
                return time.perf_counter() - companions.total

            display = Timed(NotebookDisplay(plot=True, display_fn=output, clock=engine_clock))
            callbacks.insert(0, display)
        model = fresh()
        start = time.perf_counter()
        engine = Engine(model, config.replace(precision=precision), lambda epoch: batches, len(batches), None, callbacks)
        state = engine.fit()
        wall = time.perf_counter() - start
        assert state.status == "finished" and state.step == steps, (state.status, state.message)
        shown = display.seconds if display else 0.0
        out = {"seconds": wall - companions.total - shown, **{f"{k} s": v for k, v in companions.seconds.items()}}
        if display:
            out.update({"display s": display.seconds, "final png s": display.final_seconds, "draws": display.inner.draws})
        return out

    contenders = {
        "A: engine fp32+display": lambda: run("fp32", {"plain": plain(foreach=True), "plain fused": plain(fused=True),
                                                        "plain bf16": plain(foreach=True, autocast_dtype=torch.bfloat16),
                                                        "plain bf16 fused": plain(fused=True, autocast_dtype=torch.bfloat16)}, True),
        "C: engine bf16": lambda: run("bf16", {"plain": plain(foreach=True)}, False),
        "matmul fp32": lambda: {"seconds": 1.0, "flops": matmul_flops(torch.float32)},
        "matmul bf16": lambda: {"seconds": 1.0, "flops": matmul_flops(torch.bfloat16)},
    }
    results = interleave(contenders, rounds, "engine", deadline=deadline)
    A, C = results["A: engine fp32+display"], results["C: engine bf16"]
    extra_ms = bookkeeping_ms()
    overhead = [r["seconds"] / r["plain s"] for r in A]
    display = [r["display s"] / r["seconds"] for r in A]
    live = [(r["display s"] - r["final png s"]) / r["seconds"] for r in A]
    # bf16: each engine's time relative to its own plain-fp32 companion, so the two runs compare.
    bf16 = [(a["seconds"] / a["plain s"]) / (c["seconds"] / c["plain s"]) for a, c in zip(A, C)]
    peak = {p: median(values(results, f"matmul {p}", "flops")) for p in ("fp32", "bf16")}
    achieved = {"fp32": flops_per_token * tokens / median([r["seconds"] for r in A]),
                "bf16": flops_per_token * tokens / median([r["seconds"] for r in C])}
    return {
        "overhead_vs_plain": median(overhead),
        "overhead_spread": spread(overhead),
        "engine_bookkeeping_ms_per_step": extra_ms,
        "engine_bookkeeping_fraction": extra_ms / 1000 / (median([r["seconds"] for r in A]) / steps),
        "display_cost_fraction": median(display),
        "display_live_fraction": median(live),
        "display_final_seconds": median([r["final png s"] for r in A]),
        "display_draws": median([r["draws"] for r in A]),
        "bf16_speedup": median(bf16),
        "bf16_spread": spread(bf16),
        "bf16_plain_speedup": median([r["plain s"] / r["plain bf16 s"] for r in A]),
        "fused_adamw_speedup": median([r["plain s"] / r["plain fused s"] for r in A]),
        "bf16_speedup_fused": median([r["plain fused s"] / r["plain bf16 fused s"] for r in A]),
        # The same two costs on the bundled default fine-tune (4 epochs of 30 steps): the final PNG
        # is paid once per run, so it weighs less in a longer run.
        "display_cost_fraction_default_run": median([(r["display s"] - r["final png s"]) / r["seconds"] + r["final png s"] / (120 * r["seconds"] / steps) for r in A]),
        "step_seconds_fp32": median([r["seconds"] for r in A]) / steps,
        "tokens_per_step": tokens / steps,
        "mfu": achieved["fp32"] / peak["fp32"],
        "mfu_bf16": achieved["bf16"] / peak["bf16"],
        "achieved_gflops": {p: round(v / 1e9, 2) for p, v in achieved.items()},
        "peak_gflops": {p: round(v / 1e9, 2) for p, v in peak.items()},
        "non_embedding_params": flops_per_token // 6,
        "steps": steps,
        "rounds": len(A),
    }


# ============================================================================= finetune section

def trainer_run(path, data, epochs, seed, out):
    start = time.perf_counter()
    model, tokenizer = load_minilm(path, seed)
    train_rows, test_rows = tokenize(tokenizer, *data["train"]), tokenize(tokenizer, *data["test"])
    args = TrainingArguments(
        output_dir=out,
        learning_rate=LLMNB_LR,
        num_train_epochs=epochs,
        per_device_train_batch_size=BATCH,
        per_device_eval_batch_size=2 * BATCH,  # llmnb evaluates with twice the training batch
        warmup_steps=0.1,  # a float below 1 is a fraction of the steps, as llmnb's warmup
        weight_decay=0.01,
        max_grad_norm=1.0,
        lr_scheduler_type="linear",
        eval_strategy="epoch",
        save_strategy="no",
        logging_strategy="no",
        report_to=[],
        disable_tqdm=True,
        use_cpu=True,
        bf16=False,
        dataloader_pin_memory=False,
        seed=seed,
    )

    def compute_metrics(prediction):  # llmnb computes accuracy at each evaluation too
        return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}

    trainer = Trainer(
        model=model, args=args, train_dataset=train_rows, eval_dataset=test_rows,
        processing_class=tokenizer, data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=compute_metrics,
    )
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    seconds = time.perf_counter() - start
    return seconds, model, tokenizer, args.optim.value


def finetune_section(path, data, epochs, rounds, fused_too, deadline=None):
    train, test = data["frames"]
    runs = {}

    def seed_for(name):
        # Round r uses seed SEED + r for every contender: accuracy is compared at equal seeds,
        # and the rounds of the full mode average over seeds.
        runs[name] = runs.get(name, -1) + 1
        return SEED + runs[name]

    def run_llmnb(precision, name, fused=False):
        seed = seed_for(name)
        with fused_adamw() if fused else contextlib.nullcontext():
            start = time.perf_counter()
            ft = finetune(
                "minilm", train, eval=test, quiet=True, save_checkpoints=False, epochs=epochs, lr=LLMNB_LR,
                batch_size=BATCH, precision=precision, seed=seed, device="cpu",
            )
            seconds = time.perf_counter() - start
        acc = common.accuracy(ft.model, ft.tokenizer, *data["test"])
        return {"seconds": seconds, "accuracy": acc, "best_step": ft.state.best_step}

    def run_trainer():
        seed = seed_for("trainer")
        with tempfile.TemporaryDirectory(prefix="llmnb_bench_") as out:
            seconds, model, tokenizer, optim = trainer_run(path, data, epochs, seed, out)
        return {"seconds": seconds, "accuracy": common.accuracy(model, tokenizer, *data["test"]), "optim": optim}

    contenders = {
        "llmnb fp32": lambda: run_llmnb("fp32", "llmnb fp32"),
        "trainer fp32": run_trainer,
        "llmnb bf16": lambda: run_llmnb("bf16", "llmnb bf16"),
    }
    if fused_too:
        contenders["llmnb fp32 fused (prop.)"] = lambda: run_llmnb("fp32", "llmnb fused", fused=True)
    results = interleave(contenders, rounds, "finetune", deadline=deadline)
    acc_delta = [b - f for b, f in zip(values(results, "llmnb bf16", "accuracy"), values(results, "llmnb fp32", "accuracy"))]
    trainer = [a / b for a, b in zip(values(results, "llmnb fp32"), values(results, "trainer fp32"))]
    bf16 = [f / b for f, b in zip(values(results, "llmnb fp32"), values(results, "llmnb bf16"))]
    out = {
        "trainer_ratio": median(trainer),
        "trainer_spread": spread(trainer),
        "trainer_optimizer": results["trainer fp32"][-1]["optim"],
        "bf16_finetune_speedup": median(bf16),
        "bf16_accuracy_delta": median(acc_delta),
        "bf16_accuracy_deltas": acc_delta,
        "accuracy": {name: round(median(values(results, name, "accuracy")), 4) for name in contenders},
        "seconds": {name: round(median(values(results, name)), 2) for name in contenders},
        "epochs": epochs,
        "rounds": len(results["llmnb fp32"]),
    }
    if fused_too:
        out["trainer_ratio_fused"] = paired_ratio(results, "llmnb fp32 fused (prop.)", "trainer fp32")
    return out


# ============================================================================= padding section

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


def padding_section(path, data, n, rounds, max_length=256, deadline=None):
    """llmnb's batches and padded-to-longest batches of the same texts, one step of each in turn."""
    template, tokenizer = load_minilm(path)
    texts, labels = mixed_length_texts(*data["train"], n)
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
            loops[name] = PlainLoop(model, batches, LLMNB_LR, foreach=True).step
        seconds = lockstep(loops, len(grouped))
        return {"seconds": sum(seconds.values()), **{f"{k} tok/s": real / v for k, v in seconds.items()}}

    results = interleave({"lockstep": one_round}, rounds, "padding", deadline=deadline)
    speedup = [r["llmnb batching tok/s"] / r["pad to longest tok/s"] for r in results["lockstep"]]
    slots = {name: sum(b["input_ids"].numel() for b in bs) for name, bs in (("grouped", grouped), ("padded", padded))}
    return {
        "padding_speedup": median(speedup),
        "padding_spread": spread(speedup),
        "tokens_per_s": {name: round(median([r[f"{name} tok/s"] for r in results["lockstep"]]), 1) for name in ("llmnb batching", "pad to longest")},
        "examples": n,
        "real_tokens": real,
        "token_slots": slots,
        "length_range": [min(lengths), longest],
        "rounds": len(results["lockstep"]),
    }


# ============================================================================= load_ext and memory (fresh processes)

LOAD_EXT_SCRIPT = r"""
import json, sys, time
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
start = time.perf_counter()
shell.run_line_magic("load_ext", "llmnb")
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "torch": "torch" in sys.modules, "transformers": "transformers" in sys.modules}))
"""

MEMORY_SCRIPT = r"""
import json, sys
import torch
torch.set_num_threads(int(sys.argv[1]))
import llmnb
max_steps = None if sys.argv[2] == "none" else int(sys.argv[2])
ft = llmnb.finetune("minilm", "reviews", eval="reviews_test", quiet=True, save_checkpoints=False, max_steps=max_steps)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent through fork/vfork + exec,
# so a child of a big benchmark process would report the parent's peak.
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"peak_rss_mb": peak_kb / 1024, "steps": ft.state.step,
                  "precision": str(llmnb.core.engine.choose_precision("auto", torch.device("cpu")))}))
"""


def child(script, *args, timeout=600):
    env = {**os.environ, "PYTHONPATH": str(common.ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout, cwd=common.ROOT)
    if done.returncode:
        raise RuntimeError(f"child process failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def load_ext_section(runs):
    rows = [child(LOAD_EXT_SCRIPT) for _ in range(runs)]
    for row in rows:
        log(f"  load_ext  {row['seconds']:.3f} s  torch imported: {row['torch']}  transformers imported: {row['transformers']}")
    return {
        "load_ext_seconds": median([r["seconds"] for r in rows]),
        "load_ext_imports_torch": any(r["torch"] or r["transformers"] for r in rows),
        "runs": runs,
    }


def memory_section(threads, steps):
    row = child(MEMORY_SCRIPT, threads, "none" if steps is None else steps)
    log(f"  memory  peak RSS {row['peak_rss_mb']:.0f} MB after {row['steps']} steps ({row['precision']})")
    return {"peak_rss_mb": row["peak_rss_mb"], "memory_steps": row["steps"]}


# ============================================================================= report

def met(key, value):
    op, goal = GOALS[key]
    if value is None:
        return None
    return value <= goal if op == "<=" else value >= goal if op == ">=" else abs(value) <= goal


def fmt_goal(key):
    op, goal = GOALS[key]
    return f"|x| <= {goal}" if op == "abs<=" else f"{op} {goal}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and rounds (<= 10 minutes on 2 cores)")
    parser.add_argument("--smoke", action="store_true", help="a few steps of everything: checks that the script runs (numbers meaningless)")
    parser.add_argument("--threads", default="auto", help="torch threads (default auto: 1 on a machine busier than its cores)")
    parser.add_argument("--only", default="engine,finetune,padding,load_ext,memory,sft,cell", help="comma-separated sections")
    args = parser.parse_args()
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    settings = dict(SETTINGS[mode])
    sections = set(args.only.split(","))
    threads, load = set_threads(args.threads)
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    began = time.perf_counter()
    log(f"llmnb benchmarks ({mode}): {cpu_name()}, {os.cpu_count()} cores, "
        f"load average {load:.1f} at start, {threads} torch thread(s)", flush=True)

    path = str(bundled_minilm_path())
    data = load_data()
    warm_up(path)
    llmnb.display.png_bytes([{"step": 1, "train_loss": 1.0}], "eval_accuracy")  # matplotlib imported before timing
    from IPython.display import HTML  # noqa: F401  (imported by the display on its first draw)
    step_s = calibrate(path, data)
    if mode == "quick":
        scale = min(1.0, REFERENCE_STEP_S / step_s)
        settings["engine_steps"] = max(6, round(settings["engine_steps"] * scale))
        if scale < BUSY_SCALE:
            settings.update(ft_rounds=1, pad_rounds=1, memory_steps=4)
        log(f"one training step takes {step_s:.2f} s here (quick mode is sized for {REFERENCE_STEP_S} s): {settings['engine_steps']} "
            f"engine steps x {settings['engine_rounds']} rounds, fine-tunes of {settings['ft_epochs']:g} epoch x {settings['ft_rounds']} "
            f"round(s), {settings['pad_examples']} mixed texts x {settings['pad_rounds']} round(s)", flush=True)

    def deadline(section):
        return began + QUICK_DEADLINES[section] if mode == "quick" else None

    found = {}
    if "engine" in sections:
        found["engine"] = engine_section(path, data, settings["engine_steps"], settings["engine_rounds"], deadline("engine"))
    if "finetune" in sections:
        found["finetune"] = finetune_section(path, data, settings["ft_epochs"], settings["ft_rounds"], settings["ft_fused"], deadline("finetune"))
    if "padding" in sections:
        found["padding"] = padding_section(path, data, settings["pad_examples"], settings["pad_rounds"], deadline=deadline("padding"))
    if "load_ext" in sections:
        found["load_ext"] = load_ext_section(settings["load_ext_runs"])
    if "memory" in sections:
        late = mode == "quick" and time.perf_counter() > deadline("memory")
        found["memory"] = memory_section(threads, 2 if late else settings["memory_steps"])
    if "sft" in sections:
        from sft import sft_section

        found["sft"] = sft_section(settings["sft_rounds"], settings["sft_steps"], log=log)
    if "cell" in sections and settings["cell_rounds"]:
        from cell import cell_section

        found["cell"] = cell_section(settings["cell_rounds"], log=log)
    report(found, mode, threads, load, step_s, began)


def report(found, mode, threads, load, step_s, began):
    e, f, p = found.get("engine", {}), found.get("finetune", {}), found.get("padding", {})
    x, m, c = found.get("load_ext", {}), found.get("memory", {}), found.get("cell", {})
    s = found.get("sft", {})
    auto = llmnb.core.engine.choose_precision("auto", torch.device("cpu"))
    summary = {
        "overhead_vs_plain": e.get("overhead_vs_plain"),
        "trainer_ratio": f.get("trainer_ratio"),
        "cell_ratio_vs_trainer": c.get("cell_ratio_vs_trainer"),
        "padding_speedup": p.get("padding_speedup"),
        "display_cost_fraction": e.get("display_cost_fraction"),
        "load_ext_seconds": x.get("load_ext_seconds"),
        "bf16_speedup": e.get("bf16_speedup"),
        "bf16_accuracy_delta": f.get("bf16_accuracy_delta"),
        "mfu": e.get("mfu"),
        "peak_rss_mb": m.get("peak_rss_mb"),
        "packing_speedup": s.get("packing_speedup"),
        "sft_overhead_vs_plain": s.get("sft_overhead_vs_plain"),
    }
    summary = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in summary.items()}
    rows = [
        ("overhead_vs_plain", "Engine / hand-written loop (lockstep, same batches, fp32)",
         e and f"per round {e['overhead_spread']}; {e['steps']} steps x {e['rounds']} rounds, {e['step_seconds_fp32']:.3f} s/step; "
               f"engine bookkeeping {e['engine_bookkeeping_ms_per_step']:.3f} ms/step = {e['engine_bookkeeping_fraction']:.4f} of a step"),
        ("trainer_ratio", "llmnb.finetune / transformers.Trainer, fp32, wall",
         f and f"per round {f['trainer_spread']}; {f['epochs']:g} epoch(s) x {f['rounds']} round(s); seconds {f['seconds']}"),
        ("cell_ratio_vs_trainer", "default %finetune cell / Trainer recipe, whole process",
         c and f"per round {c['cell_ratios']}; seconds {c['cell_seconds']}; accuracy {c['cell_accuracy']} on {c['cell_data']['test']} sentences"),
        ("padding_speedup", "real tokens/s: llmnb batching / pad to longest",
         p and f"per round {p['padding_spread']}; {p['examples']} texts of {p['length_range'][0]}-{p['length_range'][1]} tokens, "
               f"token slots {p['token_slots']['grouped']} vs {p['token_slots']['padded']} for {p['real_tokens']} real"),
        ("display_cost_fraction", "time inside the live display / engine wall without it",
         e and f"live redraws {e['display_live_fraction']:.4f} ({e['display_draws']:g} draws) + final PNG {e['display_final_seconds']:.2f} s "
               f"once per run; projected on the 120-step default fine-tune: {e['display_cost_fraction_default_run']:.4f}"),
        ("load_ext_seconds", "%load_ext llmnb in a fresh IPython (median)",
         x and f"{x['runs']} processes; torch/transformers imported: {x['load_ext_imports_torch']}"),
        ("bf16_speedup", "Engine step time fp32 / bf16 autocast",
         e and f"per round {e['bf16_spread']}; plain loops {e['bf16_plain_speedup']:.3f} (with fused AdamW {e['bf16_speedup_fused']:.3f}); fine-tune wall "
               f"{f.get('bf16_finetune_speedup', float('nan')):.3f}"),
        ("bf16_accuracy_delta", "test accuracy, bf16 - fp32 fine-tune",
         f and f"fp32 {f['accuracy']['llmnb fp32']:.4f}, bf16 {f['accuracy']['llmnb bf16']:.4f} after {f['epochs']:g} epoch(s); 1 row = 0.0042"),
        ("mfu", "6 x non-emb. params x tokens/s / matmul peak, fp32",
         e and f"{e['achieved_gflops']['fp32']} of {e['peak_gflops']['fp32']} GFLOP/s; bf16 {e['mfu_bf16']:.3f} "
               f"({e['achieved_gflops']['bf16']} of {e['peak_gflops']['bf16']}); {e['tokens_per_step']:.0f} tokens/step"),
        ("peak_rss_mb", "VmHWM of a process running the bundled fine-tune",
         m and f"{m['memory_steps']} steps + evaluation, precision auto"),
        ("packing_speedup", "sft real tokens/s: packed / padded (length-grouped)",
         s and f"per round {s['sft_spread']['packing']}; vs naive padding {s['packing_speedup_vs_naive']:.3f}; "
               f"{s['sft_steps']} steps x {s['sft_rounds']} round(s), bundled instructions, GPT 2x128"),
        ("sft_overhead_vs_plain", "finetune(task='sft') / hand-written loop, same packed batches",
         s and f"per round {s['sft_spread']['overhead']}"),
    ]
    log("")
    log(f"{'metric':<22}{'value':>9}  {'goal':<13}{'met':<4} {'how':<58} detail")
    for key, what, detail in rows:
        value = summary[key]
        shown = "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)
        ok = met(key, value) if key in GOALS else None
        goal = fmt_goal(key) if key in GOALS else ""
        log(f"{key:<22}{shown:>9}  {goal:<13}{'' if ok is None else 'yes' if ok else 'NO':<4} {what:<58} {detail or ''}")
    extras = {}
    if e:
        extras.update({k: e[k] for k in ("engine_bookkeeping_ms_per_step", "engine_bookkeeping_fraction", "display_live_fraction", "display_draws", "display_final_seconds", "display_cost_fraction_default_run",
                                          "bf16_plain_speedup", "bf16_speedup_fused",
                                          "fused_adamw_speedup", "mfu_bf16", "achieved_gflops", "peak_gflops",
                                          "non_embedding_params", "step_seconds_fp32", "tokens_per_step")})
        log(f"\nproposal, fused AdamW on CPU: plain-loop step time foreach / fused = {e['fused_adamw_speedup']:.3f}")
    if f:
        extras.update({"bf16_finetune_speedup": f["bf16_finetune_speedup"], "bf16_accuracy_deltas": f["bf16_accuracy_deltas"],
                       "finetune_seconds": f["seconds"], "finetune_accuracy": f["accuracy"], "trainer_optimizer": f["trainer_optimizer"]})
        if "trainer_ratio_fused" in f:
            extras["trainer_ratio_fused"] = f["trainer_ratio_fused"]
            log(f"proposal, fused AdamW on CPU: llmnb.finetune / Trainer = {f['trainer_ratio_fused']:.3f}")
    if s:
        extras.update({"packing_speedup_vs_naive": s["packing_speedup_vs_naive"], "sft_spread": s["sft_spread"]})
    if c:
        extras.update({"cell_seconds": c["cell_seconds"], "cell_accuracy": c["cell_accuracy"], "cell_ratios": c["cell_ratios"]})
    if p:
        extras.update({"padding_tokens_per_s": p["tokens_per_s"], "padding_token_slots": p["token_slots"], "padding_real_tokens": p["real_tokens"]})
    summary.update({
        "goals_met": {k: met(k, summary[k]) for k in GOALS},
        "precision_auto_cpu": str(auto).replace("torch.", "") if auto else "fp32",
        "cpu_bf16_flags": cpu_flags("avx512_bf16", "amx_bf16", "amx_tile"),
        "mfu_precision": "fp32",
        **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in extras.items()},
        "mode": mode,
        "step_seconds_calibration": round(step_s, 3),
        "torch_threads": threads,
        "load_average_start": round(load, 2),
        "load_average_end": round(os.getloadavg()[0], 2),
        "seconds_total": round(time.perf_counter() - began, 1),
        "machine": f"{cpu_name()}, {os.cpu_count()} cores",
        "date": datetime.date.today().isoformat(),
        "versions": versions(),
    })
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()

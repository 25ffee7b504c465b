"""What the benchmark sections share: the offline set-up, the `Section` each one returns, its
settings for --quick / full / --smoke, the bundled data and model, the one Hugging Face Trainer
baseline, a kernel-like display sink, fresh child processes, and timing contenders side by side.

Every section is a module of this folder (engine.py, padding.py, display.py, trainer.py, bf16.py,
sft.py, cell.py, gpu.py; strategies.py, defaults.py and vs_trainer.py on request) exposing
`run(quick: bool) -> Section`; run.py collects them. The hand-written loop that llmnb's Engine is
measured against, and the matmul peak, are in engine.py. Run a section alone with
`python benchmarks/<section>.py` (this folder is then on sys.path, so `import common` works).

Importing this module is light (the standard library only), so that a fresh child process timing
a whole notebook cell (cell.py) can use the Trainer baseline without importing more than the
Trainer recipe itself does; torch, transformers and llmnb are imported inside the functions.

Timing rule of every benchmark here: contenders run in ONE process, interleaved round-robin
(the order rotates every round, so none is always first after a slow phase), each number that
matters is a ratio of two contenders of the same round, and the reported value is the median of
those per-round ratios. A shared machine's slow phases then hit both sides of a ratio alike.
"""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if "LLMNB_RUNS_DIR" not in os.environ:
    # Contenders that keep llmnb's defaults write a run folder (~90 MB each for MiniLM): a benchmark's
    # runs go to a temporary folder removed at exit, not into the checkout's runs/.
    import atexit
    import shutil
    import tempfile

    os.environ["LLMNB_RUNS_DIR"] = tempfile.mkdtemp(prefix="llmnb_bench_runs_")
    atexit.register(shutil.rmtree, os.environ["LLMNB_RUNS_DIR"], True)

import functools  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the llmnb of this checkout, installed or not

SEED, LR, EPOCHS, BATCH, MAX_LENGTH = 42, 5e-5, 3, 16, 128  # the Trainer recipe's values
LLMNB_LR = 1e-4  # llmnb's default learning rate
MODE: str | None = None  # "smoke" (set by run.py --smoke): a few steps of everything, numbers meaningless
STARTED = time.perf_counter()  # quick mode's deadlines count from here
# --quick is sized for a MiniLM training step (batch of 16 reviews, fp32) of REFERENCE_STEP_S. On a busier
# machine (slower steps) the engine sections take proportionally fewer steps, and past BUSY_SCALE the
# fine-tune and padding sections do one round instead of two.
REFERENCE_STEP_S, BUSY_SCALE = 0.4, 0.6


@dataclass
class Section:
    """What one benchmark section found."""

    summary: dict  # the headline figures, as they go into run.py's last JSON line
    rows: list = field(default_factory=list)  # the detailed table: one dict per contender and round
    timed: str = ""  # what was timed, in words
    notes: dict = field(default_factory=dict)  # per goal figure: (how it is computed, detail) for the goals table


def log(*args, **kwargs):
    print(*args, **kwargs, flush=True)


# ----------------------------------------------------------------------------- sizes and budget

def mode(quick: bool) -> str:
    return MODE or ("quick" if quick else "full")


def pick(settings: dict, quick: bool) -> dict:
    """A section's settings for the current mode (a copy: {"quick": {...}, "full": {...}, "smoke": {...}})."""
    return dict(settings[mode(quick)])


def deadline(seconds: float | None, quick: bool) -> float | None:
    """In quick mode, no new round of a section starts `seconds` after the script began (None: no limit)."""
    return STARTED + seconds if seconds is not None and mode(quick) == "quick" else None


def busy_scale(quick: bool) -> float:
    """1 on a machine as fast as quick mode is sized for; below 1 on a busier one (quick mode only)."""
    return min(1.0, REFERENCE_STEP_S / step_seconds()) if mode(quick) == "quick" else 1.0


def scaled_steps(steps: int, quick: bool, least: int = 6) -> int:
    return max(least, round(steps * busy_scale(quick))) if mode(quick) == "quick" else steps


@functools.cache
def step_seconds(steps: int = 3) -> float:
    """Seconds per fp32 training step of MiniLM on a batch of 16 reviews (median of `steps`),
    measured once per process: how busy the machine is."""
    import torch

    model, tokenizer = load_minilm(minilm_path())
    texts, labels = load_data()["train"]
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


# ----------------------------------------------------------------------------- data and model

@functools.cache
def minilm_path() -> str:
    from llmnb.core.models import bundled_minilm_path

    return str(bundled_minilm_path())  # checks the weights' sha256 once, before any timing


@functools.cache
def load_data():
    """The bundled reviews: frames, label names, and (texts, label ids) for train and test."""
    import llmnb.datasets

    train, test = llmnb.datasets.load("reviews"), llmnb.datasets.load("reviews", "test")
    names = sorted(set(train["label"]))  # label ids in sorted order, as llmnb numbers them
    return {
        "frames": (train, test),
        "names": names,
        "train": (train["text"].astype(str).tolist(), [names.index(y) for y in train["label"]]),
        "test": (test["text"].astype(str).tolist(), [names.index(y) for y in test["label"]]),
    }


def load_minilm(path, seed=SEED):
    import torch
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    transformers.logging.set_verbosity_error()  # the "newly initialized classifier" report, once per load
    transformers.logging.disable_progress_bar()  # the weight-loading bar, once per load
    torch.manual_seed(seed)  # the new classifier head starts the same in every round
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    return model, tokenizer


def tokenize(tokenizer, texts, labels, max_length=MAX_LENGTH):
    enc = tokenizer(texts, truncation=True, max_length=max_length)
    return [{"input_ids": i, "attention_mask": m, "labels": y} for i, m, y in zip(enc["input_ids"], enc["attention_mask"], labels)]


def accuracy(model, tokenizer, texts, labels, batch_size=64):
    """Fraction of `texts` classified as `labels`, fp32 inference, whatever the training precision."""
    import torch

    model.eval()
    correct = 0
    with torch.no_grad():
        for s in range(0, len(texts), batch_size):
            batch = tokenizer(texts[s : s + batch_size], truncation=True, max_length=MAX_LENGTH, padding=True, return_tensors="pt")
            correct += (model(**batch).logits.argmax(-1) == torch.tensor(labels[s : s + batch_size])).sum().item()
    return correct / len(texts)


def non_embedding_parameters(model) -> int:
    """Parameters outside the embedding tables: the ones that cost 6 FLOPs per token in training."""
    return sum(p.numel() for name, p in model.named_parameters() if ".embeddings." not in f".{name}")


@functools.cache
def warm_up():
    """Untimed, once per process: read the weights into the page cache, run each kernel kind once
    (fp32 and bf16 autocast, foreach and fused AdamW) and load llmnb's metrics, so the first timed
    contender pays no first-call costs that the others skip."""
    import torch
    from transformers.models.bert import modeling_bert  # noqa: F401  (a lazy import, done before any timing)

    import llmnb.metrics
    from llmnb.core.task import DEFAULT_TASK, get_task

    model, tokenizer = load_minilm(minilm_path())
    batch = tokenizer(["a warm-up sentence", "another one"], padding=True, return_tensors="pt")
    for dtype in (None, torch.bfloat16):
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            model(**batch, labels=torch.tensor([0, 1])).loss.backward()
    for kind in ({"foreach": True}, {"fused": True}, {}):
        try:
            torch.optim.AdamW(model.parameters(), lr=1e-9, **kind).step()
        except RuntimeError:  # fused AdamW on CPU needs torch >= 2.4
            pass
    llmnb.metrics.compute(get_task(DEFAULT_TASK).metrics, [0, 1], [0, 1])  # evaluate.load, cached by llmnb


# ----------------------------------------------------------------------------- the Trainer baseline

def train_with_trainer(path, train, test, out_dir, *, lr=LR, epochs=EPOCHS, warmup=0.0, weight_decay=0.0, seed=SEED):
    """THE Hugging Face Trainer baseline of every section (trainer.py, cell.py, vs_trainer.py):
    MiniLM from `path`, trained on `train` = (texts, label ids), accuracy on `test` after each epoch.

    Defaults are the Trainer recipe (lr 5e-5, 3 epochs, no warmup, no weight decay: what a tutorial
    writes); trainer.py passes llmnb's values for an equal-settings race. Always: batch 16, eval batch
    32, linear decay, clipping 1.0, dynamic padding (DataCollatorWithPadding), fp32 on the CPU, no
    checkpoints, no logging or progress bars. Loads the model, trains, returns the Trainer (the
    caller times whatever part it needs: trainer.model is the trained model)."""
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        PrinterCallback,
        Trainer,
        TrainingArguments,
    )

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    args = TrainingArguments(
        output_dir=str(out_dir), learning_rate=lr, num_train_epochs=epochs, per_device_train_batch_size=BATCH,
        per_device_eval_batch_size=2 * BATCH,  # as llmnb evaluates
        warmup_steps=warmup,  # a float below 1 is a fraction of the steps, as llmnb's warmup
        weight_decay=weight_decay, max_grad_norm=1.0, lr_scheduler_type="linear", eval_strategy="epoch",
        save_strategy="no", logging_strategy="no", report_to=[], disable_tqdm=True, use_cpu=True, bf16=False,
        dataloader_pin_memory=False, seed=seed,
    )

    def compute_metrics(prediction):  # llmnb computes accuracy at each evaluation too
        return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}

    trainer = Trainer(model=model, args=args, train_dataset=tokenize(tokenizer, *train), eval_dataset=tokenize(tokenizer, *test),
                      processing_class=tokenizer, data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=compute_metrics)
    trainer.remove_callback(PrinterCallback)  # it prints every evaluation's dict otherwise
    trainer.train()
    return trainer


# ----------------------------------------------------------------------------- side by side

def lockstep(loops: dict, steps: int) -> dict:
    """Alternate single steps of several loops (name -> step(i) function), the order rotating each
    step; returns name -> seconds spent in its steps. Finer than interleaving whole runs: a slow
    second of a shared machine lands on both sides of a ratio."""
    names = list(loops)
    seconds = dict.fromkeys(names, 0.0)
    for i in range(steps):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            loops[name](i)
            seconds[name] += time.perf_counter() - start
    return seconds


def interleave(contenders: dict, repeats: int, label: str = "", deadline: float | None = None, quiet: bool = False) -> dict:
    """Run every contender once per round, rounds `repeats` times; the order rotates each round.

    A contender is a function returning a dict with at least "seconds". Returns name -> list of
    those dicts, one per round. Past `deadline` (a time.perf_counter() value) no new round starts,
    but the first one always runs.
    """
    names = list(contenders)
    results = {name: [] for name in names}
    for r in range(repeats):
        if r and deadline is not None and time.perf_counter() > deadline:
            log(f"  {label}: stopping after {r} round(s) of {repeats}, to stay within the time budget")
            break
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            out = contenders[name]()
            results[name].append(out)
            if not quiet:
                extra = "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in out.items() if k != "seconds")
                log(f"  {label} round {r + 1}/{repeats}  {name:<22} {out['seconds']:8.2f} s  {extra}")
    return results


def round_rows(results: dict) -> list[dict]:
    """interleave's results as table rows: one per round and contender."""
    return [{"round": r + 1, "contender": name, **row} for name, rows in results.items() for r, row in enumerate(rows)]


def values(results, name, key="seconds"):
    return [row[key] for row in results[name]]


def median(xs):
    return statistics.median(xs)


def paired_ratio(results, a, b, key="seconds", b_key=None) -> float:
    """Median over rounds of a[round][key] / b[round][b_key or key]."""
    return statistics.median(x / y for x, y in zip(values(results, a, key), values(results, b, b_key or key)))


def spread(xs) -> str:
    """'min-max' of a list of ratios, to show how noisy a median is."""
    return f"{min(xs):.3f}-{max(xs):.3f}" if len(xs) > 1 else f"{xs[0]:.3f}"


# ----------------------------------------------------------------------------- display and processes

class KernelSink:
    """A display function that does what a Jupyter kernel does with each update of the live view,
    without a front end: builds the output's mime bundle (the PNG base64-encoded) and serialises it
    as the JSON message that would go to the browser. `display(obj, display_id=...)` and
    `handle.update(obj)` both land here; `updates` counts them, `last` keeps the last HTML."""

    def __init__(self):
        self.updates, self.last, self.bytes = 0, None, 0

    def __call__(self, obj, display_id=None, **kwargs):
        self._send(obj)
        return self

    def update(self, obj):
        self._send(obj)

    def _send(self, obj):
        import base64

        data = getattr(obj, "data", obj)
        if isinstance(data, bytes):
            bundle = {"image/png": base64.b64encode(data).decode("ascii"), "text/plain": "<IPython.core.display.Image object>"}
        else:
            bundle = {"text/html": data, "text/plain": "<IPython.core.display.HTML object>"}
            self.last = data
        self.bytes += len(json.dumps({"data": bundle, "metadata": {}, "transient": {"display_id": "llmnb"}}))
        self.updates += 1


def child(script: str, *args, timeout: int = 900, env: dict | None = None) -> dict:
    """Run `script` in a fresh Python (this checkout's llmnb and this folder importable); its last
    line of output is JSON, returned as a dict."""
    paths = os.pathsep.join([str(ROOT), str(ROOT / "benchmarks"), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": paths, **(env or {})})
    if done.returncode:
        raise RuntimeError(f"child process failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- printing and the machine

def fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def print_section(name: str, section: Section) -> None:
    """A section's rows as a table, then its summary: what run.py prints, and `python <section>.py`."""
    log(f"\n== {name}: {section.timed}")
    tables: list[list[dict]] = []  # consecutive rows with the same columns make one table
    for row in section.rows:
        if tables and list(tables[-1][0]) == list(row):
            tables[-1].append(row)
        else:
            tables.append([row])
    for rows in tables:
        columns = list(rows[0])
        cells = [[fmt(row[c]) for c in columns] for row in rows]
        widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
        log("  " + "  ".join(c.ljust(w) for c, w in zip(columns, widths)))
        for r in cells:
            log("  " + "  ".join(v.ljust(w) for v, w in zip(r, widths)))
    for key, value in section.summary.items():
        log(f"  {key:<36} {fmt(value)}")


def main_for(run) -> None:
    """`python benchmarks/<section>.py [--quick|--smoke]`: that section alone, then its summary as JSON."""
    global MODE
    quick, MODE = "--quick" in sys.argv, "smoke" if "--smoke" in sys.argv else None
    name = Path(sys.modules[run.__module__].__file__).stem
    set_threads("auto")
    section = run(quick)
    print_section(name, section)
    print(json.dumps(section.summary))


def set_threads(threads):
    """`threads`: an int, or "auto": torch's default, unless the machine is already busier than
    it has cores (then 1: two OpenMP threads fighting other processes for two cores spin and
    run several times slower than one thread, which makes timings meaningless)."""
    import torch

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if threads == "auto":
        cores = os.cpu_count() or 1
        threads = 1 if load >= cores - 0.5 else torch.get_num_threads()
    torch.set_num_threads(int(threads))
    return int(threads), load


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags(*wanted) -> list:
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return []
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags |= set(line.split(":", 1)[1].split())
    return [f for f in wanted if f in flags]


def versions() -> dict:
    import torch
    import transformers

    import llmnb

    return {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "llmnb": llmnb.__version__}

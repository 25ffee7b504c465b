"""What the benchmarks share: offline set-up, the bundled data and model, a plain training loop,
and timing contenders side by side.

Used by `benchmarks/run.py` and `benchmarks/vs_trainer.py` (run them as scripts: `python
benchmarks/run.py`; this folder is then on sys.path, so `import common` works).

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

import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the llmnb of this checkout, installed or not

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoModelForSequenceClassification, AutoTokenizer  # noqa: E402
from transformers.models.bert import modeling_bert  # noqa: E402,F401  (a lazy import, done before any timing)

import llmnb  # noqa: E402
import llmnb.core.engine  # noqa: E402
import llmnb.datasets  # noqa: E402
import llmnb.metrics  # noqa: E402
from llmnb.finetuning.tasks import get_task  # noqa: E402

SEED, LR, EPOCHS, BATCH, MAX_LENGTH = 42, 5e-5, 3, 16, 128


# ----------------------------------------------------------------------------- data and model

def load_data():
    """The bundled reviews: frames, label names, and (texts, label ids) for train and test."""
    train, test = llmnb.datasets.load("reviews"), llmnb.datasets.load("reviews", "test")
    names = sorted(set(train["label"]))  # label ids in sorted order, as llmnb numbers them
    return {
        "frames": (train, test),
        "names": names,
        "train": (train["text"].astype(str).tolist(), [names.index(y) for y in train["label"]]),
        "test": (test["text"].astype(str).tolist(), [names.index(y) for y in test["label"]]),
    }


def load_minilm(path, seed=SEED):
    torch.manual_seed(seed)  # the new classifier head starts the same in every round
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    return model, tokenizer


def tokenize(tokenizer, texts, labels, max_length=MAX_LENGTH):
    enc = tokenizer(texts, truncation=True, max_length=max_length)
    return [{"input_ids": i, "attention_mask": m, "labels": y} for i, m, y in zip(enc["input_ids"], enc["attention_mask"], labels)]


@torch.no_grad()
def accuracy(model, tokenizer, texts, labels, batch_size=64):
    """Fraction of `texts` classified as `labels`, fp32 inference, whatever the training precision."""
    model.eval()
    correct = 0
    for s in range(0, len(texts), batch_size):
        batch = tokenizer(texts[s : s + batch_size], truncation=True, max_length=MAX_LENGTH, padding=True, return_tensors="pt")
        correct += (model(**batch).logits.argmax(-1) == torch.tensor(labels[s : s + batch_size])).sum().item()
    return correct / len(texts)


def non_embedding_parameters(model) -> int:
    """Parameters outside the embedding tables: the ones that cost 6 FLOPs per token in training."""
    return sum(p.numel() for name, p in model.named_parameters() if ".embeddings." not in f".{name}")


def warm_up(path):
    """Untimed: read the weights into the page cache and run each kernel kind once (fp32 and
    bf16 autocast, foreach and fused AdamW) and load llmnb's metrics, so the first timed
    contender pays no first-call costs that the others skip."""
    model, tokenizer = load_minilm(path)
    batch = tokenizer(["a warm-up sentence", "another one"], padding=True, return_tensors="pt")
    for dtype in (None, torch.bfloat16):
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            model(**batch, labels=torch.tensor([0, 1])).loss.backward()
    for kind in ({"foreach": True}, {"fused": True}, {}):
        try:
            torch.optim.AdamW(model.parameters(), lr=1e-9, **kind).step()
        except RuntimeError:  # fused AdamW on CPU needs torch >= 2.4
            pass
    llmnb.metrics.compute(get_task("classification").metrics, [0, 1], [0, 1])  # evaluate.load, cached by llmnb


# ----------------------------------------------------------------------------- a plain loop

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
    no logging at all. `step(i)` does optimizer step i, so two loops can run in lockstep."""

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


# ----------------------------------------------------------------------------- peak FLOP/s

def matmul_flops(dtype=torch.float32, n=2048, seconds=0.6, device="cpu") -> float:
    """FLOP/s of square n x n matrix products: the practical peak of this machine for `dtype`."""
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


# ----------------------------------------------------------------------------- side by side

def interleave(contenders: dict, repeats: int, label: str = "", log=print, deadline: float | None = None) -> dict:
    """Run every contender once per round, rounds `repeats` times; the order rotates each round.

    A contender is a function returning a dict with at least "seconds". Returns name -> list of
    those dicts, one per round. Past `deadline` (a time.perf_counter() value) no new round starts,
    but the first one always runs.
    """
    names = list(contenders)
    results = {name: [] for name in names}
    for r in range(repeats):
        if r and deadline is not None and time.perf_counter() > deadline:
            log(f"  {label}: stopping after {r} round(s) of {repeats}, to stay within the time budget", flush=True)
            break
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            out = contenders[name]()
            results[name].append(out)
            extra = "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in out.items() if k != "seconds")
            log(f"  {label} round {r + 1}/{repeats}  {name:<18} {out['seconds']:8.2f} s  {extra}", flush=True)
    return results


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


def set_threads(threads):
    """`threads`: an int, or "auto": torch's default, unless the machine is already busier than
    it has cores (then 1: two OpenMP threads fighting other processes for two cores spin and
    run several times slower than one thread, which makes timings meaningless)."""
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
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "llmnb": llmnb.__version__,
    }

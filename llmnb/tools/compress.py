"""Smaller and faster models after training: int8 quantization, pruning, and ensembles.

Used in tutorials/09_faq.ipynb ("can I make it smaller?") and 04_math.ipynb (what int8 and
sparsity do to the numbers):

    report = llmnb.quantize(ft, eval_data=test_df)   # a table: size, speed, accuracy, before/after
    report.result.predict(["Loved it"])              # the int8 copy, used like any result
    report = llmnb.prune(ft, amount=0.5, eval_data=test_df)
    both = llmnb.ensemble([ft_a, ft_b])              # averages the class probabilities
    both.evaluate(test_df)                           # {'eval_accuracy': ..., 'eval_f1': ...}

Every function works on a copy: the model you pass in is never changed. Speeds are measured
side by side (before and after take turns, best of a few rounds) on the same texts, so the
ratio is fair even on a busy machine; absolute numbers depend on the machine.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import html
import io
import time
import warnings
import zlib
from dataclasses import dataclass, field

from llmnb.errors import CompressError

SAMPLE_TEXTS = [  # timed when no texts or eval data are given
    "The staff were friendly and the room was spotless.", "It stopped working after two days and support never answered.",
    "A decent film, a little long in the middle.", "Best purchase I have made this year.",
    "The food arrived cold and the waiter was rude.", "Not bad at all for the price.",
    "I would not recommend this phone to anyone.", "Lovely view, comfortable bed, quiet street.",
]


@dataclass
class CompressionReport:
    """What compression did: the new model, and size, speed and quality before and after."""

    method: str
    model: object  # the compressed copy
    result: object = None  # a FineTuneResult holding the compressed copy (when a result was given)
    size_mb: tuple = (0.0, 0.0)  # serialized state_dict, before and after
    zipped_mb: tuple = (0.0, 0.0)  # the same bytes after zlib: what zeros from pruning save
    speed: tuple = (0.0, 0.0)  # examples per second, measured side by side
    metrics: tuple = ({}, {})  # evaluation metrics before and after (empty without eval_data)
    sparsity: float | None = None  # share of Linear weights that are exactly zero (pruning)
    device: str = "cpu"
    notes: list = field(default_factory=list)

    accuracy_before = property(lambda self: self.metrics[0].get("eval_accuracy"))
    accuracy_after = property(lambda self: self.metrics[1].get("eval_accuracy"))

    def rows(self):
        """(what, before, after, after/before) for every measured quantity."""
        out = [("size (MB)", *self.size_mb), ("zipped size (MB)", *self.zipped_mb), (f"speed (examples/s, {self.device})", *self.speed)]
        out += [(k[5:] if k.startswith("eval_") else k, self.metrics[0][k], self.metrics[1].get(k)) for k in self.metrics[0]]
        if self.sparsity is not None:
            out.append(("zero weights in Linear layers", 0.0, self.sparsity))
        return [(name, a, b, (b / a if a and b is not None else None)) for name, a, b in out]

    def __repr__(self):
        parts = [f"{name}: {a:.4g} -> {b:.4g}" for name, a, b, _ in self.rows() if b is not None]
        return f"CompressionReport({self.method}; " + "; ".join(parts) + ")"

    def _repr_html_(self):
        def cell(v, fmt="{:.4g}"):
            return "<td style='text-align:right'>" + ("" if v is None else html.escape(fmt.format(v))) + "</td>"

        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(name)}</th>{cell(a)}{cell(b)}{cell(r, '{:.2f}x')}</tr>" for name, a, b, r in self.rows()
        )
        notes = "".join(f"<br><small>{html.escape(n)}</small>" for n in self.notes)
        return (
            f"<table><caption style='text-align:left'><b>{html.escape(self.method)}</b>{notes}</caption>"
            "<tr><th></th><th>before</th><th>after</th><th>after / before</th></tr>" + body + "</table>"
        )


def quantize(model_or_result, eval_data=None, texts=None, rounds: int = 3) -> CompressionReport:
    """int8 dynamic quantization of every `nn.Linear` (weights stored as int8, activations
    quantized on the fly); runs on the CPU. Returns a `CompressionReport` with the int8 copy.

    eval_data: labelled data (anything `finetune` accepts) to measure accuracy before/after;
    needs a `FineTuneResult`. texts: texts to time (default: eval_data's, or built-in sentences).

    Taught in chapter 9 (tutorials/09_faq.ipynb).
    """
    import torch

    model, tokenizer, result = _unpack(model_or_result, eval_data)
    notes = []
    model = _merged(model, notes)
    # The "before" we time: the model itself when it already is a float32 CPU model (a copy would
    # cost its full size in a notebook that holds many), else a float32 CPU copy.
    on_cpu = _device(model).type == "cpu" and all(p.dtype == torch.float32 for p in model.parameters())
    original = model if on_cpu else copy.deepcopy(model).to("cpu").float()
    quantize_dynamic = getattr(getattr(torch, "ao", None), "quantization", torch.quantization).quantize_dynamic
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch announces a move of this API to torchao
        small = quantize_dynamic(copy.deepcopy(original).eval(), {torch.nn.Linear}, dtype=torch.qint8)
    notes.insert(0, "int8 weights for Linear layers; embeddings and LayerNorm stay float32.")
    if _device(model).type != "cpu":
        notes.append("Quantized models run on the CPU: both speeds were measured there.")
    return _report("int8 dynamic quantization", original, small, tokenizer, result, eval_data, texts, rounds, notes)


def prune(model_or_result, amount: float = 0.3, eval_data=None, texts=None, rounds: int = 3) -> CompressionReport:
    """Global magnitude pruning: the `amount` share of all `nn.Linear` weights with the
    smallest |w| (ranked across layers) set to zero, made permanent, on a copy.

    Dense files and dense matrix products do not get smaller or faster from zeros: the report
    shows the zipped size (zeros compress) and the speed, so you can see that for yourself.

    Taught in chapter 9 (tutorials/09_faq.ipynb).
    """
    import torch
    from torch.nn.utils import prune as torch_prune

    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0 <= amount < 1:
        raise CompressError(f"amount={amount!r} must be a share of the weights to remove, from 0 up to (not including) 1, e.g. amount=0.3.")
    model, tokenizer, result = _unpack(model_or_result, eval_data)
    notes = []
    model = _merged(model, notes)
    original = model  # timed as "before" in eval mode, its training flags restored afterwards
    small = copy.deepcopy(model).eval()
    linears = [(m, "weight") for m in small.modules() if isinstance(m, torch.nn.Linear)]
    if not linears:
        raise CompressError(f"{type(model).__name__} has no nn.Linear layers to prune.")
    torch_prune.global_unstructured(linears, pruning_method=torch_prune.L1Unstructured, amount=float(amount))
    for module, name in linears:
        torch_prune.remove(module, name)  # weight = weight_orig * mask, for good; no hooks left
    zeros = sum(int((m.weight == 0).sum()) for m, _ in linears)
    total = sum(m.weight.numel() for m, _ in linears)
    report = _report(f"magnitude pruning ({amount:.0%} of Linear weights)", original, small, tokenizer, result, eval_data, texts, rounds, notes)
    report.sparsity = zeros / total
    return report


def ensemble(results) -> "Ensemble":
    """Average the class probabilities of several `FineTuneResult`s trained on the same labels.

    Taught in chapter 9 (tutorials/09_faq.ipynb).
    """
    return Ensemble(results)


class Ensemble:
    """Several classifiers voting with their probabilities: `.predict`, `.evaluate`."""

    def __init__(self, results):
        from llmnb.finetuning.result import FineTuneResult

        self.results = list(results) if not isinstance(results, FineTuneResult) else [results]
        if not self.results:
            raise CompressError("ensemble() needs a list of FineTuneResults; it got none.")
        for i, r in enumerate(self.results):
            if not isinstance(r, FineTuneResult):
                raise CompressError(f"ensemble() takes FineTuneResults (what finetune returns); item {i} is a {type(r).__name__}.")
            if r.task.float_targets or r.labels is None:
                raise CompressError(f"ensemble() averages class probabilities, so every member must be a classifier; item {i} is a {r.task.name} model.")
            if r.labels.names != self.results[0].labels.names:
                raise CompressError(
                    f"Members must have the same labels to be averaged: item 0 has {self.results[0].labels.names}, item {i} has {r.labels.names}."
                )
        self.labels = self.results[0].labels

    def probabilities(self, texts):
        """A tensor [examples, classes]: the members' softmax outputs, averaged."""
        import torch

        rows = [[s[name] for name in self.labels.names] for r in self.results for s in r.predict(texts, return_scores=True)[1]]
        return torch.tensor(rows).view(len(self.results), len(texts), -1).mean(0)

    def predict(self, texts, return_scores: bool = False):
        single = isinstance(texts, str)
        batch = [texts] if single else [str(t) for t in texts]
        if not batch:
            return []
        probs = self.probabilities(batch)
        values = self.labels.decode(probs.argmax(-1).tolist())
        scores = [dict(zip(self.labels.names, p)) for p in probs.tolist()]
        if return_scores:
            return (values[0], scores[0]) if single else (values, scores)
        return values[0] if single else values

    def evaluate(self, data, text: str | None = None, label: str | None = None) -> dict[str, float]:
        """Accuracy and F1 of the averaged prediction on labelled data."""
        import llmnb.metrics as metrics
        from llmnb.finetuning.data import drop_missing, pick_columns, to_frame

        first = self.results[0]
        frame = to_frame(data, "eval data")
        text_col, label_col = pick_columns(
            frame, text or (first.text_column if first.text_column in frame.columns else None),
            label or (first.label_column if first.label_column in frame.columns else None),
        )
        frame = drop_missing(frame, [text_col, label_col], "eval data")
        targets = self.labels.encode(frame[label_col].tolist())
        predicted = self.probabilities(frame[text_col].astype(str).tolist()).argmax(-1).tolist()
        return {f"eval_{k}": v for k, v in metrics.compute(("accuracy", "f1"), predicted, targets).items()}

    def __repr__(self):
        return f"Ensemble({len(self.results)} models: {', '.join(r.model_name for r in self.results)}; labels {self.labels.names})"


# ----------------------------------------------------------------------------- helpers

def _unpack(obj, eval_data):
    """(model, tokenizer or None, FineTuneResult or None) from what the user passed."""
    import torch

    from llmnb.core.models import LoadedModel
    from llmnb.finetuning.result import FineTuneResult

    if isinstance(obj, FineTuneResult):
        return obj.model, obj.tokenizer, obj
    if eval_data is not None:
        raise CompressError("eval_data needs a FineTuneResult (it knows the labels and columns); pass the result of llmnb.finetune.")
    if isinstance(obj, LoadedModel):
        return obj.model, obj.tokenizer, None
    if isinstance(obj, torch.nn.Module):
        return obj, None, None
    raise CompressError(f"Expected a FineTuneResult, a LoadedModel or a torch model, not a {type(obj).__name__}.")


def _report(method, original, small, tokenizer, result, eval_data, texts, rounds, notes) -> CompressionReport:
    new_result = dataclasses.replace(result, model=small) if result is not None else None
    if texts is None and eval_data is not None:
        from llmnb.finetuning.data import pick_columns, to_frame

        frame = to_frame(eval_data, "eval data")
        column = result.text_column if result.text_column in frame.columns else pick_columns(frame, need_label=False)[0]
        texts = frame[column].astype(str).tolist()[:256]
    batches = _batches(original, tokenizer, texts or SAMPLE_TEXTS * 8, result.config.max_length if result else 128)
    with _evaluating(original):
        speed = _side_by_side([original, small], batches, rounds)
    before = result.evaluate(eval_data) if eval_data is not None else {}
    after = new_result.evaluate(eval_data) if eval_data is not None else {}
    size_mb, zipped_mb = [], []
    for m in (original, small):  # one serialized copy at a time: each is the model's full size
        data = _serialized(m)
        size_mb.append(len(data) / 2**20)
        zipped_mb.append(len(zlib.compress(data, 1)) / 2**20)
        del data
    report = CompressionReport(
        method=method, model=small, result=new_result, size_mb=tuple(size_mb), zipped_mb=tuple(zipped_mb),
        speed=tuple(speed), metrics=(before, after), device=str(_device(original)), notes=notes,
    )
    del original
    from llmnb.core.memory import release_memory

    release_memory()
    return report


def _merged(model, notes):
    """A LoRA model (peft) as the plain model it deploys as: adapters folded into the weights, on
    a copy. Quantizing or pruning the adapters' tiny matrices separately would make no sense (and
    peft cannot run int8 adapter layers)."""
    from llmnb.finetuning.strategies import is_lora

    if not is_lora(model):
        return model
    notes.append("LoRA adapters were merged into the weights first: sizes and speeds are those of the merged model.")
    return copy.deepcopy(model).merge_and_unload()


@contextlib.contextmanager
def _evaluating(model):
    """eval mode (no dropout) for timing; every module's own training flag comes back after."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in flags:
            m.training = training


def _device(model):
    import torch

    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def _serialized(model) -> bytes:
    """The bytes `torch.save(model.state_dict())` writes (what we call the model's size)."""
    import pickle
    import types

    import torch

    class Pickler(pickle.Pickler):
        # Quantized tensors carry a torch.qscheme, which pickle looks up by scanning sys.modules;
        # transformers leaves placeholder modules there that raise ImportError when scanned.
        # The size is all we need, so the qscheme is written as its name.
        def reducer_override(self, obj):
            return (str, (str(obj),)) if isinstance(obj, torch.qscheme) else NotImplemented

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer, pickle_module=types.SimpleNamespace(Pickler=Pickler, __name__="pickle"))
    return buffer.getvalue()


def _batches(model, tokenizer, texts, max_length, batch_size=32):
    import torch

    if tokenizer is None:  # a bare model: random token ids of a typical sentence length
        vocab = getattr(model.config, "vocab_size", 1000)
        g = torch.Generator().manual_seed(0)
        return [{"input_ids": torch.randint(0, vocab, (batch_size, 32), generator=g)} for _ in range(max(1, len(texts) // batch_size))]
    return [
        dict(tokenizer(texts[i : i + batch_size], padding=True, truncation=True, max_length=max_length, return_tensors="pt"))
        for i in range(0, len(texts), batch_size)
    ]


def _side_by_side(models, batches, rounds: int) -> list[float]:
    """Examples per second for each model: the models take turns, the best round counts."""
    import torch

    examples = sum(len(b["input_ids"]) for b in batches)
    best = [float("inf")] * len(models)
    with torch.no_grad():
        for model in models:  # warm-up: first calls allocate and pack weights
            model(**{k: v.to(_device(model)) for k, v in batches[0].items()})
        for _ in range(max(1, rounds)):
            for i, model in enumerate(models):
                moved = [{k: v.to(_device(model)) for k, v in b.items()} for b in batches]
                start = time.perf_counter()
                for b in moved:
                    model(**b)
                if _device(model).type == "cuda":
                    torch.cuda.synchronize()
                best[i] = min(best[i], time.perf_counter() - start)
    return [examples / t for t in best]

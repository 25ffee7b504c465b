"""`llmnb.lr_find` and `%lr_find`: a learning-rate range test before training.

    finder = llmnb.lr_find("minilm", "reviews")      # about 100 short steps
    finder.suggestion                                # e.g. 3e-4
    finder.plot()                                    # smoothed loss against lr, the suggestion marked
    %finetune minilm reviews --lr find               # runs it first and trains with the suggestion

The test (Leslie Smith, 2015; fastai's `lr_find`) trains for at most `num_steps` steps while the
learning rate grows exponentially from `start_lr` to `end_lr`, and records the loss at each
step. It stops early once the smoothed loss passes `diverge` times its lowest value: past that
point the model is being destroyed, and the test has shown what it needed. The loss is smoothed
with a debiased running mean, because single-batch losses are noisy.

The suggestion is the rule "the lr at the smoothed loss's minimum, divided by 10": at the
minimum the loss has just stopped falling, so a tenth of it is still fast and well short of
divergence. The steepest descent is reported too, as a second opinion.

The sweep trains a copy: the model passed in (a name, a `LoadedModel` or a result) and the data
are left exactly as they were, and nothing is written to disk. The sweep itself runs through the
same `FineTuneJob` and `Engine` as `finetune`, with the learning rate schedule swapped out.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

from llmnb.core.events import STOPPED_EARLY, Callback
from llmnb.finetuning.run import FineTuneJob

SMOOTHING = 0.9  # weight of the running mean; 100-step sweeps need a short memory (fastai's 0.98 lags)
RULE = "minimum of the smoothed loss ÷ 10"


@dataclass
class LRFindResult:
    """The sweep: `lrs`, `losses`, `smoothed`, the `suggestion` (lr) and the `rule` that chose it.

    Taught in chapter 4 (tutorials/04_math.ipynb).
    """

    lrs: list = field(default_factory=list)
    losses: list = field(default_factory=list)
    smoothed: list = field(default_factory=list)
    suggestion: float | None = None
    steepest: float | None = None
    rule: str = RULE
    stopped: str = ""  # why the sweep ended before num_steps, if it did

    def plot(self, path=None):
        """The smoothed loss against the learning rate (log scale), the suggestion marked."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=(6, 3.4), layout="constrained")
        FigureCanvasAgg(figure)
        ax = figure.subplots()
        ax.plot(self.lrs, self.losses, color="#9bbbd9", linewidth=0.8, label="loss per step")
        ax.plot(self.lrs, self.smoothed, color="#1f77b4", linewidth=1.6, label="smoothed loss")
        if self.suggestion is not None:
            ax.axvline(self.suggestion, color="#d62728", linestyle="--", label=f"suggested lr {self.suggestion:.1e} ({self.rule})")
        if self.steepest is not None:
            ax.axvline(self.steepest, color="#2ca02c", linestyle=":", label=f"steepest descent {self.steepest:.1e}")
        ax.set_xscale("log")
        finite = [v for v in self.smoothed if math.isfinite(v)]
        if finite:  # clip the exploding tail, so the valley stays readable
            low = min(finite)
            ax.set_ylim(low - 0.1 * abs(low), max(finite[0], low) * 1.5 + 1e-9)
        ax.set(xlabel="learning rate", ylabel="training loss", title="learning-rate range test")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        if path is not None:
            figure.savefig(path, dpi=150)
        return figure

    def _repr_html_(self):
        import base64
        import io

        buffer = io.BytesIO()
        self.plot().savefig(buffer, format="png", dpi=100)
        image = base64.b64encode(buffer.getvalue()).decode("ascii")
        return f'<img src="data:image/png;base64,{image}" alt="lr range test"/><div>{self}</div>'

    def __str__(self):
        if self.suggestion is None:
            return "lr_find: no suggestion (the loss never fell); try a smaller start_lr or more steps."
        return (f"lr_find: suggested lr {self.suggestion:.2g} ({self.rule}); steepest descent at {self.steepest:.2g}; "
                f"{len(self.lrs)} steps{', ' + self.stopped if self.stopped else ''}")

    __repr__ = __str__


def lr_find(model="minilm", data=None, start_lr: float = 1e-7, end_lr: float = 1.0, num_steps: int = 100,
            diverge: float = 4.0, config=None, **options) -> LRFindResult:
    """Sweep the learning rate exponentially from `start_lr` to `end_lr` over at most `num_steps`
    steps (stopping once the smoothed loss passes `diverge` x its minimum) and suggest one.
    `model`, `data` and `options` are those of `llmnb.finetune` (the same strategy, batch size...).
    The model and data passed in are not changed; nothing is written to disk.

    Taught in chapter 4 (tutorials/04_math.ipynb).
    """
    from llmnb.core.config import check_number
    from llmnb.errors import ConfigError, TrainingError
    from llmnb.finetuning.config import FineTuneConfig

    check_number("num_steps", num_steps, minimum=5, maximum=300, integer=True)  # a few hundred at most: it is a probe
    check_number("start_lr", start_lr, minimum=0, exclusive=True)
    check_number("diverge", diverge, minimum=1, exclusive=True)
    if not end_lr > start_lr:
        raise ConfigError(f"end_lr={end_lr!r} must be larger than start_lr={start_lr!r}: the sweep goes up.")
    options.pop("lr", None)
    sweep = dict(lr=end_lr, max_steps=num_steps, warmup=0.0, schedule="constant", log_every=1, early_stopping=None,
                 save_checkpoints=False, out=None, report_to="none", plot=False, eval_fraction=0.0)
    with warnings.catch_warnings():  # "lr=1.0 is very high": it is meant to be, at the sweep's end
        warnings.simplefilter("ignore", UserWarning)
        config = (config or FineTuneConfig()).replace(**{**options, **sweep})
    job = LRFindJob(_copy_of(model), data, None, config, start_lr, end_lr, num_steps, diverge)
    try:
        result = job.run()
    except TrainingError as error:  # the loss became NaN/inf: the sweep diverged, which is an answer too
        result = error.result
        job.stop.reason = job.stop.reason or "stopped when the loss became infinite"
    history = [r for r in result.state.history if "train_loss" in r]
    # A row's "lr" is the rate after its step; the step itself ran at the rate before it.
    ratio, last = end_lr / start_lr, max(1, num_steps - 1)
    used = [start_lr * ratio ** (min(r["step"] - 1, last) / last) for r in history]
    del result, job.loaded  # the trained copy goes now: only the curve is kept
    from llmnb.core.memory import release_memory

    release_memory()
    finder = suggest(used, [r["train_loss"] for r in history])
    finder.stopped = job.stop.reason
    if not config.quiet:
        print(f"llmnb: {finder}")
    return finder


def suggest(lrs, losses) -> LRFindResult:
    """Smooth the losses and apply the rule; the steepest descent as a second opinion."""
    smoothed, mean = [], 0.0
    for i, loss in enumerate(losses, start=1):
        mean = SMOOTHING * mean + (1 - SMOOTHING) * loss
        smoothed.append(mean / (1 - SMOOTHING**i))  # debiased: the first values are not pulled to 0
    finder = LRFindResult(lrs=list(lrs), losses=list(losses), smoothed=smoothed)
    finite = [(v, i) for i, v in enumerate(smoothed) if math.isfinite(v)]
    if len(finite) < 3:
        return finder
    low, at = min(finite)
    if at == 0 or low >= smoothed[0]:
        return finder  # the loss never fell below its start: no rule applies
    finder.suggestion = lrs[at] / 10
    slopes = [(smoothed[i + 1] - smoothed[i - 1]) / (math.log(lrs[i + 1]) - math.log(lrs[i - 1]))
              for i in range(1, at)]
    if slopes:
        finder.steepest = lrs[1 + min(range(len(slopes)), key=slopes.__getitem__)]
    return finder


def _copy_of(model):
    """What the sweep may train: a copy of a model in memory (a name loads afresh anyway)."""
    import copy

    from llmnb.core.models import LoadedModel
    from llmnb.core.result import TrainResult

    if isinstance(model, LoadedModel):
        return LoadedModel(copy.deepcopy(model.model), copy.deepcopy(model.tokenizer), model.name, model.task)
    if isinstance(model, TrainResult) and getattr(model, "task", None) is not None and not model.task.continues_results:
        return LoadedModel(copy.deepcopy(model.model), copy.deepcopy(model.tokenizer), model.model_name, model.task.name)
    return model  # a name or folder loads a fresh model; a result an sft/dpo job continues is copied by the job itself


class DivergenceStop(Callback):
    """Ends the sweep once the smoothed loss passes `diverge` x its lowest value."""

    def __init__(self, diverge: float):
        self.diverge, self.mean, self.best, self.count, self.reason = diverge, 0.0, math.inf, 0, ""

    def on_log(self, state, row):
        self.count += 1
        self.mean = SMOOTHING * self.mean + (1 - SMOOTHING) * row["train_loss"]
        smoothed = self.mean / (1 - SMOOTHING**self.count)
        self.best = min(self.best, smoothed)
        if self.count > 5 and smoothed > self.diverge * self.best:
            state.status = STOPPED_EARLY
            self.reason = f"stopped at step {state.step}: the smoothed loss passed {self.diverge:g}x its minimum"
            state.message = self.reason


class LRFindJob(FineTuneJob):
    """`FineTuneJob` with an exponential learning-rate schedule, no evaluation and no saving."""

    def __init__(self, model, data, eval, config, start_lr, end_lr, num_steps, diverge):
        super().__init__(model, data, eval, config)
        self.start_lr, self.end_lr, self.num_steps = start_lr, end_lr, num_steps
        self.stop = DivergenceStop(diverge)
        self.eval_at_start = False

    def has_eval_data(self) -> bool:
        return False

    def listeners(self, engine):
        return [self.stop]

    def before_fit(self, engine):
        import torch

        # config.lr is end_lr; the factor takes it from start_lr up to end_lr in num_steps - 1 steps.
        ratio, last = self.end_lr / self.start_lr, max(1, self.num_steps - 1)
        engine.scheduler = torch.optim.lr_scheduler.LambdaLR(
            engine.optimizer, lambda step: ratio ** (min(step, last) / last) / ratio)

    def plan(self, engine) -> str:
        return (f"llmnb: lr_find: {self.model_name}, lr from {self.start_lr:.0e} to {self.end_lr:.0e} over at most "
                f"{self.num_steps} steps of {self.config.batch_size} examples (a copy: your model and data stay as they were)")

    def finish(self, result):
        pass  # nothing is saved: the sweep's weights are thrown away

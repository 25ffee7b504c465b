"""What the training engine tells the outside world while it runs.

The engine never draws, prints progress or writes checkpoints itself. It keeps a
`TrainState` up to date and calls the matching method of every listener
(`Callback`). The live plot, the console bar and checkpointing are listeners.

Order of calls in one run:

    on_train_begin(state)
    on_log(state, row)            every `state.log_every` optimizer steps
    on_evaluate(state, metrics)   at each evaluation (every epoch or every N steps)
    on_epoch_end(state)
    on_interrupt(state)           after Ctrl-C, before the best weights are put back:
                                  the model and optimizer are still those of `state.step`
    on_train_end(state)           always, also after Ctrl-C or an error;
                                  `state.status` says how the run ended

This module imports nothing heavy: display code can use it without torch.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from llmnb.core.task import DEFAULT_TASK

RUNNING = "running"
FINISHED = "finished"
STOPPED_EARLY = "stopped early"
INTERRUPTED = "interrupted"
FAILED = "failed"


@dataclass
class TrainState:
    """A snapshot of a run, mutated in place by the engine.

    Taught in chapter 5 (tutorials/05_project.ipynb).
    """

    task: str = DEFAULT_TASK
    model_name: str = ""
    max_steps: int = 0  # optimizer steps planned for the whole run
    num_epochs: float = 0.0
    steps_per_epoch: int = 0
    log_every: int = 10
    step: int = 0  # optimizer steps done
    epoch: float = 0.0  # fractional epochs done
    samples_seen: int = 0
    tokens_seen: int = 0
    started_at: float = field(default_factory=time.perf_counter)
    train_loss: float | None = None  # mean loss since the previous log row
    lr: float = 0.0
    # The metric that picks the best checkpoint, e.g. "eval_accuracy", and its direction.
    metric_name: str = "eval_loss"
    greater_is_better: bool = False
    best_metric: float | None = None
    best_step: int | None = None
    last_eval: dict[str, float] | None = None
    # One dict per logged step ("step", "epoch", "train_loss", "lr") and per evaluation
    # ("step", "epoch", "eval_loss", "eval_<metric>"...), each with "seconds" of training so far
    # (the x axis of `llmnb.compare`'s wall-time curves). Rows are never mutated after append.
    history: list[dict[str, Any]] = field(default_factory=list)
    skipped_batches: int = 0  # batches with a NaN/inf loss skipped (on_nan="skip")
    # A few generated answers beside their references from the last evaluation (instruction tuning).
    samples: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # things the engine fixed on the way (e.g. out of memory)
    panel_keys: tuple = ()  # the task's per-step statistics the display shows (learning from rewards)
    status: str = RUNNING
    message: str = ""  # why the run stopped, in words, for the display

    def history_frame(self):
        """The history as a pandas DataFrame: one row per step, eval columns filled at eval steps."""
        import pandas as pd

        if not self.history:
            return pd.DataFrame(columns=["step", "epoch", "train_loss", "lr"])
        return pd.DataFrame(self.history).groupby("step", as_index=False).first()

    def best_metrics(self) -> dict[str, float]:
        """The eval_* values of the best evaluation (the last one if none was marked best)."""
        evals = [r for r in self.history if any(k.startswith("eval_") for k in r)]
        if not evals:
            return {}
        best = next((r for r in evals if r["step"] == self.best_step), evals[-1])
        return {k: v for k, v in best.items() if k.startswith("eval_")}

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started_at

    @property
    def samples_per_second(self) -> float:
        elapsed = self.elapsed
        return self.samples_seen / elapsed if elapsed > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        if self.step == 0 or self.max_steps <= self.step:
            return None
        return self.elapsed / self.step * (self.max_steps - self.step)


class Callback:
    """Base listener: override what you need, every method is optional.

    Taught in chapter 5 (tutorials/05_project.ipynb).
    """

    def on_train_begin(self, state: TrainState) -> None:
        pass

    def on_log(self, state: TrainState, row: dict[str, Any]) -> None:
        pass

    def on_evaluate(self, state: TrainState, metrics: dict[str, float]) -> None:
        pass

    def on_epoch_end(self, state: TrainState) -> None:
        pass

    def on_interrupt(self, state: TrainState) -> None:
        pass

    def on_train_end(self, state: TrainState) -> None:
        pass


class CallbackList(Callback):
    """Fans every event out to many listeners, in order."""

    def __init__(self, callbacks=()):
        self.callbacks = [c for c in callbacks if c is not None]

    def on_train_begin(self, state):
        for c in self.callbacks:
            c.on_train_begin(state)

    def on_log(self, state, row):
        for c in self.callbacks:
            c.on_log(state, row)

    def on_evaluate(self, state, metrics):
        for c in self.callbacks:
            c.on_evaluate(state, metrics)

    def on_epoch_end(self, state):
        for c in self.callbacks:
            c.on_epoch_end(state)

    def on_interrupt(self, state):
        for c in self.callbacks:
            c.on_interrupt(state)

    def on_train_end(self, state):
        for c in self.callbacks:
            c.on_train_end(state)

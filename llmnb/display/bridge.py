"""llmnb's live display for a plain Hugging Face `Trainer`.

Used in tutorials/09_faq.ipynb ("I already have a Trainer: can I get the live curve?"):

    from llmnb.display.bridge import LiveCallback, attach
    trainer = Trainer(model, args, train_dataset=..., eval_dataset=..., callbacks=[LiveCallback()])
    trainer.train()          # the same progress, loss curve and evaluation table as %finetune

    live = attach(trainer)   # or: add it to an existing Trainer, replacing its own progress bars

`LiveCallback` translates the Trainer's events into llmnb's (`llmnb.core.events`): it keeps a
`TrainState` up to date (step, epoch, train loss, learning rate, evaluations, the best
metric) and passes it to a display listener, by default the notebook view inside Jupyter and
the console bar elsewhere. Only the main process draws when the Trainer runs distributed.
Set `logging_steps` in `TrainingArguments` to choose how often the curve gets a point.
"""
from __future__ import annotations

import math
import time

# A Trainer callback has to subclass TrainerCallback, so this module imports transformers;
# `import llmnb` stays light because llmnb only loads this module when it is asked for.
from transformers import TrainerCallback

from llmnb.core.events import FINISHED, RUNNING, STOPPED_EARLY, Callback, TrainState
from llmnb.errors import ConfigError

# Evaluation entries that are timings, not metrics: kept out of the table and the curve.
_TIMINGS = ("_runtime", "_samples_per_second", "_steps_per_second")


def display_name(name_or_path) -> str:
    """How a model is named in the display's title: the bundled MiniLM as "minilm", a local folder
    by its own name (not a path into site-packages), a Hub id as it is."""
    from pathlib import Path

    from llmnb.core.models import bundled_minilm_path

    text = str(name_or_path or "")
    if not text:
        return ""
    path = Path(text).expanduser()
    try:
        if path.resolve() == bundled_minilm_path().resolve():
            return "minilm"
    except Exception:  # the bundled model is not installed: nothing to compare with
        pass
    return path.name if path.is_dir() else text


class LiveCallback(TrainerCallback):
    """A `transformers.TrainerCallback` that drives llmnb's live display.

    display: "auto" (notebook in Jupyter, console elsewhere), "notebook", "console", "quiet",
             or any `llmnb.Callback` (e.g. your own listener).
    plot:    show the chart in the notebook view.
    After training, `.state` holds the run (`.state.history`: one dict per log and evaluation),
    and `.plot()` draws it as `FineTuneResult.plot()` does.

    Taught in chapter 7 (tutorials/07_tools.ipynb).
    """

    def __init__(self, display="auto", plot: bool = True):
        from llmnb.display import MODES, make_display

        if isinstance(display, str):
            if display not in MODES:
                raise ConfigError(f"display={display!r} is not known; choose one of: {', '.join(MODES)}, or pass a llmnb Callback.")
            display = make_display(display, plot=plot)
        elif display is not None and not isinstance(display, Callback):
            raise ConfigError(f"display must be a mode name or a llmnb.Callback, not a {type(display).__name__}.")
        self.display = display
        self.state = TrainState()

    # ------------------------------------------------------------------ Trainer events
    def on_train_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        config = getattr(model, "config", None)
        metric = args.metric_for_best_model or "loss"
        s = self.state = TrainState(
            # The display's label for the run: what transformers calls its problem (a Trainer run is no llmnb task).
            task=str(getattr(config, "problem_type", None) or "Trainer"),
            model_name=display_name(getattr(config, "_name_or_path", "")) or type(model).__name__,
            max_steps=state.max_steps,
            metric_name=metric if metric.startswith("eval_") else "eval_" + metric,
            greater_is_better=bool(args.greater_is_better) if args.greater_is_better is not None else metric not in ("loss", "eval_loss"),
        )
        s.num_epochs = float(state.num_train_epochs or 0)
        steps = len(train_dataloader) // max(1, args.gradient_accumulation_steps) if train_dataloader is not None else 0
        s.steps_per_epoch = max(1, steps or (math.ceil(state.max_steps / s.num_epochs) if s.num_epochs else state.max_steps))
        s.num_epochs = state.max_steps / s.steps_per_epoch
        s.log_every = int(state.logging_steps) if state.logging_steps and state.logging_steps >= 1 else 1
        s.step, s.epoch = state.global_step, float(state.epoch or 0.0)
        s.started_at = time.perf_counter()
        self._global_batch = args.per_device_train_batch_size * max(1, args.gradient_accumulation_steps) * max(1, args.world_size)
        self._forward(state, "on_train_begin")

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        self._sync(state)
        if "loss" not in logs:  # evaluations arrive in on_evaluate; the closing summary is not a point
            return
        s = self.state
        s.train_loss = float(logs["loss"])
        s.lr = float(logs.get("learning_rate", s.lr) or 0.0)
        row = {"step": s.step, "epoch": round(s.epoch, 4), "train_loss": s.train_loss, "lr": s.lr}
        s.history.append(row)
        self._forward(state, "on_log", row)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self._sync(state)
        s = self.state
        kept = {k: float(v) for k, v in (metrics or {}).items() if k.startswith("eval_") and not k.endswith(_TIMINGS) and isinstance(v, (int, float))}
        row = {"step": s.step, "epoch": round(s.epoch, 4), **kept}
        s.history.append(row)
        s.last_eval = row
        value = kept.get(s.metric_name)
        if value is not None and math.isfinite(value) and (
            s.best_metric is None or (value > s.best_metric if s.greater_is_better else value < s.best_metric)
        ):
            s.best_metric, s.best_step = value, s.step
        self._forward(state, "on_evaluate", kept)

    def on_epoch_end(self, args, state, control, **kwargs):
        self._sync(state)
        self._forward(state, "on_epoch_end")

    def on_train_end(self, args, state, control, **kwargs):
        self._sync(state)
        s = self.state
        if s.status == RUNNING:
            s.status = FINISHED if s.step >= s.max_steps else STOPPED_EARLY
            if s.status == STOPPED_EARLY:
                s.message = f"stopped at step {s.step} of {s.max_steps}"
        self._forward(state, "on_train_end")

    # ------------------------------------------------------------------ helpers
    def _sync(self, state):
        s = self.state
        s.step = state.global_step
        s.epoch = float(state.epoch or 0.0)
        s.samples_seen = state.global_step * getattr(self, "_global_batch", 0)
        s.tokens_seen = int(getattr(state, "num_input_tokens_seen", 0) or 0)

    def _forward(self, state, event, *payload):
        # Distributed Trainer: every process keeps the state, only the main one draws.
        if self.display is not None and getattr(state, "is_world_process_zero", True):
            getattr(self.display, event)(self.state, *payload)

    def plot(self, path=None):
        """The run's curves as a matplotlib Figure (saved as PNG when `path` is given)."""
        from llmnb.display.plot import plot_history

        return plot_history(self.state.history, metric_name=self.state.metric_name, path=path)


def attach(trainer, display="auto", plot: bool = True) -> LiveCallback:
    """Give an existing `trainer` llmnb's live display in place of its own progress bars and
    printed log dicts; returns the `LiveCallback` (its `.state` holds the run afterwards).

    Taught in chapter 7 (tutorials/07_tools.ipynb).
    """
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    own = [PrinterCallback, ProgressCallback]
    try:
        from transformers.utils.notebook import NotebookProgressCallback

        own.append(NotebookProgressCallback)
    except ImportError:
        pass
    for kind in own:
        trainer.remove_callback(kind)
    live = LiveCallback(display, plot)
    trainer.add_callback(live)
    return live

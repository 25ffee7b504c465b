"""`Job`: one training run, in the same order for every kind of training.

    validate options -> read and check the data -> build the model -> engine (display,
    listeners, reporters, plan) -> fit -> result (with its record: data, environment,
    wall time, peak memory) -> (save)

A job (`FineTuneJob`, `PretrainJob`) is one class that fills in the steps below; `run()` keeps
their order, wires the listeners it is given (display, reporters, the caller's) to the `Engine`, gives memory back
after the loop, and turns a failed run into a `TrainingError` that still carries the result,
so nothing trained is lost. Data is read before any model loads, so a mistake costs seconds.
"""
from __future__ import annotations

import contextlib

from llmnb.core.config import TrainConfig
from llmnb.core.events import FAILED, Callback, TrainState


def seed_everything(seed: int) -> None:
    """Python's, numpy's and torch's random generators (every device) from one seed."""
    from transformers import set_seed

    set_seed(seed)


class Job:
    eval_at_start = False  # evaluate the untrained model too (step 0 on the curve)

    def __init__(self, config: TrainConfig, callbacks=()):
        self.config = config
        self.callbacks = [c for c in callbacks if c is not None]

    # ------------------------------------------------------------------ the steps a job fills in
    def prepare_data(self) -> None:
        """Read and check the data (no model yet)."""

    def build_model(self):
        """The model to train, on its device."""
        raise NotImplementedError

    def new_state(self, model) -> TrainState:
        """The run's TrainState: task, model name, the metric that picks the best weights."""
        raise NotImplementedError

    def batches(self, epoch: int):
        """The training batches of one epoch (dicts of tensors with `labels`)."""
        raise NotImplementedError

    steps_per_epoch: int = 1

    def evaluate(self) -> dict[str, float]:
        """eval_loss and the job's metrics on the validation data."""
        raise NotImplementedError

    def has_eval_data(self) -> bool:
        return True

    # The loss of one micro-batch, `compute_loss(model, batch) -> tensor`; None: the model's own
    # (`model(**batch).loss`). Preference tuning sets it: its loss compares two answers.
    compute_loss = None

    def listeners(self, engine) -> list[Callback]:
        """Listeners that must hear each event before the display (e.g. the checkpointer)."""
        return []

    def before_fit(self, engine) -> None:
        """Last step before the loop (e.g. put a resumed run's state back)."""

    def plan(self, engine) -> str:
        """The lines printed before training: what is about to happen, with the defaults in force."""
        return ""

    def make_result(self, model, state: TrainState):
        raise NotImplementedError

    def finish(self, result) -> None:
        """After a run that did not fail (e.g. save the final model)."""

    def context(self):
        """Held from building the model to making the result (e.g. a CPU thread count)."""
        return contextlib.nullcontext()

    def data_fingerprint(self) -> dict:
        """What the run trained and validated on, for its record: {"train": ..., "eval": ...}
        of `llmnb.core.record.data_fingerprint` (sha256, rows, label counts)."""
        return {}

    run_dir = None  # the run's folder (checkpoints, final model, TensorBoard events), if it has one

    # ------------------------------------------------------------------ the one order
    def run(self, watchers=None):
        """Train and return the result. `watchers(job) -> [listeners]` gives the display and the
        reporters (TensorBoard) the config asks for: `llmnb.display.watchers`, passed in by
        `finetune` and `pretrain`, so that nothing in the core draws (None: no display)."""
        import torch

        from llmnb.core.engine import Engine
        from llmnb.core.memory import release_memory
        from llmnb.core.models import quiet_transformers
        from llmnb.core.record import MemoryPeak, environment

        config = self.config
        self.prepare_data()
        with self.context(), MemoryPeak() as peak:
            # Seeded before anything random is drawn (new heads, LoRA adapters, weights built
            # from a config), so a run does not depend on what ran before it in the process.
            seed_everything(config.seed)
            model = self.build_model()
            state = self.new_state(model)
            shown = watchers(self) if watchers else []
            torch.manual_seed(config.seed)  # dropout masks and batch order repeat from run to run
            # No validation data: no evaluations, so nothing can stop the run early either.
            evaluate = self.evaluate if self.has_eval_data() else None
            engine = Engine(model, config, self.batches, self.steps_per_epoch, evaluate,
                            [*shown, *self.callbacks], state)
            engine.eval_at_start = self.eval_at_start
            if self.compute_loss is not None:
                engine.compute_loss = self.compute_loss
            for listener in reversed(self.listeners(engine)):
                engine.add_callback(listener, first=True)
            self.before_fit(engine)
            if not config.quiet:
                plan = self.plan(engine)
                if plan:
                    print(plan)
            with quiet_transformers():
                engine.fit()
            run_environment = environment(engine.device, engine.autocast_dtype)
            del engine  # its optimizer state and best-weights copy go now, not at the next gc
            release_memory()
            result = self.make_result(model, state)
        result.environment, result.data = run_environment, self.data_fingerprint()
        result.wall_seconds, result.peak_memory_mb, result.gpu_peak_mb = peak.seconds, peak.mb, peak.gpu_mb
        if state.status == FAILED:
            from llmnb.errors import TrainingError

            error = TrainingError(state.message)
            error.result = result  # the magic binds it, so nothing trained is lost
            raise error
        self.finish(result)
        return result

"""`TrainResult`: what every job returns. A job's result (`FineTuneResult`, `PretrainResult`)
extends it with its own fields and says what its summary and its saved `llmnb.json` hold.

    ft.status, ft.history, ft.metrics, ft.best_step    how the run went
    ft.plot()                                          the curves as a matplotlib Figure
    ft.save("folder")                                  weights + tokenizer + llmnb.json + README.md (the card)
    ft.record()                                        what llmnb.json holds: config, data, environment, costs
    ft.card()                                          a Hugging Face model card (Markdown with YAML metadata)
"""
from __future__ import annotations

import html
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from llmnb.core.events import TrainState

META_FILE = "llmnb.json"


@dataclass
class TrainResult:
    model: object
    tokenizer: object
    config: object  # the job's TrainConfig
    state: TrainState
    # The run's record (llmnb/core/record.py), filled in by the job when training ends.
    data: dict = field(default_factory=dict)  # fingerprints of the training and validation data
    environment: dict = field(default_factory=dict)  # versions, device, precision, threads
    wall_seconds: float | None = None  # the whole job, loading included
    peak_memory_mb: float | None = None  # the process's resident memory at its highest during the job
    gpu_peak_mb: float | None = None
    saved_parameters: dict = field(default_factory=dict)  # {"trainable", "total"} kept when the model is not

    # ------------------------------------------------------------------ what happened
    @property
    def status(self) -> str:
        """finished, stopped early, interrupted or failed."""
        return self.state.status

    @property
    def history(self):
        """One row per logged step, with the evaluation columns filled at evaluation steps."""
        return self.state.history_frame()

    @property
    def metrics(self) -> dict[str, float]:
        """Evaluation metrics of the weights this result holds (the best evaluation)."""
        return self.state.best_metrics()

    @property
    def best_step(self) -> int | None:
        """The step whose weights this result holds (None when there was no evaluation)."""
        return self.state.best_step

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    @property
    def trainable_parameters(self) -> int:
        """The parameters training updated."""
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    def without_model(self):
        """A copy of this result without the weights: history, metrics, options, data and costs
        stay, enough for `llmnb.compare` and plots, and the model's memory can be freed.

        Taught in chapter 4 (tutorials/04_math.ipynb).
        """
        import copy

        light = copy.copy(self)
        light.saved_parameters = self.parameter_counts()
        light.model = None
        return light

    def parameter_counts(self) -> dict:
        """{"trainable": ..., "total": ...}: from the model, or as recorded when it is not loaded."""
        if self.model is None:
            return {"trainable": None, "total": None, **self.saved_parameters}
        return {"trainable": self.trainable_parameters, "total": self.num_parameters}

    def plot(self, path=None):
        """The training curves as a matplotlib Figure; saved as PNG when `path` is given."""
        from llmnb.display.plot import plot_history

        return plot_history(self.state.history, metric_name=self.state.metric_name, path=path, best_step=self.state.best_step)

    # ------------------------------------------------------------------ keeping it
    def save(self, directory) -> Path:
        """Write safetensors weights, the tokenizer and llmnb.json (what the run was) to `directory`.

        Files are written beside, then moved in one by one: a crash or a full disk mid-save
        leaves the files already there whole, and the half-written copy is removed.
        """
        from llmnb.core.checkpoint import ensure_writable
        from llmnb.core.models import quiet_transformers

        out = ensure_writable(directory)
        staging = out / ".saving"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            with quiet_transformers():
                self.model.save_pretrained(staging, safe_serialization=True)
                self.tokenizer.save_pretrained(staging)
            (staging / META_FILE).write_text(json.dumps(self.record(), indent=2, default=str))
            (staging / "README.md").write_text(self.card())
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)  # a full disk must not stay full of half a model
            raise
        for item in staging.iterdir():
            os.replace(item, out / item.name)
        staging.rmdir()
        return out

    def _meta(self) -> dict:
        """What the job adds to llmnb.json (its metrics, labels, corpus...)."""
        return {"metrics": self.metrics}

    def record(self) -> dict:
        """What the run was and what it cost, as saved in llmnb.json: config, data fingerprints,
        environment, metrics, best step, wall time, peak memory, parameters and the full history
        (`llmnb.load_run` reads it back).

        Taught in chapter 4 (tutorials/04_math.ipynb).
        """
        from llmnb.core.checkpoint import state_to_dict
        from llmnb.version import __version__

        state = self.state
        return {
            "llmnb_version": __version__,
            "result": type(self).__name__,
            **self._meta(),
            "status": self.status,
            "metric_name": state.metric_name,
            "best_step": state.best_step,
            "steps": state.step,
            "wall_seconds": self.wall_seconds,
            "peak_memory_mb": self.peak_memory_mb,
            "gpu_peak_mb": self.gpu_peak_mb,
            "parameters": self.parameter_counts(),
            "data": self.data,
            "environment": self.environment,
            "config": self.config.to_dict(),
            "state": state_to_dict(state),
        }

    def card(self) -> str:
        """A model card in the Hugging Face convention: YAML metadata, then intended use, data,
        training, evaluation and limitations. `save()` writes it as README.md.

        Taught in chapter 4 (tutorials/04_math.ipynb).
        """
        from llmnb.core.card import model_card

        return model_card(self.record(), getattr(self, "_card_facts", dict)())

    # ------------------------------------------------------------------ showing it
    def _summary(self) -> list[tuple[str, str]]:
        """(name, value) rows of the result's table."""
        return [("status", self.state.message or self.status)]

    def _extra_html(self) -> str:
        """HTML shown under the table (e.g. samples)."""
        return ""

    def _repr_html_(self):
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'>{html.escape(str(v))}</td></tr>"
            for k, v in self._summary()
        )
        caption = f"<caption style='text-align:left'><b>{type(self).__name__}</b></caption>"
        return f"<table>{caption}{body}</table>{self._extra_html()}"

"""`TrainResult`: what every job returns. A job's result (`FineTuneResult`, `PretrainResult`)
extends it with its own fields and says what its summary and its saved `llmnb.json` hold.

    ft.status, ft.history, ft.metrics, ft.best_step    how the run went
    ft.plot()                                          the curves as a matplotlib Figure
    ft.save("folder")                                  weights + tokenizer + llmnb.json, loads with from_pretrained
"""
from __future__ import annotations

import html
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from llmnb.core.events import TrainState

META_FILE = "llmnb.json"


@dataclass
class TrainResult:
    model: object
    tokenizer: object
    config: object  # the job's TrainConfig
    state: TrainState

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
            from llmnb.version import __version__

            meta = {"llmnb_version": __version__, **self._meta(), "status": self.status, "config": self.config.to_dict()}
            (staging / META_FILE).write_text(json.dumps(meta, indent=2, default=str))
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

"""`FineTuneResult`: what `finetune` returns, and what `%finetune` binds to `ft`.

    ft.predict(["I loved it", "never again"])   -> ["positive", "negative"]
    ft.metrics                                  -> {"eval_accuracy": 0.91, ...} (of the weights held)
    ft.history                                  -> DataFrame, one row per logged step
    ft.save("my-model")                         -> safetensors + tokenizer + labels, loads with from_pretrained
"""
from __future__ import annotations

import html
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .config import FineTuneConfig
from .data import LabelMap
from .events import TrainState
from .tasks import Task

META_FILE = "llmnb.json"


@dataclass
class FineTuneResult:
    model: object
    tokenizer: object
    config: FineTuneConfig
    task: Task
    labels: LabelMap | None
    state: TrainState
    model_name: str = ""
    text_column: str = "text"
    label_column: str | None = "label"
    train_size: int = 0
    eval_size: int = 0
    notices: list = field(default_factory=list)
    run_dir: Path | None = None  # where checkpoints and the final model were written

    # ------------------------------------------------------------------ what happened
    @property
    def status(self) -> str:
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
    def total_parameters(self) -> int:
        """Every parameter of the model (with LoRA: base weights + adapters + head)."""
        from .strategies import count_parameters

        return count_parameters(self.model)[1]

    num_parameters = total_parameters

    @property
    def trainable_parameters(self) -> int:
        """The parameters training updated (freeze/LoRA: a share of total_parameters)."""
        from .strategies import count_parameters

        return count_parameters(self.model)[0]

    # ------------------------------------------------------------------ using the model
    def predict(self, texts, batch_size: int = 64, return_scores: bool = False):
        """Labels (in the data's own values) for one text or a list of texts; numbers for
        regression; generated text for causal-lm (a continuation) and seq2seq (the output).

        With return_scores=True, also the probability of each class (classification) as a
        list of dicts, so you can see how sure the model is.
        """
        single = isinstance(texts, str)
        batch = [texts] if single else [str(t) for t in texts]
        if not batch:
            return []
        values, scores = self.task.predict(self, batch, batch_size, return_scores)
        if return_scores and scores is not None:
            return (values[0], scores[0]) if single else (values, scores)
        return values[0] if single else values

    def evaluate(self, data, text: str | None = None, label: str | None = None) -> dict[str, float]:
        """Metrics of the held weights on new labelled data (a DataFrame, file, list of dicts...)."""
        from .finetuning import evaluate_encoded, prepare_eval

        enc = prepare_eval(self, data, text, label)
        metrics = evaluate_encoded(self.model, enc, self.task, self.tokenizer, self.config.batch_size)
        del enc
        from .memory import release_memory

        release_memory()  # a notebook kernel lives on: give the activations' heap back now, not at the next run
        return metrics

    # ------------------------------------------------------------------ keeping it
    def save(self, directory) -> Path:
        """Write safetensors weights, the tokenizer and the label map to `directory`.

        Reload with `transformers.AutoModelForSequenceClassification.from_pretrained(directory)`
        or `llmnb.load_model(directory)`; labels come back through the config's id2label.
        """
        from .checkpoint import ensure_writable

        out = ensure_writable(directory)
        # Written beside, then moved in file by file: a crash mid-save leaves the old files whole.
        staging = out / ".saving"
        shutil.rmtree(staging, ignore_errors=True)
        from .models import quiet_transformers

        try:
            with quiet_transformers():
                self.model.save_pretrained(staging, safe_serialization=True)
                self.tokenizer.save_pretrained(staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)  # a full disk must not stay full of half a model
            raise
        meta = {
            "llmnb_version": _version(),
            "model_name": self.model_name,
            "task": self.task.name,
            "labels": self.labels.names if self.labels else None,
            "text_column": self.text_column,
            "label_column": self.label_column,
            "metrics": self.metrics,
            "metric_name": self.state.metric_name,  # the one that picked the best weights
            "status": self.status,
            "config": self.config.to_dict(),
        }
        (staging / META_FILE).write_text(json.dumps(meta, indent=2, default=str))
        for item in staging.iterdir():
            os.replace(item, out / item.name)
        staging.rmdir()
        return out

    def merge(self):
        """For a LoRA run: a plain transformers model with the adapters folded into its weights."""
        from .strategies import is_lora

        if not is_lora(self.model):
            return self.model
        import copy

        return copy.deepcopy(self.model).merge_and_unload()

    def plot(self, path=None):
        """The training curves as a matplotlib Figure; saved as PNG when `path` is given."""
        from .display.plot import plot_history

        return plot_history(self.state.history, metric_name=self.state.metric_name, path=path)

    # ------------------------------------------------------------------ showing it
    def __repr__(self):
        metrics = ", ".join(f"{k[5:]}={v:.4f}" for k, v in self.metrics.items())
        return (
            f"FineTuneResult({self.model_name}, {self.task.name}, {self.status} at step {self.state.step}"
            f"/{self.state.max_steps}, {metrics or 'not evaluated'})"
        )

    def _repr_html_(self):
        rows = [
            ("model", f"{self.model_name} ({self.num_parameters / 1e6:.1f} M parameters, "
                      f"{self.trainable_parameters / self.num_parameters:.1%} trained)"),
            ("task", self.task.name),
            ("status", self.state.message or self.status),
            ("steps", f"{self.state.step} of {self.state.max_steps} ({self.state.epoch:.2f} epochs)"),
            ("data", f"{self.train_size} training, {self.eval_size} validation examples"),
        ]
        if self.labels:
            rows.append(("labels", ", ".join(map(str, self.labels.names))))
        rows += [(k[5:], f"{v:.4f}") for k, v in self.metrics.items()]
        body = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'>{html.escape(str(v))}</td></tr>" for k, v in rows)
        return f"<table><caption style='text-align:left'><b>FineTuneResult</b></caption>{body}</table>"


def _version() -> str:
    from . import __version__

    return __version__

"""`FineTuneResult`: what `finetune` returns, and what `%finetune` binds to `ft`.

    ft.predict(["I loved it", "never again"])   -> ["positive", "negative"]
    ft.metrics                                  -> {"eval_accuracy": 0.91, ...} (of the weights held)
    ft.history                                  -> DataFrame, one row per logged step
    ft.save("my-model")                         -> safetensors + tokenizer + labels, loads with from_pretrained
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from llmnb.core.result import TrainResult
from llmnb.finetuning.data import LabelMap
from llmnb.core.task import Task


@dataclass
class FineTuneResult(TrainResult):
    """A finished (or stopped) fine-tune: the model, its history and metrics; predict, evaluate, save.

    Taught in chapter 0 (tutorials/00_quickstart.ipynb).
    """
    task: Task = None
    labels: LabelMap | None = None
    model_name: str = ""
    text_column: str = "text"
    label_column: str | None = "label"
    train_size: int = 0
    eval_size: int = 0
    notices: list = field(default_factory=list)
    run_dir: Path | None = None  # where checkpoints and the final model were written

    @property
    def total_parameters(self) -> int:
        """Every parameter of the model (with LoRA: base weights + adapters + head)."""
        from llmnb.finetuning.strategies import count_parameters

        return count_parameters(self.model)[1]

    num_parameters = total_parameters

    @property
    def trainable_parameters(self) -> int:
        """The parameters training updated (freeze/LoRA: a share of total_parameters)."""
        from llmnb.finetuning.strategies import count_parameters

        return count_parameters(self.model)[0]

    # ------------------------------------------------------------------ using the model
    def predict(self, texts=None, batch_size: int = 64, return_scores: bool = False, **inputs):
        """Labels (in the data's own values) for one text or a list of texts; numbers for
        regression; generated text for causal-lm (a continuation) and seq2seq (the output);
        the entities found for token-classification.

        With return_scores=True, also the probability of each class (classification) as a
        list of dicts, so you can see how sure the model is.

        A task whose input comes in named parts takes them as keywords and shapes its own answer:
        `ft.predict(question=..., context=...)` for qa.
        """
        if inputs:
            predict_parts = getattr(self.task, "predict_parts", None)
            if predict_parts is None:
                raise TypeError(f"predict() got {', '.join(inputs)}=..., but task={self.task.name!r} takes texts only.")
            return predict_parts(self, batch_size=batch_size, return_scores=return_scores, **inputs)
        if texts is None:
            raise TypeError("predict() needs the texts to predict for: ft.predict('a text') or ft.predict([...]).")
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
        from llmnb.core.memory import release_memory

        enc = self.task.encode_like(self, data, text, label)  # conversations and preference pairs read their own columns
        metrics = self.task.evaluate(self.model, enc, self.tokenizer, self.config.batch_size)
        del enc
        release_memory()  # a notebook kernel lives on: give the activations' heap back now, not at the next run
        return metrics

    # ------------------------------------------------------------------ keeping it
    def save(self, directory) -> Path:
        """Write safetensors weights, the tokenizer and the label map to `directory`.

        Reload with `transformers.AutoModelForSequenceClassification.from_pretrained(directory)`
        or `llmnb.load_model(directory)`; labels come back through the config's id2label.
        """
        return super().save(directory)

    def _meta(self) -> dict:
        return {
            "model_name": self.model_name,
            "task": self.task.name,
            "labels": self.labels.names if self.labels else None,
            "text_column": self.text_column,
            "label_column": self.label_column,
            "metrics": self.metrics,
            "metric_name": self.state.metric_name,  # the one that picked the best weights
        }

    def merge(self):
        """For a LoRA run: a plain transformers model with the adapters folded into its weights."""
        from llmnb.finetuning.strategies import is_lora

        if not is_lora(self.model):
            return self.model
        import copy

        return copy.deepcopy(self.model).merge_and_unload()

    # ------------------------------------------------------------------ showing it
    def __repr__(self):
        metrics = ", ".join(f"{k[5:]}={v:.4f}" for k, v in self.metrics.items())
        return (
            f"FineTuneResult({self.model_name}, {self.task.name}, {self.status} at step {self.state.step}"
            f"/{self.state.max_steps}, {metrics or 'not evaluated'})"
        )

    def _summary(self):
        rows = [
            ("model", f"{self.model_name} ({self.num_parameters / 1e6:.1f} M parameters, "
                      f"{self.trainable_parameters / self.num_parameters:.1%} trained)"),
            ("task", self.task.name),
            *super()._summary(),
            ("steps", f"{self.state.step} of {self.state.max_steps} ({self.state.epoch:.2f} epochs)"),
            ("data", f"{self.train_size} training, {self.eval_size} validation examples"),
        ]
        if self.labels:
            rows.append(("labels", ", ".join(map(str, self.labels.names))))
        return rows + [(k[5:], f"{v:.4f}") for k, v in self.metrics.items()]

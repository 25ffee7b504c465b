"""What differs between tasks: the targets, the head, the metrics, and how outputs read.

Each task is one `Task` in the `TASKS` registry; the engine and `finetune` look the task up
here and never branch on its name. Adding a task means adding an entry, not editing the loop.
"""
from __future__ import annotations

from dataclasses import dataclass

from .data import LabelMap
from .errors import DataError


@dataclass(frozen=True)
class Task:
    name: str
    metrics: tuple[str, ...]  # computed by the evaluate modules in llmnb/metrics
    headline: str  # the metric that picks the best weights
    greater_is_better: bool
    float_targets: bool = False

    def make_targets(self, values, labels: LabelMap | None, what: str = "data"):
        """Column values -> what the model is trained on (class ids or floats)."""
        if self.float_targets:
            import pandas as pd

            numbers = pd.to_numeric(pd.Series(list(values)), errors="coerce")
            bad = numbers.isna()
            if bad.any():
                example = list(values)[int(bad.idxmax())]
                raise DataError(
                    f"Regression needs numeric targets, but the {what} has {int(bad.sum())} that are not numbers "
                    f"(e.g. {example!r}). Use task='classification' for categories."
                )
            return numbers.astype(float).tolist()
        return labels.encode(values)

    def outputs_to_predictions(self, logits):
        """Model logits (a tensor) -> a list of class ids or floats."""
        if self.float_targets:
            return logits.float().squeeze(-1).tolist()
        return logits.argmax(-1).tolist()

    def predictions_to_values(self, predictions, labels: LabelMap | None):
        return predictions if self.float_targets else labels.decode(predictions)


TASKS = {
    "classification": Task("classification", metrics=("accuracy", "f1"), headline="accuracy", greater_is_better=True),
    "regression": Task("regression", metrics=("mse",), headline="mse", greater_is_better=False, float_targets=True),
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise DataError(f"task={name!r} is not known; choose one of: {', '.join(TASKS)}.")
    return TASKS[name]

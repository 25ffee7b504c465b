"""Macro-averaged F1: the F1 score of each class, averaged with equal weight per class.

Macro averaging does not depend on which class is called "positive", and it drops
sharply when a model ignores a rare class, which accuracy hides. Shipped inside
llmnb so that it loads offline by path.
"""
import datasets
import evaluate
import numpy as np

_DESCRIPTION = "F1 = 2·precision·recall / (precision + recall) per class, averaged over the classes present."


class F1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description="predictions and references: lists of integer class ids of equal length.",
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references):
        predictions, references = np.asarray(predictions), np.asarray(references)
        scores = []
        for cls in np.union1d(predictions, references):
            true_pos = np.sum((predictions == cls) & (references == cls))
            predicted, actual = np.sum(predictions == cls), np.sum(references == cls)
            # A class never predicted and never present cannot occur here (union of both).
            scores.append(0.0 if true_pos == 0 else 2 * true_pos / (predicted + actual))
        return {"f1": float(np.mean(scores)) if scores else float("nan")}

"""Accuracy: the share of predictions equal to the reference label.

Shipped inside llmnb because `evaluate.load("accuracy")` fetches its script from the Hub;
loading this file by path works offline.
"""
import datasets
import evaluate
import numpy as np

_DESCRIPTION = "Accuracy = (number of predictions equal to the reference) / (number of predictions)."


class Accuracy(evaluate.Metric):
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
        return {"accuracy": float((predictions == references).mean()) if len(references) else float("nan")}

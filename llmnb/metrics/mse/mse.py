"""Mean squared error for regression, shipped inside llmnb so it loads offline by path."""
import datasets
import evaluate
import numpy as np

_DESCRIPTION = "MSE = mean of (prediction - reference)^2."


class MSE(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description="predictions and references: lists of floats of equal length.",
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("float64")}
            ),
        )

    def _compute(self, predictions, references):
        diff = np.asarray(predictions, dtype=float) - np.asarray(references, dtype=float)
        return {"mse": float(np.mean(diff**2)) if len(diff) else float("nan")}

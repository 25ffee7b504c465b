"""Exact match: the share of generated answers equal to their reference, after normalising.

Shipped inside llmnb because `evaluate.load("exact_match")` fetches its script from the Hub;
loading this file by path works offline. Normalising ignores case, surrounding spaces, runs of
spaces and final punctuation, so "Mia." and " mia" match: the answer is what is judged, not its
typography (chapter 10).
"""
import re

import datasets
import evaluate

_DESCRIPTION = "Exact match = (number of answers equal to the reference after normalising) / (number of answers)."


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", str(text)).strip().rstrip(".!?").strip().lower()


class ExactMatch(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description="predictions and references: lists of strings of equal length.",
            features=datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
        )

    def _compute(self, predictions, references):
        if not references:
            return {"exact_match": float("nan")}
        same = sum(normalise(p) == normalise(r) for p, r in zip(predictions, references))
        return {"exact_match": same / len(references)}

"""SQuAD v1.1 exact match and token F1 for extractive question answering, as fractions from 0 to 1.

Shipped inside llmnb so that it loads offline by path. Both answers are normalised first: lower
case, punctuation removed, the articles a/an/the removed, runs of spaces collapsed, so "The
blue suitcase." and "blue suitcase" match. Exact match is 1 for an answer equal to a reference
after that, else 0; F1 is the harmonic mean of the precision and recall of the answer's words
against a reference's (shared words counted with multiplicity). Each score is the best over the
question's references, then averaged over the questions. Unlike the original script (0-100),
both are fractions: 0.75, not 75 (chapter 6).
"""
import re
import string
from collections import Counter

import datasets
import evaluate

_DESCRIPTION = "SQuAD v1.1 exact match and token F1 (best over the references), averaged over questions, 0..1."
PUNCTUATION = set(string.punctuation)


def normalise(text: str) -> str:
    text = "".join(ch for ch in str(text).lower() if ch not in PUNCTUATION)
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def exact(prediction: str, reference: str) -> float:
    return float(normalise(prediction) == normalise(reference))


def token_f1(prediction: str, reference: str) -> float:
    predicted, wanted = normalise(prediction).split(), normalise(reference).split()
    if not predicted or not wanted:  # an empty answer matches only an empty reference
        return float(predicted == wanted)
    shared = sum((Counter(predicted) & Counter(wanted)).values())
    if shared == 0:
        return 0.0
    precision, recall = shared / len(predicted), shared / len(wanted)
    return 2 * precision * recall / (precision + recall)


class Squad(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Rajpurkar, Zhang, Lopyrev, Liang (2016). SQuAD: 100,000+ questions for machine comprehension of text.",
            inputs_description="predictions: one answer string per question; references: a list of answer strings each.",
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Sequence(datasets.Value("string"))}
            ),
        )

    def _compute(self, predictions, references):
        if not references:
            return {"exact_match": float("nan"), "f1": float("nan")}
        for i, answers in enumerate(references):
            if not answers:
                raise ValueError(f"Question {i} has no reference answer.")
        em = sum(max(exact(p, r) for r in refs) for p, refs in zip(predictions, references))
        f1 = sum(max(token_f1(p, r) for r in refs) for p, refs in zip(predictions, references))
        return {"exact_match": em / len(references), "f1": f1 / len(references)}

"""Entity-level precision, recall and F1 of BIO tag sequences (the seqeval convention), plus token accuracy.

Shipped inside llmnb so that it loads offline by path; the counting is done by the `seqeval`
package (`pip install seqeval`), the scorer the Hugging Face token-classification recipe uses.
An entity counts as found only if its type and both of its ends are right: a name tagged one word
too short is one miss and one false alarm. Default (CoNLL) mode: an I- tag with no B- before it
starts an entity. Scores are micro averages over all entities, fractions from 0 to 1; `f1_<TYPE>`
is the F1 of each type ("f1_PER"...), and `accuracy` the share of words with the right tag, which
the many "O" words make look good even when most entities are missed (chapter 6).
"""
import datasets
import evaluate
from seqeval.metrics import accuracy_score, classification_report, f1_score, precision_score, recall_score

_DESCRIPTION = "Entity-level micro precision, recall and F1 (seqeval, default mode), token accuracy, F1 per type."


class Seqeval(evaluate.Metric):
    def _info(self):
        tags = datasets.Sequence(datasets.Value("string"))
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Nakayama (2018). seqeval: a Python framework for sequence labeling evaluation.",
            inputs_description="predictions and references: one list of tags per sentence ('B-PER', 'I-PER', 'O', ...).",
            features=datasets.Features({"predictions": tags, "references": tags}),
        )

    def _compute(self, predictions, references):
        if not references:
            return {"precision": float("nan"), "recall": float("nan"), "f1": float("nan"), "accuracy": float("nan")}
        for i, (p, r) in enumerate(zip(predictions, references)):
            if len(p) != len(r):
                raise ValueError(f"Sentence {i} has {len(p)} predicted tags but {len(r)} reference tags.")
        scores = {
            "precision": float(precision_score(references, predictions, zero_division=0)),
            "recall": float(recall_score(references, predictions, zero_division=0)),
            "f1": float(f1_score(references, predictions, zero_division=0)),
            "accuracy": float(accuracy_score(references, predictions)),
        }
        report = classification_report(references, predictions, output_dict=True, zero_division=0)
        for kind, row in sorted(report.items()):
            if not kind.endswith(" avg"):
                scores[f"f1_{kind}"] = float(row["f1-score"])
        return scores

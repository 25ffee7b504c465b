"""`task="regression"`: one number per text (chapter 6's ratings), with a one-output head and MSE.

    ft = llmnb.finetune("minilm", ratings, task="regression")   # a text column and a numeric one
    ft.predict("Good value, arrived late.")                      # -> 3.4
"""
from __future__ import annotations

from llmnb.core.models import pad_id
from llmnb.core.task import register
from llmnb.errors import DataError
from llmnb.finetuning.batches import encode
from llmnb.tasks.classification import Classification


@register
class Regression(Classification):
    name = "regression"
    data_forms = ("a text column and a numeric target column",)
    metrics = ("mse",)
    headline = "mse"
    greater_is_better = False
    float_targets = True
    uses_labels = False
    does = "predicts one number for a text"
    tuned_as = "fine-tuned for regression"

    @classmethod
    def model_kwargs(cls, num_labels, id2label) -> dict:
        return {"num_labels": 1, "problem_type": "regression"}

    def make_targets(self, values, labels, what="data"):
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

    def outputs_to_predictions(self, logits):
        return logits.float().squeeze(-1).tolist()

    def predict(self, result, texts, batch_size, return_scores, **options):
        from llmnb.finetuning.inference import forward_all

        enc = encode(result.tokenizer, texts, [0.0] * len(texts), result.config.max_length)
        logits, _ = forward_all(result.model, enc, batch_size, pad_id(result.tokenizer), True)
        return self.outputs_to_predictions(logits), None

"""`task="classification"`: one label per text (chapters 0, 4 and 5), and the steps most tasks inherit.

    ft = llmnb.finetune("minilm", "reviews", eval="reviews_test")      # task="classification"
    ft.predict("The battery died on day two.")                        # -> "negative"

The data is a text column and a label column (found by name, or text=/label=); labels are
mapped to ids (`LabelMap`) and the model gets a new sequence-classification head with one
output per label. Metrics: accuracy and macro-F1.
"""
from __future__ import annotations

from llmnb.core.models import pad_id
from llmnb.core.task import PreparedData, Task, register
from llmnb.finetuning.batches import Encoded, batch_order, collate, encode
from llmnb.finetuning.data import LabelMap, encode_like, prepare_data
from llmnb.finetuning.result import FineTuneResult


@register
class Classification(Task):
    """Sequence classification: one label per text (the base the other text tasks adapt)."""

    name = "classification"
    data_forms = ("a text column and a label column",)
    auto_class = "AutoModelForSequenceClassification"
    peft_task_type = "SEQ_CLS"
    result_class = FineTuneResult
    export_template = "plain"  # tools/export.py's script for it
    metrics: tuple = ("accuracy", "f1")
    headline = "accuracy"
    greater_is_better = True
    uses_labels = True  # class names mapped to ids (LabelMap)
    needs_target_column = True
    pipeline_tag = "text-classification"
    does = "sorts a text into one of the labels it was trained on"
    tuned_as = "fine-tuned for text classification"

    @classmethod
    def model_kwargs(cls, num_labels, id2label) -> dict:
        kwargs = {"num_labels": num_labels}
        if id2label:
            kwargs["id2label"] = {int(i): str(name) for i, name in id2label.items()}
            kwargs["label2id"] = {str(name): int(i) for i, name in id2label.items()}
        return kwargs

    # ------------------------------------------------------------------ data
    def prepare(self, data, eval, config) -> PreparedData:
        """Read, check and split the data: texts and targets from the data's columns."""
        return prepare_data(data, eval, config, self)

    def prepare_tokenizer(self, tokenizer) -> None:
        """Adjust the tokenizer before anything is encoded (instruction tuning: a chat template)."""

    def make_targets(self, values, labels: LabelMap | None, what: str = "data"):
        """Column values -> what the model is trained on."""
        return labels.encode(values)

    def encode(self, tokenizer, texts, targets, max_length: int) -> Encoded:
        return encode(tokenizer, texts, targets, max_length)

    def encode_like(self, result, data, text=None, label=None) -> Encoded:
        """New labelled data encoded the way `result` was trained (for `result.evaluate`)."""
        return encode_like(result, data, text, label)

    # ------------------------------------------------------------------ training
    def before_training(self, model, encs, batch_size: int, pad: int) -> None:
        """A last look at the starting model (preference tuning: the reference log-probabilities)."""

    def resume_state(self, encs) -> dict | None:
        """What a checkpoint keeps for this task beyond weights and optimizer (JSON), or None."""
        return None

    def restore_resume_state(self, saved: dict, encs) -> None:
        """Put back what `resume_state` kept, in place of `before_training` (a resumed run)."""

    def batches(self, enc, config, epoch: int, pad: int):
        """The training batches of one epoch."""
        for rows in batch_order(enc.lengths, config.batch_size, True, config.seed + epoch, config.group_by_length):
            yield self.collate(enc, rows, pad)

    def collate(self, enc: Encoded, rows, pad: int) -> dict:
        return collate(enc, rows, pad, self.float_targets)

    def compute_loss(self, model, batch):
        """The loss of one micro-batch."""
        return model(**batch).loss

    def plan_lines(self, enc, tokenizer, config) -> list[str]:
        """Lines the run's plan adds for this task."""
        return []

    # ------------------------------------------------------------------ evaluation and prediction
    def evaluate(self, model, enc: Encoded, tokenizer, batch_size: int) -> dict[str, float]:
        import llmnb.metrics as metrics
        from llmnb.finetuning.inference import forward_all

        logits, loss = forward_all(model, enc, batch_size, pad_id(tokenizer), self.float_targets)
        scores = metrics.compute(self.metrics, self.outputs_to_predictions(logits), enc.targets)
        return {"eval_loss": loss, **{f"eval_{k}": v for k, v in scores.items()}}

    def outputs_to_predictions(self, logits):
        return logits.argmax(-1).tolist()

    def predict(self, result, texts: list[str], batch_size: int, return_scores: bool, **options):
        import torch

        from llmnb.finetuning.inference import forward_all, warn_unknown_tokens

        enc = encode(result.tokenizer, texts, [0] * len(texts), result.config.max_length)
        warn_unknown_tokens(result.tokenizer, enc, texts)
        logits, _ = forward_all(result.model, enc, batch_size, pad_id(result.tokenizer), self.float_targets)
        values = result.labels.decode(self.outputs_to_predictions(logits))
        if not return_scores:
            return values, None
        probs = torch.softmax(logits, -1).tolist()
        return values, [dict(zip(result.labels.names, p)) for p in probs]

"""What differs between tasks: targets, batches, the head, the metrics, and how outputs read.

Each task is one object in the `TASKS` registry; the engine never branches on the task and
`finetune` only calls these methods. Adding a task means adding a class here.

    classification  text -> one of the labels     accuracy, macro-F1     (chapters 0, 4.3, 5)
    regression      text -> a number              MSE
    causal-lm       text -> the next tokens       perplexity             (chapters 3, 6)
    seq2seq         source text -> target text    BLEU, perplexity       (chapter 4.3 case 2)
"""
from __future__ import annotations

import math

from llmnb.errors import DataError
from llmnb.finetuning.batches import (
    Encoded,
    batch_order,
    collate,
    encode,
    tokenize_rows,
)
from llmnb.finetuning.data import LabelMap, encode_like, prepare_data


class Task:
    """Sequence classification: one label per text (the base the other tasks adapt)."""

    name = "classification"
    auto_class = "classification"  # key of models.AUTO_CLASSES
    metrics: tuple = ("accuracy", "f1")
    headline = "accuracy"
    greater_is_better = True
    float_targets = False
    uses_labels = True  # class names mapped to ids (LabelMap)
    needs_target_column = True
    eval_at_start = False  # evaluate the starting model too, as step 0 of the curve
    result_kind = "plain"  # "chat": the result can generate and chat (instruction tuning)
    samples: tuple = ()  # generated answers beside references at the last evaluation (instruction tuning)

    # ------------------------------------------------------------------ steps a task may change
    def prepare(self, data, eval, config) -> dict:
        """Read, check and split the data: texts and targets from the data's columns."""
        return prepare_data(data, eval, config, self)

    def prepare_tokenizer(self, tokenizer) -> None:
        """Adjust the tokenizer before anything is encoded (instruction tuning: a chat template)."""

    def before_training(self, model, encs, batch_size: int, pad_id: int) -> None:
        """A last look at the starting model (preference tuning: the reference log-probabilities)."""

    def resume_state(self, encs) -> dict | None:
        """What a checkpoint keeps for this task beyond weights and optimizer (JSON), or None."""
        return None

    def restore_resume_state(self, saved: dict, encs) -> None:
        """Put back what `resume_state` kept, in place of `before_training` (a resumed run)."""

    def batches(self, enc, config, epoch: int, pad_id: int):
        """The training batches of one epoch."""
        for rows in batch_order(enc.lengths, config.batch_size, True, config.seed + epoch, config.group_by_length):
            yield self.collate(enc, rows, pad_id)

    def compute_loss(self, model, batch):
        """The loss of one micro-batch."""
        return model(**batch).loss

    def plan_lines(self, enc, tokenizer, config) -> list[str]:
        """Lines the run's plan adds for this task."""
        return []

    def encode_like(self, result, data, text=None, label=None) -> Encoded:
        """New labelled data encoded the way `result` was trained (for `result.evaluate`)."""
        return encode_like(result, data, text, label)

    def make_targets(self, values, labels: LabelMap | None, what: str = "data"):
        """Column values -> what the model is trained on."""
        return labels.encode(values)

    def encode(self, tokenizer, texts, targets, max_length: int) -> Encoded:
        return encode(tokenizer, texts, targets, max_length)

    def collate(self, enc: Encoded, rows, pad_id: int) -> dict:
        return collate(enc, rows, pad_id, self.float_targets)

    def evaluate(self, model, enc: Encoded, tokenizer, batch_size: int) -> dict[str, float]:
        import llmnb.metrics as metrics
        from llmnb.finetuning.inference import forward_all

        logits, loss = forward_all(model, enc, batch_size, _pad_id(tokenizer), self.float_targets)
        scores = metrics.compute(self.metrics, self.outputs_to_predictions(logits), enc.targets)
        return {"eval_loss": loss, **{f"eval_{k}": v for k, v in scores.items()}}

    def outputs_to_predictions(self, logits):
        return logits.argmax(-1).tolist()

    def predict(self, result, texts: list[str], batch_size: int, return_scores: bool):
        import torch

        from llmnb.finetuning.inference import forward_all

        enc = encode(result.tokenizer, texts, [0] * len(texts), result.config.max_length)
        logits, _ = forward_all(result.model, enc, batch_size, _pad_id(result.tokenizer), self.float_targets)
        values = result.labels.decode(self.outputs_to_predictions(logits))
        if not return_scores:
            return values, None
        probs = torch.softmax(logits, -1).tolist()
        return values, [dict(zip(result.labels.names, p)) for p in probs]


class Regression(Task):
    name = "regression"
    metrics = ("mse",)
    headline = "mse"
    greater_is_better = False
    float_targets = True
    uses_labels = False

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

    def predict(self, result, texts, batch_size, return_scores):
        from llmnb.finetuning.inference import forward_all

        enc = encode(result.tokenizer, texts, [0.0] * len(texts), result.config.max_length)
        logits, _ = forward_all(result.model, enc, batch_size, _pad_id(result.tokenizer), True)
        return self.outputs_to_predictions(logits), None


class CausalLM(Task):
    """Next-token prediction on plain text: the model learns the language of the data."""

    name = "causal-lm"
    auto_class = "causal-lm"
    metrics = ()
    headline = "perplexity"
    greater_is_better = False
    uses_labels = False
    needs_target_column = False

    def make_targets(self, values, labels, what="data"):
        return [None] * len(values)

    def collate(self, enc, rows, pad_id):
        batch = collate(enc, rows, pad_id, with_labels=False)
        labels = batch["input_ids"].clone()
        labels[batch["attention_mask"] == 0] = -100  # no loss on padding
        batch["labels"] = labels
        return batch

    def evaluate(self, model, enc, tokenizer, batch_size):
        loss = _token_mean_loss(self, model, enc, _pad_id(tokenizer), batch_size)
        return {"eval_loss": loss, "eval_perplexity": math.exp(min(loss, 50.0))}

    def predict(self, result, texts, batch_size, return_scores, max_new_tokens: int = 40):
        return [generate(result.model, result.tokenizer, t, max_new_tokens=max_new_tokens) for t in texts], None


class Seq2Seq(Task):
    """Source text -> target text (translation, summarising, rewriting) with an encoder-decoder."""

    name = "seq2seq"
    auto_class = "seq2seq"
    metrics = ("bleu",)
    headline = "bleu"
    greater_is_better = True
    uses_labels = False
    eval_generate_limit = 200  # generating is slow: BLEU on at most this many eval examples

    def make_targets(self, values, labels, what="data"):
        return [str(v) for v in values]

    def encode(self, tokenizer, texts, targets, max_length):
        enc = encode(tokenizer, texts, targets, max_length)
        enc.target_ids = tokenize_rows(tokenizer, enc.targets, max_length, target=True)
        return enc

    def collate(self, enc, rows, pad_id):
        import torch

        batch = collate(enc, rows, pad_id, with_labels=False)
        batch["labels"] = torch.from_numpy(enc.target_ids.padded(rows, -100)[0])  # no loss on padding
        return batch

    def evaluate(self, model, enc, tokenizer, batch_size):
        import llmnb.metrics as metrics

        loss = _token_mean_loss(self, model, enc, _pad_id(tokenizer), batch_size)
        n = min(len(enc), self.eval_generate_limit)
        sources = tokenizer.batch_decode(enc.input_ids[:n].tolist(), skip_special_tokens=True)
        outputs = generate_batch(model, tokenizer, sources, max_new_tokens=int(enc.target_ids.lengths[:n].max(initial=0)) + 5)
        bleu = metrics.compute(["bleu"], outputs, enc.targets[:n])["bleu"]
        return {"eval_loss": loss, "eval_perplexity": math.exp(min(loss, 50.0)), "eval_bleu": bleu}

    def predict(self, result, texts, batch_size, return_scores, max_new_tokens: int = 64):
        return generate_batch(result.model, result.tokenizer, texts, max_new_tokens=max_new_tokens), None


def _pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


def _token_mean_loss(task, model, enc, pad_id, batch_size) -> float:
    """Mean loss per target token over all examples (not per batch: batches differ in length)."""
    import torch

    device = next(model.parameters()).device
    total, tokens = 0.0, 0
    with torch.no_grad():
        for rows in batch_order(enc.lengths, batch_size, shuffle=False, seed=0):
            batch = {k: v.to(device) for k, v in task.collate(enc, rows, pad_id).items()}
            n = int((batch["labels"] != -100).sum()) - (len(rows) if task.name == "causal-lm" else 0)
            total += float(model(**batch).loss) * max(n, 1)
            tokens += max(n, 1)
    return total / max(tokens, 1)


def generate(model, tokenizer, prompt: str, max_new_tokens: int = 40, temperature: float = 0.0, seed: int = 0) -> str:
    """The prompt continued by the model (greedy when temperature is 0)."""
    import torch

    device = next(model.parameters()).device
    # Encoded as the training texts were (a BERT-style tokenizer's leading [CLS] included), less the
    # end-of-text token such a tokenizer appends: with it, the model would only ever write nothing.
    encoded = tokenizer(prompt, return_tensors="pt")
    end = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    keep = encoded["input_ids"].shape[1] - (1 if end is not None and encoded["input_ids"].shape[1] > 1 and int(encoded["input_ids"][0, -1]) == end else 0)
    ids = {k: encoded[k][:, :keep].to(device) for k in ("input_ids", "attention_mask")}
    torch.manual_seed(seed)
    sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=max_new_tokens, pad_token_id=_pad_id(tokenizer), **sampling)
    return tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)


def generate_batch(model, tokenizer, texts, max_new_tokens: int = 64, batch_size: int = 32) -> list[str]:
    """Greedy outputs of an encoder-decoder for many source texts."""
    import torch

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    outputs = []
    try:
        with torch.no_grad():
            for start in range(0, len(texts), batch_size):
                batch = tokenizer(list(texts[start : start + batch_size]), return_tensors="pt", padding=True, truncation=True)
                inputs = {k: batch[k].to(device) for k in ("input_ids", "attention_mask")}  # BERT-style tokenizers add more
                out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
                outputs += tokenizer.batch_decode(out, skip_special_tokens=True)
    finally:
        model.train(was_training)
    return outputs


TASKS = {task.name: task for task in (Task(), Regression(), CausalLM(), Seq2Seq())}


def check_metric(task: Task, metric: str | None) -> None:
    """`metric` must be one the task computes at each evaluation (or the loss), caught before training."""
    if metric is None:
        return
    known = list(dict.fromkeys([task.headline, *task.metrics, "loss"]))
    if metric.removeprefix("eval_") not in known:
        import difflib

        from llmnb.errors import ConfigError

        close = [k for k in known if k.startswith(metric.lower())] or difflib.get_close_matches(metric, known, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"metric={metric!r} is not computed for task={task.name!r}; choose one of: {', '.join(known)}.{hint}")


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise DataError(f"task={name!r} is not known; choose one of: {', '.join(TASKS)}.")
    return TASKS[name]

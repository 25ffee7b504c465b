"""`task="causal-lm"`: next-token prediction on plain text; the model learns the language of the data.

    ft = llmnb.finetune("tiny-gpt2", stories, task="causal-lm")     # a text column, no labels
    ft.predict("Once upon a time")                                  # -> the continuation

Every token but padding is a target; the metric is perplexity, exp(mean loss per token)
(chapters 3 and 6). `token_mean_loss` and `continue_text` serve the other generative tasks too.
"""
from __future__ import annotations

from llmnb.core.models import eval_mode, pad_id
from llmnb.core.task import register
from llmnb.finetuning.batches import batch_order, collate
from llmnb.tasks.classification import Classification


@register
class CausalLM(Classification):
    """Next-token prediction on plain text."""

    name = "causal-lm"
    data_forms = ("a text column",)
    auto_class = "AutoModelForCausalLM"
    peft_task_type = "CAUSAL_LM"
    export_template = None  # tools/export.py's script for it
    metrics = ()
    headline = "perplexity"
    greater_is_better = False
    uses_labels = False
    needs_target_column = False
    generative = True
    pipeline_tag = "text-generation"
    does = "continues a text in the style of its training text"
    tuned_as = "fine-tuned as a language model"

    @classmethod
    def model_kwargs(cls, num_labels, id2label) -> dict:
        return {}

    def make_targets(self, values, labels, what="data"):
        return [None] * len(values)

    def collate(self, enc, rows, pad):
        batch = collate(enc, rows, pad, with_labels=False)
        labels = batch["input_ids"].clone()
        labels[batch["attention_mask"] == 0] = -100  # no loss on padding
        batch["labels"] = labels
        return batch

    def evaluate(self, model, enc, tokenizer, batch_size):
        from llmnb.metrics import perplexity

        loss = token_mean_loss(self, model, enc, pad_id(tokenizer), batch_size, shifted=True)
        return {"eval_loss": loss, "eval_perplexity": perplexity(loss)}

    def predict(self, result, texts, batch_size, return_scores, max_new_tokens: int = 40, **options):
        return [continue_text(result.model, result.tokenizer, t, max_new_tokens=max_new_tokens) for t in texts], None


def token_mean_loss(task, model, enc, pad: int, batch_size: int, shifted: bool) -> float:
    """Mean loss per target token over all examples (not per batch: batches differ in length).
    `shifted`: a causal LM predicts token t+1 from token t, so each row has one target fewer."""
    import torch

    device = next(model.parameters()).device
    total, tokens = 0.0, 0
    with torch.no_grad(), eval_mode(model):
        for rows in batch_order(enc.lengths, batch_size, shuffle=False, seed=0):
            batch = {k: v.to(device) for k, v in task.collate(enc, rows, pad).items()}
            n = int((batch["labels"] != -100).sum()) - (len(rows) if shifted else 0)
            total += float(model(**batch).loss) * max(n, 1)
            tokens += max(n, 1)
    return total / max(tokens, 1)


def continue_text(model, tokenizer, prompt: str, max_new_tokens: int = 40, temperature: float = 0.0, seed: int = 0) -> str:
    """The text the model writes after `prompt` (greedy when temperature is 0), without the prompt."""
    import torch

    device = next(model.parameters()).device
    # Encoded as the training texts were (a BERT-style tokenizer's leading [CLS] included), less the
    # end-of-text token such a tokenizer appends: with it, the model would only ever write nothing.
    encoded = tokenizer(prompt, return_tensors="pt")
    end = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    length = encoded["input_ids"].shape[1]
    keep = length - (1 if end is not None and length > 1 and int(encoded["input_ids"][0, -1]) == end else 0)
    ids = {k: encoded[k][:, :keep].to(device) for k in ("input_ids", "attention_mask")}
    torch.manual_seed(seed)
    sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
    with torch.no_grad(), eval_mode(model):
        out = model.generate(**ids, max_new_tokens=max_new_tokens, pad_token_id=pad_id(tokenizer), **sampling)
    return tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)

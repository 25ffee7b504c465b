"""`task="seq2seq"`: source text -> target text (translation, summarising, rewriting) with an
encoder-decoder (chapter 4's present -> past tense with `word-t5`).

    ft = llmnb.finetune(word_t5, "tense", task="seq2seq")    # a source column and a target column
    ft.predict("she walks home")                              # -> "she walked home"

The loss is on the target's tokens; each evaluation also writes greedy outputs for up to 200
validation examples and scores them with BLEU.
"""
from __future__ import annotations

from llmnb.core.models import eval_mode, pad_id
from llmnb.core.task import register
from llmnb.finetuning.batches import collate, encode, tokenize_rows
from llmnb.tasks.causal_lm import token_mean_loss
from llmnb.tasks.classification import Classification


@register
class Seq2Seq(Classification):
    """Source text -> target text."""

    name = "seq2seq"
    data_forms = ("a source text column and a target text column",)
    auto_class = "AutoModelForSeq2SeqLM"
    peft_task_type = "SEQ_2_SEQ_LM"
    export_template = None  # tools/export.py's script for it
    metrics = ("bleu",)
    headline = "bleu"
    greater_is_better = True
    uses_labels = False
    generative = True
    pipeline_tag = "text2text-generation"
    does = "turns an input text into an output text, as in its training pairs"
    tuned_as = "fine-tuned for text-to-text"
    eval_generate_limit = 200  # generating is slow: BLEU on at most this many eval examples

    @classmethod
    def model_kwargs(cls, num_labels, id2label) -> dict:
        return {}

    def make_targets(self, values, labels, what="data"):
        return [str(v) for v in values]

    def encode(self, tokenizer, texts, targets, max_length):
        enc = encode(tokenizer, texts, targets, max_length)
        enc.target_ids = tokenize_rows(tokenizer, enc.targets, max_length, target=True)
        return enc

    def collate(self, enc, rows, pad):
        import torch

        batch = collate(enc, rows, pad, with_labels=False)
        batch["labels"] = torch.from_numpy(enc.target_ids.padded(rows, -100)[0])  # no loss on padding
        return batch

    def evaluate(self, model, enc, tokenizer, batch_size):
        import llmnb.metrics as metrics

        loss = token_mean_loss(self, model, enc, pad_id(tokenizer), batch_size, shifted=False)
        n = min(len(enc), self.eval_generate_limit)
        sources = tokenizer.batch_decode(enc.input_ids[:n].tolist(), skip_special_tokens=True)
        outputs = translate(model, tokenizer, sources, max_new_tokens=int(enc.target_ids.lengths[:n].max(initial=0)) + 5)
        bleu = metrics.compute(["bleu"], outputs, enc.targets[:n])["bleu"]
        return {"eval_loss": loss, "eval_perplexity": metrics.perplexity(loss), "eval_bleu": bleu}

    def predict(self, result, texts, batch_size, return_scores, max_new_tokens: int = 64, **options):
        return translate(result.model, result.tokenizer, texts, max_new_tokens=max_new_tokens), None


def translate(model, tokenizer, texts, max_new_tokens: int = 64, batch_size: int = 32) -> list[str]:
    """Greedy outputs of an encoder-decoder for many source texts."""
    import torch

    device = next(model.parameters()).device
    outputs = []
    with torch.no_grad(), eval_mode(model):
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(list(texts[start:start + batch_size]), return_tensors="pt", padding=True, truncation=True)
            inputs = {k: batch[k].to(device) for k in ("input_ids", "attention_mask")}  # BERT-style tokenizers add more
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
            outputs += tokenizer.batch_decode(out, skip_special_tokens=True)
    return outputs

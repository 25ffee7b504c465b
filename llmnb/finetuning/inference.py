"""Running a model over many examples without gradients: for evaluation and prediction."""
from __future__ import annotations

import contextlib
import warnings

import torch

from llmnb.core.models import eval_mode
from llmnb.finetuning.batches import Encoded, batch_order, collate


@torch.no_grad()
def forward_all(model, enc: Encoded, batch_size: int, pad_id: int, float_targets=False, autocast_dtype=None):
    """Logits for every example, in the order given, and the mean loss over examples.

    Batches group similar lengths (less padding); results are put back in input order.
    """
    device = next(model.parameters()).device
    order = batch_order(enc.lengths, batch_size, shuffle=False, seed=0, group_by_length=True)
    logits_by_row, loss_total = {}, 0.0
    autocast = torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype else contextlib.nullcontext()
    with eval_mode(model):
        for rows in order:
            batch = {k: v.to(device) for k, v in collate(enc, rows, pad_id, float_targets).items()}
            try:
                with autocast:
                    out = model(**batch)
            except RuntimeError as error:
                if " out of memory" not in str(error) or batch_size == 1:
                    raise
                del batch
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                # Start over with half the batch: simpler than patching up a partial pass.
                return forward_all(model, enc, batch_size // 2, pad_id, float_targets, autocast_dtype)
            loss_total += float(out.loss) * len(rows)
            for r, logits in zip(rows, out.logits.float().cpu()):
                logits_by_row[r] = logits
    logits = torch.stack([logits_by_row[i] for i in range(len(enc))])
    return logits, loss_total / max(1, len(enc))


class UnknownTextWarning(UserWarning):
    """Most of a text's tokens are the tokenizer's unknown token: the model cannot read it."""


UNKNOWN_SHARE = 0.3  # a text with more [UNK] tokens than this share gets a warning


def warn_unknown_tokens(tokenizer, enc: Encoded, texts) -> None:
    """Say so when the model cannot read a text: MiniLM's English vocabulary has no 预, 训 or 练,
    so "预训练模型" becomes [UNK] [UNK] ... and its prediction is noise (chapters 0 and 1)."""
    unknown = getattr(tokenizer, "unk_token_id", None)
    if unknown is None:
        return
    special = set(getattr(tokenizer, "all_special_ids", [])) - {unknown}
    for i, text in enumerate(texts):
        ids = [t for t in enc.input_ids[i].tolist() if t not in special]
        if ids and sum(t == unknown for t in ids) / len(ids) > UNKNOWN_SHARE:
            count = sum(t == unknown for t in ids)
            warnings.warn(
                f"{count} of the {len(ids)} tokens of {str(text)[:40]!r} are {tokenizer.unk_token}: this model's vocabulary "
                "does not have those characters, so it cannot read them and its prediction says nothing. For Chinese "
                "text use a model that reads it (online: bert-base-chinese, hfl/chinese-macbert-base, or the multilingual "
                "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2).", UnknownTextWarning, stacklevel=4)
            return

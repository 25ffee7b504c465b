"""Which tokens instruction tuning trains on, shown before any training.

    llmnb.show_masking(tokenizer, "instructions", n=3)   # one row per token: example, position, token, trained

The most common silent mistake in instruction tuning is a wrong mask: the prompt trained as if
it were the answer, the end-of-text token masked (the model never stops), or every answer token
cut away by truncation. The table makes the mask visible to learners and testable; a run's plan
prints the share of tokens trained and one example with its untrained part in grey
(`llmnb.tasks.sft.plan_lines`; chapter 10).
"""
from __future__ import annotations

from llmnb.errors import DataError
from llmnb.instruct.chat import IGNORE


def show_masking(model_or_tokenizer, data, n: int = 3, max_length: int = 128, train_on_prompt: bool = False, task: str = "sft"):
    """A DataFrame with one row per token of the first `n` examples of `data`:
    example, position, token, id, trained (True where the loss covers the token).

    model_or_tokenizer: a tokenizer, a `LoadedModel`, a fine-tune or pretrain result, or a model name.
    data: instruction data in any form `finetune(task='sft')` takes (or preference data with task='dpo',
    where each pair gives two examples: chosen, then rejected).

    Taught in chapter 10 (tutorials/10_assistant.ipynb).
    """
    import pandas as pd

    from llmnb.finetuning.config import FineTuneConfig
    from llmnb.finetuning.data import to_frame
    from llmnb.core.task import make_task

    if not isinstance(n, int) or n < 1:
        raise DataError(f"n={n!r} must be a whole number of examples, at least 1.")
    tokenizer = _tokenizer_of(model_or_tokenizer, task)
    options = {"train_on_prompt": True} if train_on_prompt else {}  # an sft option: dpo does not read it
    config = FineTuneConfig(task=task, max_length=max_length, save_checkpoints=False, **options)
    chat_task = make_task(config)
    chat_task.prepare_tokenizer(tokenizer)
    frame = to_frame(data, "data").head(n)
    examples = chat_task.read(frame, None, "data")
    encoded = chat_task.encode(tokenizer, [e[0] for e in examples], [e[1] for e in examples], max_length)
    rows = []
    views = [("", encoded.input_ids, encoded.target_ids)]
    if hasattr(encoded, "rejected_ids"):
        views = [(" chosen", encoded.input_ids, encoded.target_ids), (" rejected", encoded.rejected_ids, encoded.rejected_labels)]
    for example in range(len(encoded)):
        for suffix, ids_rows, label_rows in views:
            ids, labels = ids_rows[example].tolist(), label_rows[example].tolist()
            for position, (token_id, label) in enumerate(zip(ids, labels)):
                rows.append({
                    "example": f"{example}{suffix}" if suffix else example, "position": position,
                    "token": tokenizer.convert_ids_to_tokens(token_id), "id": token_id, "trained": label != IGNORE,
                })
    return pd.DataFrame(rows)


def _tokenizer_of(source, task):
    if hasattr(source, "apply_chat_template"):
        import copy

        return copy.deepcopy(source)  # a template may be set on it: the caller's stays as it was
    if hasattr(source, "tokenizer"):
        import copy

        return copy.deepcopy(source.tokenizer)
    if isinstance(source, str):
        from llmnb.core.models import load_model

        return load_model(source, task=task).tokenizer
    raise DataError(f"show_masking needs a tokenizer, a model name or a result, not a {type(source).__name__}.")

"""Prompts to be completed (learning from rewards): the data forms, and prompts as token rows.

    examples = read_prompts(frame, "training data")          # (messages, {"row", "columns", ...})
    enc = encode_prompts(tokenizer, examples, room=96)       # PromptsEncoded: ids, messages, columns

Data: a `prompt` column (text or a list of messages) plus any other columns, which the rewards
receive by name; or instruction (+ input) + output, whose output becomes the `answer` column. A
prompt is rendered with the chat template and its generation prompt, so completions start where
an assistant's answer would (chapter 11).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from llmnb.errors import DataError
from llmnb.instruct import chat


def prompt_form(columns, what: str) -> str:
    """"prompt" or "instruction": which form the columns hold; a clear error for neither."""
    columns = list(columns)
    if "prompt" in columns:
        return "prompt"
    if "instruction" in columns and "output" in columns:
        return "instruction"
    raise DataError(
        f"Learning from rewards needs a 'prompt' column (text or a list of messages), plus any columns the rewards "
        f"read (e.g. 'answer' for exact_match); or instruction (+ input) + output, whose output is read as the answer. "
        f"The {what}'s columns are: {', '.join(map(str, columns))}."
    )


def read_prompts(frame, what: str) -> list[tuple]:
    """(prompt messages, {"row", "columns", "reference", "what"}) per row of `frame`."""
    form = prompt_form(frame.columns, what)
    examples = []
    for row, record in enumerate(frame.to_dict("records")):
        try:
            if form == "prompt":
                prompt = chat.as_messages(record.pop("prompt"), "user")
            else:
                conversation = chat.to_conversation(record, "instruction")
                others = {k: v for k, v in record.items() if k not in ("instruction", "input", "output")}
                prompt, record = chat.prompt_of(conversation), {"answer": record["output"], **others}
        except DataError as e:
            raise DataError(f"Row {row} of the {what}: {e}") from None
        examples.append((prompt, {"row": row, "columns": record, "reference": record.get("answer"), "what": what}))
    return examples


@dataclass
class PromptsEncoded:
    """Prompts as token ids (ending where the answer starts), and each row's other columns."""

    prompt_ids: list
    prompts: list  # the messages, for the samples table
    columns: list  # one dict per prompt: the data's other columns (the rewards' keyword arguments)
    targets: list = field(default_factory=list)  # the `answer` column where there is one

    def __len__(self):
        return len(self.prompt_ids)

    @property
    def lengths(self):
        import numpy as np

        return np.array([len(r) for r in self.prompt_ids])


def encode_prompts(tokenizer, prompts, targets, room: int) -> PromptsEncoded:
    """Each prompt in the chat template with its generation prompt, as at most `room` tokens (a long
    prompt keeps its end, where the question is)."""
    ids = []
    for messages, target in zip(prompts, targets):
        try:
            text = chat.render(tokenizer, messages, add_generation_prompt=True)
        except DataError as e:
            raise DataError(f"Row {target['row']} of the {target['what']}: {e}") from None
        ids.append(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"][-room:])
    return PromptsEncoded(ids, list(prompts), [t["columns"] for t in targets], [t["reference"] for t in targets])

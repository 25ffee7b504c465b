"""Conversations: the three data forms, the chat template, and which tokens a model is trained on.

    conversation = to_conversation({"prompt": "Who had the ball?", "completion": "Mia."})
    ids, labels = tokenize_conversation(tokenizer, conversation, max_length=128)

Instruction tuning trains on the assistant's words only: the prompt is given, not predicted.
The template turns messages into one text; the assistant turns' character spans are found by
rendering the conversation up to each of them, so this works with any model's own template
(SmolLM2's, Qwen2.5's) and with llmnb's default. Every assistant turn ends with the end-of-text
token and that token is trained, also when padding uses the same token: a model that never learns
to emit it never stops (chapter 10).
"""
from __future__ import annotations

import json

from llmnb.core.chat_template import DEFAULT_CHAT_TEMPLATE  # set on a tokenizer without one; save() keeps it
from llmnb.errors import DataError

IGNORE = -100  # the label of a token the loss skips (the prompt, padding)
GREY, RESET = "\x1b[90m", "\x1b[0m"  # grey in a terminal and in notebook output alike

ROLES = ("system", "user", "assistant")

# The data forms, found by column names (as text and label columns are for classification).
FORMS = {
    "messages": ("messages",),
    "prompt-completion": ("prompt", "completion"),
    "instruction": ("instruction", "output"),
}


def ensure_chat_template(tokenizer) -> bool:
    """Give `tokenizer` llmnb's default template when it has none; True when it was set."""
    if getattr(tokenizer, "chat_template", None):
        return False
    if tokenizer.eos_token is None:
        raise DataError("The tokenizer has no end-of-sequence token, so an answer could never end. Set tokenizer.eos_token first.")
    tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
    return True


def find_form(columns) -> str:
    """Which data form the columns hold: messages, prompt-completion or instruction."""
    columns = list(columns)
    for form, needed in FORMS.items():
        if all(c in columns for c in needed):
            return form
    raise DataError(
        f"Instruction tuning needs one of these column sets: 'messages' (a list of {{role, content}}), "
        f"'prompt' + 'completion', or 'instruction' + 'output' (+ optional 'input'). The data's columns are: "
        f"{', '.join(columns)}."
    )


def to_conversation(row: dict, form: str | None = None) -> list[dict]:
    """One example (a dict of column values) as a list of {role, content} messages."""
    form = form or find_form(row)
    if form == "messages":
        messages = row["messages"]
        if isinstance(messages, str):
            try:
                messages = json.loads(messages)
            except json.JSONDecodeError:
                raise DataError(f"A 'messages' value is text that is not JSON: {messages[:80]!r}") from None
        return check_messages(messages)
    if form == "prompt-completion":
        return as_messages(row["prompt"], "user") + as_messages(row["completion"], "assistant")
    given = row.get("input")
    context = "" if given is None or (isinstance(given, float) and given != given) else str(given).strip()
    user = f"{context}\n\n{row['instruction']}" if context else str(row["instruction"])
    return [{"role": "user", "content": user}, {"role": "assistant", "content": str(row["output"])}]


def as_messages(value, role: str) -> list[dict]:
    """A plain string as one message of `role`; a list of messages as it is (checked)."""
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    if isinstance(value, (list, tuple)):
        return check_messages(value)
    raise DataError(f"Expected text or a list of messages, got a {type(value).__name__}: {str(value)[:80]!r}")


def check_messages(messages) -> list[dict]:
    if not isinstance(messages, (list, tuple)) or not messages:
        raise DataError(f"'messages' must be a non-empty list of {{'role', 'content'}} dicts, got {str(messages)[:80]!r}.")
    out = []
    for m in messages:
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise DataError(f"Each message needs a 'role' and a 'content': {str(m)[:80]!r}")
        if m["role"] not in ROLES:
            raise DataError(f"Message role {m['role']!r} is not one of {', '.join(ROLES)}.")
        out.append({"role": m["role"], "content": str(m["content"])})
    return out


def render(tokenizer, messages, add_generation_prompt: bool = False) -> str:
    """The conversation as the model reads it (the tokenizer's chat template, as text)."""
    from jinja2.exceptions import TemplateError, TemplateSyntaxError

    try:
        return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=add_generation_prompt)
    except TemplateSyntaxError:
        raise  # a broken template is no fault of the data: jinja's own error points at its line
    except TemplateError as error:
        # A template may refuse a conversation on purpose (Gemma's says "System role not supported"
        # through raise_exception): the data's fault, so a DataError in the template's own words.
        raise DataError(
            f"The model's chat template refuses this conversation: {error}. Change those messages (e.g. put a "
            "system message's text at the start of the first user message) or use a model whose template accepts them."
        ) from None


def trained_spans(tokenizer, messages, train_on_prompt: bool = False) -> tuple[str, list[tuple[int, int]]]:
    """(text, character spans the loss covers): each assistant turn, from the end of the
    generation prompt that precedes it to the end of the turn (its end-of-text token included)."""
    text = render(tokenizer, messages)
    if train_on_prompt:
        return text, [(0, len(text))]
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = render(tokenizer, messages[:i], add_generation_prompt=True)
        turn = render(tokenizer, messages[: i + 1])
        if not text.startswith(turn) or not turn.startswith(prompt):
            raise DataError(
                "The tokenizer's chat template renders a conversation differently from its beginning, so the "
                "answer tokens cannot be told apart. Pass train_on_prompt=True (--train-on-prompt) to train on every token."
            )
        spans.append((len(prompt), len(turn)))
    return text, spans


def tokenize_conversation(tokenizer, messages, max_length: int, train_on_prompt: bool = False):
    """(ids, labels) of one conversation, truncated to `max_length` tokens; labels are the ids
    where the loss applies and IGNORE elsewhere. The first token is never a label (nothing
    predicts it), so rows packed side by side give the same loss as rows apart."""
    text, spans = trained_spans(tokenizer, messages, train_on_prompt)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, truncation=True, max_length=max_length)
    ids = encoded["input_ids"]
    labels = [
        token if any(lo <= start < hi for lo, hi in spans) else IGNORE
        for token, (start, _end) in zip(ids, encoded["offset_mapping"])
    ]
    if labels:
        labels[0] = IGNORE
    return ids, labels


def prompt_of(messages) -> list[dict]:
    """The conversation up to (not including) its last assistant turn: what generation starts from."""
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=len(messages))
    return list(messages[:last])


def reference_of(messages) -> str | None:
    """The last assistant turn's text: the reference answer."""
    answers = [m["content"] for m in messages if m["role"] == "assistant"]
    return answers[-1] if answers else None


def masked_example(tokenizer, ids, labels, grey: bool = True) -> str:
    """One example's text with its untrained part grey (ANSI), or in [brackets] when grey=False."""
    pieces, current, run = [], None, []
    for token_id, label in zip(ids, labels):
        trained = label != IGNORE
        if current is not None and trained != current:
            pieces.append((current, tokenizer.decode(run)))
            run = []
        current = trained
        run.append(token_id)
    if run:
        pieces.append((current, tokenizer.decode(run)))
    if grey:
        return "".join(text if trained else f"{GREY}{text}{RESET}" for trained, text in pieces)
    return "".join(text if trained else f"[{text}]" for trained, text in pieces)

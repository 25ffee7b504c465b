"""Answers from a chat model: many at once for evaluation, or one streamed into the cell.

    answers = generate_answers(model, tokenizer, [conversation, ...])      # greedy, batched
    text = chat_reply(model, tokenizer, messages, stream=True)             # printed as it comes

Both render the conversation with the chat template and its generation prompt, and stop at the
end-of-text token (the one instruction tuning taught the model to write). Both return only the
answer, without the prompt and stripped of surrounding spaces: the convention of every generate
in llmnb (`llmnb.generate` returns the continuation only, too).
"""
from __future__ import annotations

from llmnb.core.models import context_limit, eval_mode, pad_id
from llmnb.errors import ConfigError
from llmnb.instruct.chat import render


def stop_ids(model, tokenizer) -> list[int]:
    """Tokens that end an answer: the tokenizer's end-of-text and the model's own (e.g. <|im_end|>)."""
    ids = model.generation_config.eos_token_id if getattr(model, "generation_config", None) else None
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def _encode_prompts(tokenizer, conversations, room: int | None):
    texts = [render(tokenizer, messages, add_generation_prompt=True) for messages in conversations]
    # verbose=False: a prompt longer than the context is expected (cut below), so no transformers warning in the cell.
    ids = [tokenizer(t, add_special_tokens=False, verbose=False)["input_ids"] for t in texts]
    return [row[-room:] if room else row for row in ids]  # a prompt longer than the context keeps its end


def generate_answers(model, tokenizer, conversations, max_new_tokens: int = 32, batch_size: int = 32) -> list[str]:
    """Greedy answers to each conversation (a list of messages ending with a user turn), without the prompts."""
    import torch

    limit = context_limit(model)
    rows = _encode_prompts(tokenizer, conversations, limit - max_new_tokens if limit else None)
    device = next(model.parameters()).device
    pad = pad_id(tokenizer)
    answers = []
    with torch.no_grad(), eval_mode(model):
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            width = max(map(len, chunk))
            # Left padding: every prompt ends at the same position, where generation starts.
            ids = torch.tensor([[pad] * (width - len(r)) + r for r in chunk], device=device)
            mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in chunk], device=device)
            out = model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                pad_token_id=pad, eos_token_id=stop_ids(model, tokenizer),
            )
            answers += tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)
    return [a.strip() for a in answers]


def chat_reply(model, tokenizer, messages, max_new_tokens: int = 64, temperature: float = 0.0, top_p: float = 1.0,
               seed: int = 0, stream: bool = True) -> str:
    """The model's answer to `messages`; with `stream`, printed token by token as it is written."""
    import torch
    from transformers import TextStreamer

    if temperature < 0:
        raise ConfigError(f"temperature={temperature} must be >= 0 (0 picks the likeliest token).")
    if not 0 < top_p <= 1:
        raise ConfigError(f"top_p={top_p} must be in (0, 1]: the share of probability mass sampled from.")
    limit = context_limit(model)
    if limit and max_new_tokens >= limit:
        raise ConfigError(f"max_new_tokens={max_new_tokens} does not fit this model's context of {limit} tokens.")
    row = _encode_prompts(tokenizer, [messages], limit - max_new_tokens if limit else None)[0]
    device = next(model.parameters()).device
    ids = torch.tensor([row], device=device)
    sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else {"do_sample": False}
    streamer = TextStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True) if stream else None
    torch.manual_seed(seed)
    with torch.no_grad(), eval_mode(model):
        out = model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens, streamer=streamer,
            pad_token_id=pad_id(tokenizer), eos_token_id=stop_ids(model, tokenizer), **sampling,
        )
    return tokenizer.decode(out[0, len(row) :], skip_special_tokens=True).strip()

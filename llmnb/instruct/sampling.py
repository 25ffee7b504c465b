"""Sampling groups of completions and scoring their tokens: what learning from rewards runs on.

    c = sample_completions(model, tokenizer, prompt_ids, prompt_mask, num_generations=8,
                           temperature=1.0, max_new_tokens=32, seed=0)
    c.texts                                   # prompts x 8 completions, as text
    logps = completion_logps(model, c, 1.0)   # log-probability of each completion token

Prompts come left-padded (they all end where generation starts). Generation stops at the
end-of-text token, which belongs to the completion (the model must learn to stop); a completion
that reaches max_new_tokens without it is truncated. The random stream of one call comes from
its own `seed`, not from the global generator, so a resumed run samples what the uninterrupted
one sampled.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Completions:
    """prompts x G completions: token ids beside their prompts, which tokens count, the text."""

    prompt_ids: object  # (rows, prompt width), left-padded; each prompt repeated G times
    prompt_mask: object
    completion_ids: object  # (rows, completion width), padded after the end-of-text token
    completion_mask: object  # 1 on the completion's tokens, its end-of-text token included
    truncated: object  # (rows,) bool: no end-of-text token within max_new_tokens
    texts: list

    def scored_mask(self, mask_truncated: bool = False):
        """The tokens the loss covers: every completion token, or none of a truncated completion."""
        if not mask_truncated:
            return self.completion_mask
        return self.completion_mask * (~self.truncated).unsqueeze(1).to(self.completion_mask.dtype)


def left_padded(rows, pad: int):
    """(ids, attention mask) of token rows, each ending at the same position, where generation starts."""
    import torch

    width = max(map(len, rows))
    ids = torch.tensor([[pad] * (width - len(r)) + list(r) for r in rows], dtype=torch.long)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], dtype=torch.long)
    return ids, mask


def sample_completions(model, tokenizer, prompt_ids, prompt_mask, num_generations: int, temperature: float,
                       max_new_tokens: int, seed: int = 0, top_p: float = 1.0) -> Completions:
    """`num_generations` completions of each prompt (temperature 0: one greedy completion each)."""
    import torch

    from llmnb.core.models import eval_mode, pad_id
    from llmnb.instruct.generation import stop_ids

    device = next(model.parameters()).device
    ids = prompt_ids.to(device).repeat_interleave(num_generations, dim=0)
    mask = prompt_mask.to(device).repeat_interleave(num_generations, dim=0)
    stops = stop_ids(model, tokenizer)
    pad = pad_id(tokenizer)
    sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": 0} if temperature > 0 else {"do_sample": False}
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.no_grad(), eval_mode(model), torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, pad_token_id=pad,
                             eos_token_id=stops, **sampling)
    completion = out[:, ids.shape[1]:]
    is_stop = torch.zeros_like(completion, dtype=torch.bool)
    for stop in stops:
        is_stop |= completion == stop
    # Tokens up to and including the first stop token; generate pads after it.
    seen_stop_before = (is_stop.long().cumsum(1) - is_stop.long()) > 0
    completion_mask = (~seen_stop_before).long()
    truncated = ~is_stop.any(1)
    texts = [t.strip() for t in tokenizer.batch_decode(completion * completion_mask + pad * (1 - completion_mask),
                                                       skip_special_tokens=True)]
    return Completions(ids, mask, completion, completion_mask, truncated, texts)


def completion_logps(model, completions: Completions, temperature: float = 1.0):
    """log pi(token | prompt, earlier tokens) of each completion token (rows x completion width),
    from logits divided by the sampling temperature: the distribution the tokens were drawn from."""
    import torch

    c = completions
    ids = torch.cat([c.prompt_ids, c.completion_ids], dim=1)
    mask = torch.cat([c.prompt_mask, c.completion_mask], dim=1)
    # Positions count real tokens only, as generate counted them for the left-padded prompts.
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    width = c.completion_ids.shape[1]
    # Only the last width + 1 positions predict completion tokens: asking for just those logits keeps
    # the (rows x prompt length x vocabulary) tensor of the prompt positions out of memory.
    keep = {"logits_to_keep": width + 1} if _keeps_logits(model) else {}
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, **keep).logits
    logits = logits[:, -width - 1 : -1].float()
    if temperature and temperature != 1.0:
        logits = logits / temperature
    return torch.gather(logits.log_softmax(-1), 2, c.completion_ids.unsqueeze(-1)).squeeze(-1)


def _keeps_logits(model) -> bool:
    """Whether the model's forward takes `logits_to_keep` (transformers' causal LMs do; a LoRA
    wrapper passes it on to the model it wraps)."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(base.forward).parameters


def dropout_off(model) -> None:
    """The old and new log-probabilities of a completion must come from the same function:
    dropout would make them differ at random (TRL turns it off too)."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


def greedy_completions(model, tokenizer, prompt_rows, max_new_tokens: int, batch_size: int) -> list[str]:
    """The greedy completion of each prompt (token rows), as text, in batches of `batch_size`."""
    from llmnb.core.models import pad_id

    texts = []
    pad = pad_id(tokenizer)
    for start in range(0, len(prompt_rows), batch_size):
        ids, mask = left_padded(prompt_rows[start : start + batch_size], pad)
        texts += sample_completions(model, tokenizer, ids, mask, 1, 0.0, max_new_tokens, seed=0).texts
    return texts

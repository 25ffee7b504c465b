"""The GPT itself: built from a config with random weights, sampled from, and scored on held-out text.

    model = build_model(tokenizer, config)           # GPT-2 architecture, seeded
    generate(model, tokenizer, "Once upon a time")   # the sampled continuation (without the prompt)
    evaluate_blocks(model, blocks, 32)               # {"eval_loss", "eval_perplexity"}

Perplexity is exp(mean validation loss per token): "as unsure as a choice among that many
tokens". An untrained model is about as unsure as a uniform guess, so it starts near the
vocabulary size (chapter 3).
"""
from __future__ import annotations

from llmnb.core.models import eval_mode, pad_id
from llmnb.errors import ConfigError, DataError
from llmnb.pretraining.tokenizer import EOS


def pack(ids: list[int], block_size: int):
    """A (blocks, block_size) LongTensor of consecutive tokens (the ragged end is dropped)."""
    import torch

    n = len(ids) // block_size
    return torch.tensor(ids[: n * block_size], dtype=torch.long).view(n, block_size)


def build_model(tokenizer, config):
    """A GPT-2 architecture of the configured size with random weights (seeded)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from llmnb.core.models import quiet_transformers

    eos = tokenizer.convert_tokens_to_ids(EOS)
    gpt_config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=config.block_size,
        n_embd=config.width,
        n_layer=config.layers,
        n_head=config.heads,
        resid_pdrop=config.dropout,
        embd_pdrop=config.dropout,
        attn_pdrop=config.dropout,
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=eos,
    )
    torch.manual_seed(config.seed)
    with quiet_transformers():
        return GPT2LMHeadModel(gpt_config)


def evaluate_blocks(model, blocks, batch_size: int) -> dict[str, float]:
    """Mean next-token loss over the validation blocks, and its exponential, the perplexity."""
    import torch

    device = next(model.parameters()).device
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(blocks), batch_size):
            x = blocks[start : start + batch_size].to(device)
            loss = model(input_ids=x, attention_mask=torch.ones_like(x), labels=x).loss.float()
            n = x.shape[0] * (x.shape[1] - 1)  # predicted tokens: all but each block's first
            total += float(loss) * n
            count += n
    loss = total / max(count, 1)
    from llmnb.metrics import perplexity

    return {"eval_loss": loss, "eval_perplexity": perplexity(loss)}


def generate(model, tokenizer, prompt: str = "", max_new_tokens: int = 40, temperature: float = 0.8, seed: int = 0, top_k: int | None = None, context: int | None = None) -> str:
    """Sample a continuation of `prompt` token by token; returns only the new text, without the prompt.

    Every generate in llmnb returns only what the model wrote (`ChatResult.generate`, the sft task's
    answers too); print `prompt + generate(...)` to read the whole. The continuation keeps its
    leading space, so the sum reads as the model saw it. Stops early at the end-of-text token.

    Taught in chapter 3 (tutorials/03_algorithm.ipynb) and chapter 6 (tutorials/06_applications.ipynb).
    """
    import torch

    if not isinstance(prompt, str):
        raise DataError(f"prompt must be a string, not a {type(prompt).__name__}.")
    if temperature < 0:
        raise ConfigError(f"temperature={temperature} must be >= 0 (0 picks the likeliest token).")
    eos = tokenizer.convert_tokens_to_ids(EOS)
    context = context or model.config.n_positions
    # As at the start of a document. verbose=False: a prompt longer than the context is expected
    # (the loop below reads its last `context` tokens), so no transformers warning in the cell.
    ids = [eos] + tokenizer(prompt, add_special_tokens=False, verbose=False)["input_ids"]
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    new: list[int] = []
    with eval_mode(model):
        with torch.no_grad():
            for _ in range(max_new_tokens):
                window = torch.tensor([(ids + new)[-context:]], device=device)
                logits = model(input_ids=window, attention_mask=torch.ones_like(window)).logits[0, -1].float().cpu()
                if temperature == 0:
                    token = int(logits.argmax())
                else:
                    logits = logits / temperature
                    if top_k:
                        cutoff = torch.topk(logits, min(top_k, logits.numel())).values[-1]
                        logits = logits.masked_fill(logits < cutoff, float("-inf"))
                    token = int(torch.multinomial(torch.softmax(logits, -1), 1, generator=generator))
                if token == eos:
                    break
                new.append(token)
    return tokenizer.decode(new, skip_special_tokens=True)


def perplexity(model, tokenizer, texts, max_length: int = 64, batch_size: int = 32) -> float:
    """Perplexity of a causal language model on `texts`: exp(mean next-token loss) (chapters 3 and 6).

    Each text is scored on its own, truncated to `max_length` tokens; lower means the texts
    surprise the model less. Works for any transformers causal LM and its tokenizer.
    """
    import torch

    from llmnb.metrics import perplexity as perplexity_of

    texts = [texts] if isinstance(texts, str) else [str(t) for t in texts]
    if not texts:
        raise DataError("perplexity() needs at least one text.")
    rows = tokenizer(texts, truncation=True, max_length=max_length, return_attention_mask=False,
                     return_token_type_ids=False)["input_ids"]
    device = next(model.parameters()).device
    total, predicted = 0.0, 0
    with torch.no_grad(), eval_mode(model):
        for start in range(0, len(rows), batch_size):
            batch = rows[start:start + batch_size]
            width = max(len(r) for r in batch)
            ids = torch.full((len(batch), width), pad_id(tokenizer), dtype=torch.long)
            mask = torch.zeros_like(ids)
            for i, r in enumerate(batch):
                ids[i, :len(r)], mask[i, :len(r)] = torch.tensor(r), 1
            labels = ids.masked_fill(mask == 0, -100)  # no loss on padding
            n = int(mask.sum()) - len(batch)  # predicted tokens: all but each text's first
            loss = model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device)).loss
            total += float(loss) * max(n, 1)
            predicted += max(n, 1)
    return perplexity_of(total / max(predicted, 1))

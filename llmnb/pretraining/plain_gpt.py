"""A GPT in plain torch, readable top to bottom, that runs the weights `llmnb.pretrain` trained.

    plain = PlainGPT.from_transformers(gpt.model)   # a GPT2LMHeadModel's weights, copied
    logits, cache = plain(ids)                      # the same logits as gpt.model(ids).logits
    logits, cache = plain(next_ids, cache)          # one more token, reusing the keys and values
    plain.generate(ids, 40, temperature=0.8, top_k=50, top_p=0.9)

Taught in chapter 3b (tutorials/03b_inside_gpt.ipynb), which builds every piece by hand first.
The model is GPT-2's: token and position embeddings, then blocks of (layer norm -> causal
self-attention -> residual add, layer norm -> MLP -> residual add), a last layer norm, and an
output layer that reuses the token embedding matrix. The cache is a list with one (keys, values)
pair per block: a new token only needs its own query, and the keys and values of every token
before it, which do not change once computed.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from llmnb.errors import ConfigError


def causal_attention(q, k, v, scale: bool = True):
    """softmax(q k^T / sqrt(d_k)) v, where each query sees only keys at its own position or before.

    q: (..., T_q, d_k); k, v: (..., T_k, d_k) with T_k >= T_q. The queries are the last T_q
    positions of the T_k (with a cache, T_q = 1 and the keys include every earlier token).
    `scale=False` drops the 1/sqrt(d_k), to measure what it is for.

    Taught in chapter 3b (tutorials/03b_inside_gpt.ipynb)."""
    t_q, t_k = q.shape[-2], k.shape[-2]
    scores = q @ k.transpose(-2, -1)
    if scale:
        scores = scores / math.sqrt(q.shape[-1])
    # query i sits at absolute position t_k - t_q + i and may look at keys 0 .. that position
    allowed = torch.ones(t_q, t_k, dtype=torch.bool, device=q.device).tril(diagonal=t_k - t_q)
    scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


class Block(nn.Module):
    """One transformer block: x + attention(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, width: int, heads: int, eps: float = 1e-5):
        super().__init__()
        self.heads = heads
        self.norm_1 = nn.LayerNorm(width, eps=eps)
        self.qkv = nn.Linear(width, 3 * width)   # queries, keys and values of every head at once
        self.out = nn.Linear(width, width)       # mixes the heads' outputs back into the stream
        self.norm_2 = nn.LayerNorm(width, eps=eps)
        self.up = nn.Linear(width, 4 * width)
        self.down = nn.Linear(4 * width, width)

    def forward(self, x, past=None):
        batch, t, width = x.shape
        q, k, v = self.qkv(self.norm_1(x)).split(width, dim=-1)
        # (batch, t, width) -> (batch, heads, t, width / heads): each head attends on its own slice
        q, k, v = (z.view(batch, t, self.heads, width // self.heads).transpose(1, 2) for z in (q, k, v))
        if past is not None:  # the keys and values of the tokens before these
            k, v = torch.cat([past[0], k], dim=-2), torch.cat([past[1], v], dim=-2)
        y = causal_attention(q, k, v).transpose(1, 2).reshape(batch, t, width)
        x = x + self.out(y)
        x = x + self.down(F.gelu(self.up(self.norm_2(x)), approximate="tanh"))  # GPT-2's "gelu_new"
        return x, (k, v)


class PlainGPT(nn.Module):
    """GPT-2 in ~40 lines of torch: `forward(ids, cache) -> (logits, cache)`; `from_transformers(model)`
    copies a GPT2LMHeadModel's weights into it. Taught in chapter 3b (tutorials/03b_inside_gpt.ipynb)."""

    def __init__(self, vocab_size: int, context: int, width: int, layers: int, heads: int, eps: float = 1e-5):
        super().__init__()
        if width % heads:
            raise ConfigError(f"width={width} is not a multiple of heads={heads}.")
        self.context = context
        self.tokens = nn.Embedding(vocab_size, width)     # one vector per token of the vocabulary
        self.positions = nn.Embedding(context, width)     # one vector per position 0 .. context-1
        self.blocks = nn.ModuleList(Block(width, heads, eps) for _ in range(layers))
        self.norm = nn.LayerNorm(width, eps=eps)

    def forward(self, ids, cache=None):
        """Logits (batch, t, vocab) for token ids (batch, t) that follow the cached tokens, and the new cache."""
        start = 0 if cache is None else cache[0][0].shape[-2]
        if start + ids.shape[1] > self.context:
            raise ConfigError(f"{start + ids.shape[1]} tokens exceed the model's context of {self.context}.")
        x = self.tokens(ids) + self.positions(torch.arange(start, start + ids.shape[1], device=ids.device))
        new_cache = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, None if cache is None else cache[i])
            new_cache.append(kv)
        return self.norm(x) @ self.tokens.weight.T, new_cache  # the output layer is the embedding, transposed

    @torch.no_grad()
    def generate(self, ids, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, use_cache: bool = True, generator=None):
        """`ids` (batch, t) followed by `max_new_tokens` tokens: greedy when temperature is 0, else
        sampled from filter_logits(...) with torch.multinomial. Without the cache every step runs
        the whole sequence again; the tokens are the same, only slower."""
        logits, cache = self(ids)
        for step in range(max_new_tokens):
            scores = filter_logits(logits[:, -1].float(), temperature, top_k, top_p)
            if temperature == 0:
                token = scores.argmax(-1, keepdim=True)
            else:
                token = torch.multinomial(torch.softmax(scores, -1), 1, generator=generator)
            ids = torch.cat([ids, token], dim=1)
            if step + 1 < max_new_tokens:
                logits, cache = self(token, cache) if use_cache else self(ids)
        return ids

    @classmethod
    def from_transformers(cls, model) -> "PlainGPT":
        """A PlainGPT holding a copy of a transformers GPT2LMHeadModel's weights (in eval mode).
        GPT-2 stores its linear layers as Conv1D, weight (in, out): nn.Linear wants (out, in)."""
        c = model.config
        if c.model_type != "gpt2":
            raise ConfigError(f"PlainGPT reads GPT-2 weights; this model is a {c.model_type!r}.")
        plain = cls(c.vocab_size, c.n_positions, c.n_embd, c.n_layer, c.n_head, c.layer_norm_epsilon)
        w = {name: t.detach().float().cpu() for name, t in model.state_dict().items()}
        names = {"tokens.weight": "transformer.wte.weight", "positions.weight": "transformer.wpe.weight",
                 "norm.weight": "transformer.ln_f.weight", "norm.bias": "transformer.ln_f.bias"}
        for i in range(c.n_layer):
            h = f"transformer.h.{i}."
            for mine, theirs in (("norm_1", "ln_1"), ("qkv", "attn.c_attn"), ("out", "attn.c_proj"),
                                 ("norm_2", "ln_2"), ("up", "mlp.c_fc"), ("down", "mlp.c_proj")):
                names[f"blocks.{i}.{mine}.weight"] = h + theirs + ".weight"
                names[f"blocks.{i}.{mine}.bias"] = h + theirs + ".bias"
        state = {mine: w[theirs] for mine, theirs in names.items()}
        for key, value in state.items():
            if key.endswith(".weight") and any(f".{n}." in key for n in ("qkv", "out", "up", "down")):
                state[key] = value.T.contiguous()
        plain.load_state_dict(state)
        return plain.eval()


def filter_logits(logits, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None):
    """Next-token logits (..., vocab) made ready for sampling: divided by the temperature, then all
    but the k largest set to -inf (top-k), then all but the smallest set of likeliest tokens whose
    probabilities add up to at least p (top-p, "nucleus"). Temperature 0 leaves them for argmax.

    Taught in chapter 3b (tutorials/03b_inside_gpt.ipynb), with transformers' samplers as the reference."""
    if temperature < 0:
        raise ConfigError(f"temperature={temperature} must be >= 0 (0 is greedy).")
    if temperature > 0:
        logits = logits / temperature
    if top_k:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        ordered, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(ordered, dim=-1)
        above = probs.cumsum(-1) - probs  # the probability of the tokens ranked above each one
        drop = torch.zeros_like(above, dtype=torch.bool).scatter(-1, order, above >= top_p)  # in vocabulary order
        logits = logits.masked_fill(drop, float("-inf"))
    return logits

"""What one training step costs as models and texts grow, measured on this machine.

Used by tutorials/08_trends_challenges.ipynb (the article's "compute resources" challenge):

    llmnb.step_time("minilm", batch_size=16, seq_len=128)        # a StepTime: seconds per step...
    llmnb.step_time("tiny-bert", seq_len=128, precision="bf16")  # the same under bf16 autocast

A step is what fine-tuning repeats: forward pass, loss, backward pass and an AdamW update, on a
batch of random token ids of exactly `seq_len` tokens (no padding), on a copy of the model (the
model passed in is not changed). The first `warmup` steps are not timed (they allocate memory
and pick kernels); the median of the next `steps` is reported, which is steadier than the mean on
a busy machine.
"""
from __future__ import annotations

import copy
import os
import statistics
import time
from dataclasses import asdict, dataclass

from llmnb.errors import ScalingError

PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass
class StepTime:
    """The measured cost of one training step."""

    seconds: float  # median seconds per step
    batch_size: int
    seq_len: int
    precision: str
    parameters: int  # all weights
    non_embedding_parameters: int  # without the token/position embedding tables (lookups, not matrix products)
    device: str
    all_seconds: list  # every timed step

    @property
    def tokens_per_second(self) -> float:
        return self.batch_size * self.seq_len / self.seconds

    def as_dict(self) -> dict:
        out = asdict(self)
        out.pop("all_seconds")
        out["tokens_per_second"] = self.tokens_per_second
        return out


def embedding_parameters(model) -> int:
    """Weights in the model's embedding tables (nn.Embedding: tokens, positions, segments)."""
    import torch

    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding))


def step_time(model, batch_size: int = 16, seq_len: int = 64, precision: str = "fp32", steps: int = 3,
              warmup: int = 1, seed: int = 0) -> StepTime:
    """Time training steps of a sequence classifier on random token ids; returns a `StepTime`.

    model:     an alias or folder for `llmnb.load_model`, a `LoadedModel`, a `FineTuneResult`, or
               a transformers classification model.
    precision: "fp32", "bf16" (autocast, on CPUs and GPUs) or "fp16" (autocast, CUDA only).

    Taught in chapter 8 (tutorials/08_trends_challenges.ipynb).
    """
    import torch

    from llmnb.core.models import LoadedModel, load_model
    from llmnb.finetuning.result import FineTuneResult

    if precision not in PRECISIONS:
        raise ScalingError(f"precision={precision!r} is not one of {', '.join(PRECISIONS)}.")
    for name, value, low in (("batch_size", batch_size, 1), ("seq_len", seq_len, 2), ("steps", steps, 1), ("warmup", warmup, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ScalingError(f"{name}={value!r} must be a whole number >= {low}.")
    if isinstance(model, (str, os.PathLike)):
        net = load_model(os.fspath(model)).model
    elif isinstance(model, (LoadedModel, FineTuneResult)):
        net = copy.deepcopy(model.model)
    elif isinstance(model, torch.nn.Module):
        net = copy.deepcopy(model)
    else:
        raise ScalingError(f"step_time() takes a model name, a LoadedModel, a FineTuneResult or a torch model, not a {type(model).__name__}.")
    config = net.config
    limit = getattr(config, "max_position_embeddings", None)
    if limit is not None and seq_len > limit:
        raise ScalingError(f"seq_len={seq_len} is longer than this model's {limit} positions.")
    device = next(net.parameters()).device
    if precision == "fp16" and device.type != "cuda":
        raise ScalingError("precision='fp16' is for CUDA GPUs; on a CPU use 'bf16' or 'fp32'.")
    generator = torch.Generator().manual_seed(seed)
    low = min(1000, config.vocab_size // 2)  # skip the special and unused ids at the start of BERT vocabularies
    batch = {
        "input_ids": torch.randint(low, config.vocab_size, (batch_size, seq_len), generator=generator).to(device),
        "attention_mask": torch.ones(batch_size, seq_len, dtype=torch.long, device=device),
        "labels": torch.randint(0, max(1, getattr(config, "num_labels", 2)), (batch_size,), generator=generator).to(device),
    }
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-5)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16, enabled=precision != "fp32")
    net.train()
    times = []
    for i in range(warmup + steps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        with autocast:
            loss = net(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    total = sum(p.numel() for p in net.parameters())
    result = StepTime(seconds=statistics.median(times), batch_size=batch_size, seq_len=seq_len, precision=precision,
                      parameters=total, non_embedding_parameters=total - embedding_parameters(net), device=str(device),
                      all_seconds=times)
    # The copy, its AdamW state and the activations of long texts are garbage now: a chapter that
    # times ten shapes in a row would otherwise keep the freed heap (about 1 GB on MiniLM at 256 tokens).
    del net, optimizer, loss, batch
    from llmnb.core.memory import release_memory

    release_memory()
    return result

"""`PretrainConfig`: the options of pretraining a GPT, on top of the loop's (`TrainConfig`).

It adds the corpus, the tokenizer and the model's size, and changes the loop defaults that
differ when training from random weights (a larger learning rate, a cosine decay, a step count
set by the profile, ten evaluations per run, no early stopping).
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

from llmnb.core.config import TrainConfig, check_number, option
from llmnb.errors import ConfigError

DEFAULT_PROMPTS = ("Once upon a time", "One day, Tom went to the park", '"Look at my')

# Steps when max_steps is not given, by LLMNB_PROFILE. "fast" fits a tutorial on a 2-core CPU:
# with the default model and corpus (then block_size 64), 200 steps took 17-19 s of CPU time (44-55 s
# of wall time on a machine busy with other jobs, load average 8-9) and took validation perplexity
# from 1012 to 2.3. block_size 128 makes a step 1.8x slower (interleaved timing, same load) and ends
# at 2.22 instead of 2.27. "full" trains 7.5x longer (a few minutes on a CPU; a GPU, which
# device="auto" picks, is faster).
PROFILE_STEPS = {"fast": 200, "full": 1500}


def profile() -> str:
    """The sizing profile from the environment variable LLMNB_PROFILE: fast or full (default)."""
    value = os.environ.get("LLMNB_PROFILE", "full").strip().lower() or "full"
    return value if value in PROFILE_STEPS else "full"


@dataclass
class PretrainConfig(TrainConfig):
    # The corpus
    """Every option of a pretraining run (`llmnb.pretrain(..., **options)`, `%pretrain --flags`).

    Taught in chapter 3 (tutorials/03_algorithm.ipynb).
    """
    corpus_chars: int = option(400_000, "Characters of text to build when the corpus is the bundled stories.", "data")
    eval_fraction: float = option(0.05, "Share of the documents held out (seeded) to measure validation perplexity.", "data")
    # The tokenizer and the model
    vocab_size: int = option(1000, "Tokens in the byte-level BPE vocabulary trained on the corpus (>= 260).", "model")
    layers: int = option(2, "Transformer blocks of the GPT.", "model")
    width: int = option(128, "Hidden size of the GPT (a multiple of heads).", "model")
    heads: int = option(4, "Attention heads per block.", "model")
    # 128, fine-tuning's default max_length: the bundled instructions take up to 82 tokens (a story,
    # a question, an answer), too many for 64. More would buy nothing at that max_length (issue 22).
    block_size: int = option(
        128, "Tokens of context the model sees; the corpus is cut into blocks this long (chat data needs ~100).", "model"
    )
    dropout: float = option(0.0, "Dropout in the GPT (0 suits short runs on small models).", "model")
    # The loop options whose default differs from fine-tuning's
    epochs: float | None = option(None, "Passes over the corpus (none: the profile's max_steps decides).", "length")
    max_steps: int | None = option(
        None, "Optimizer steps (default: 200 in the fast profile, 1500 in full; LLMNB_PROFILE).", "length"
    )
    batch_size: int = option(16, "Blocks per optimizer step.", "length")
    lr: float = option(6e-3, "Peak learning rate of AdamW (small models trained from scratch take large ones).", "length")
    warmup: float = option(
        0.1, "Fraction of steps over which the learning rate rises linearly from 0 (less made the loss spike).", "length"
    )
    schedule: str = option("cosine", "Learning-rate decay after warmup: linear, cosine or constant.", "length")
    eval_every: int | None = option(
        None, "Evaluate every N steps (default: 10 evaluations per run, plus one at step 0).", "evaluation"
    )
    early_stopping: int | None = option(None, "Stop after this many evaluations without improvement (none: never).", "evaluation")
    prompts: tuple = option(
        DEFAULT_PROMPTS, "Prompts sampled before and after training (samples_before / samples_after).", "evaluation"
    )
    seed: int = option(0, "Random seed for the corpus, the split, the weights and the batch order.", "machinery")
    threads: int | None = option(
        None, "CPU threads while training (default: torch's own setting, so a seeded run gives the same numbers however "
        "busy the machine is; on a loaded machine threads=llmnb.auto_threads() is faster but not repeatable).",
        "machinery",
    )
    quiet: bool = option(False, "Print nothing (no progress, no plot, no samples): for graded or batch runs.", "display")

    def __post_init__(self):
        super().__post_init__()
        check_number("corpus_chars", self.corpus_chars, minimum=1000, integer=True)
        check_number("eval_fraction", self.eval_fraction, minimum=0, maximum=0.5, exclusive=True)
        check_number("vocab_size", self.vocab_size, minimum=260, maximum=1_000_000, integer=True)
        check_number("layers", self.layers, minimum=1, maximum=96, integer=True)
        check_number("width", self.width, minimum=8, maximum=16384, integer=True)
        check_number("heads", self.heads, minimum=1, integer=True)
        check_number("block_size", self.block_size, minimum=8, maximum=8192, integer=True)
        check_number("dropout", self.dropout, minimum=0, maximum=0.9)
        if self.threads is not None:
            check_number("threads", self.threads, minimum=1, integer=True)
        if self.width % self.heads:
            choices = [h for h in (1, 2, 4, 8, 16) if self.width % h == 0]
            raise ConfigError(
                f"width={self.width} is not a multiple of heads={self.heads}: each head gets width/heads dimensions. "
                f"Try heads={choices[-1]} or a width such as {self.heads * max(1, round(self.width / self.heads))}."
            )
        if isinstance(self.prompts, str):
            self.prompts = (self.prompts,)
        if not all(isinstance(p, str) for p in self.prompts):
            raise ConfigError(f"prompts={self.prompts!r} must be a list of strings.")
        self.prompts = tuple(self.prompts)
        if self.lr > 0.05:
            warnings.warn(f"lr={self.lr} is very high even for a small model from scratch; 1e-3 to 1e-2 is usual.")

    @property
    def steps(self) -> int:
        """max_steps, or the profile's default (LLMNB_PROFILE=fast|full); epochs count once the corpus is known."""
        return self.max_steps or PROFILE_STEPS[profile()]

    def planned_steps(self, steps_per_epoch: int) -> int:
        if self.max_steps is None and self.epochs is not None:
            return super().planned_steps(steps_per_epoch)
        return self.steps

    def evaluation_interval(self, max_steps: int) -> int:
        return self.eval_every or max(1, max_steps // 10)

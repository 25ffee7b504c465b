"""`FineTuneConfig`: the options of a fine-tuning run, on top of the loop's (`TrainConfig`).

It declares what fine-tuning adds (the task, the data's columns, which weights train, the run
folder) and the loop options whose default differs (lr: chosen for the strategy). Defaults were
chosen by measurement (see docs/defaults.md): a newcomer who sets nothing should get a good model.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

from llmnb.core.config import TrainConfig, check_choice, check_number, option
from llmnb.errors import ConfigError

TASKS = ("classification", "regression", "causal-lm", "seq2seq", "sft", "dpo")
# Learning rates used when lr is not given. LoRA's adapters start at zero and are few, so they need
# a larger step than full fine-tuning; measured on MiniLM + the bundled reviews (docs/performance.md,
# "Which weights train").
DEFAULT_LR, DEFAULT_LORA_LR = 1e-4, 2e-3


@dataclass
class FineTuneConfig(TrainConfig):
    # What to train on
    """Every option of a fine-tuning run (`llmnb.finetune(..., **options)`, `%finetune --flags`).

    Taught in chapter 2 (tutorials/02_core_concepts.ipynb); which weights train in chapter 4.
    """
    task: str = option("classification", "What the model learns: " + ", ".join(TASKS) + ".", "data")
    text: str | None = option(None, "Column holding the input (source) text (inferred when not given).", "data")
    label: str | None = option(None, "Column holding the label, number or target text (inferred when not given).", "data")
    eval_fraction: float = option(
        0.1, "Share of the data held out (stratified, seeded) for validation when no eval data is given.", "data"
    )
    max_length: int = option(128, "Longest input in tokens; longer texts are truncated.", "data")
    lr: float | None = option(
        None, "Peak learning rate of AdamW (none: 1e-4, or 2e-3 with lora, whose adapters start at zero and need larger steps).",
        "length",
    )
    # Instruction and preference tuning (chapter 10)
    train_on_prompt: bool = option(
        False, "sft: train on the prompt's tokens too, not only the answers' (the default trains answers only).", "data"
    )
    packing: bool | str = option(
        "auto", "sft: put several examples in one row up to max_length, each attending only to itself: the same loss "
        "as unpacked, with less padding. auto: only where it pays (flash attention, or padding that outweighs the "
        "block mask's cost; the plan says which and why); true: always; false: one example per row.", "data"
    )
    beta: float = option(0.1, "dpo: how far the model may move from the starting (reference) model; larger keeps it closer.", "data")
    rpo_alpha: float = option(0.0, "dpo: weight of the chosen answers' own loss (per token) added to DPO's, so their "
                              "likelihood rises, not only the gap (TRL's rpo_alpha; 0: plain DPO).", "data")
    eval_generate: int = option(
        64, "sft: validation prompts answered (greedy) at each evaluation for exact match; 0: none.", "evaluation"
    )
    # Which weights train (chapter 4.4)
    freeze: int | None = option(None, "Train only the top N transformer layers and the head; the rest stays as pretrained.", "weights")
    lora: bool = option(False, "Train low-rank adapters (LoRA, through peft) and the head instead of all weights.", "weights")
    lora_r: int = option(8, "LoRA rank: the size of each adapter's bottleneck.", "weights")
    lora_alpha: int = option(16, "LoRA scaling: the adapters' update is multiplied by lora_alpha / lora_r.", "weights")
    lora_dropout: float = option(0.1, "Dropout on the LoRA adapters' input.", "weights")
    lora_targets: str | None = option(
        None, "Layers that get LoRA adapters: none for every Linear layer of the transformer blocks (all-linear), "
        "qv for the attention query and value projections only (the LoRA paper's choice), or module names, comma-separated.",
        "weights",
    )
    metric: str | None = option(
        None, "Metric that picks the best weights (default: accuracy; mse, perplexity or bleu for the other tasks).", "evaluation"
    )
    # Machinery
    group_by_length: bool = option(True, "Batch texts of similar length together so padding is small.", "machinery")
    out: str | None = option(None, "Run folder for checkpoints and the final model (default: a new runs/<model>-NNN).", "machinery")
    save_checkpoints: bool = option(
        True, "Write the run folder: the best weights at the end, and (for runs longer than checkpoint_every) "
        "resumable checkpoints. Off: nothing is written to disk.", "machinery"
    )
    checkpoint_every: float = option(
        10.0, "Minutes of training between resumable checkpoints (weights, optimizer, RNG), written at the next "
        "evaluation; Ctrl-C always writes one. 0: at every evaluation. Shorter runs leave only the final model.", "machinery"
    )
    overwrite: bool = option(False, "Allow `out` to be a folder that holds an earlier run (it is replaced).", "machinery")
    trust_remote_code: bool = option(False, "Run model code downloaded from the Hub. Only for models you trust.", "machinery")

    def __post_init__(self):
        # lr=None: the default for the strategy. Remembered, so that replace(lora=True) on a config
        # whose lr was never set picks LoRA's default instead of keeping full fine-tuning's.
        self.default_lr_used = self.lr is None
        if self.lr is None:
            self.lr = DEFAULT_LORA_LR if self.lora else DEFAULT_LR
        check_choice("task", self.task, TASKS)
        self.packing = packing_choice(self.packing)
        if self.epochs is None:
            raise ConfigError("epochs=None: give a number of passes over the data (e.g. epochs=3), or max_steps.")
        super().__post_init__()
        check_number("max_length", self.max_length, minimum=2, integer=True)
        check_number("eval_fraction", self.eval_fraction, minimum=0, maximum=0.9)
        if self.freeze is not None:
            check_number("freeze", self.freeze, minimum=0, integer=True)
            if self.lora:
                raise ConfigError("Choose freeze=N or lora=True, not both: LoRA already keeps the base weights frozen.")
        if self.lora_targets is not None and not self.lora:
            raise ConfigError(f"lora_targets={self.lora_targets!r} is set but lora is off: add lora=True (--lora) to train adapters.")
        check_number("lora_r", self.lora_r, minimum=1, integer=True)
        check_number("lora_alpha", self.lora_alpha, minimum=1)
        check_number("lora_dropout", self.lora_dropout, minimum=0, maximum=0.9)
        check_number("checkpoint_every", self.checkpoint_every, minimum=0)
        check_number("beta", self.beta, minimum=0, exclusive=True)
        check_number("rpo_alpha", self.rpo_alpha, minimum=0)
        check_number("eval_generate", self.eval_generate, minimum=0, integer=True)
        if self.train_on_prompt and self.task != "sft":
            raise ConfigError(f"train_on_prompt=True is for task='sft'; task={self.task!r} has no prompt to train on.")
        if self.rpo_alpha and self.task != "dpo":
            raise ConfigError(f"rpo_alpha={self.rpo_alpha} is for task='dpo'; task={self.task!r} has no chosen answers to weigh.")
        if self.lr > (5e-2 if self.lora else 1e-2):
            usual = "5e-4 to 5e-3 is usual for LoRA" if self.lora else "1e-5 to 3e-4 is usual"
            warnings.warn(f"lr={self.lr} is very high for fine-tuning a pretrained model; {usual}.")
        if self.trust_remote_code:
            warnings.warn(
                "trust_remote_code=True runs Python code that comes with the model from the Hub. "
                "Only use it for models whose code you trust."
            )

    def _values_to_copy(self, overrides: dict) -> dict:
        values = self.to_dict()
        if self.default_lr_used and "lr" not in overrides:
            values["lr"] = None  # chosen again for the new options
        return values


def packing_choice(value) -> bool | str:
    """packing as "auto", True or False; the magics' words (true, off, ...) read as True or False."""
    words = {"auto": "auto", "true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in words:
        return words[value.strip().lower()]
    raise ConfigError(f"packing={value!r} is not allowed; choose auto (pack only where it pays), True or False.")

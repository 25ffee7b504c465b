"""`FineTuneConfig`: every option of a fine-tuning run, its default, and its help text.

The help is written once, in each field's metadata; the `%finetune` magic builds its flags
and `%finetune?` from it, and the docs table is generated from it. Defaults were chosen by
measurement (see docs/defaults.md): a newcomer who sets nothing should get a good model.
"""
from __future__ import annotations

import warnings
from dataclasses import MISSING, asdict, dataclass, field, fields

from .errors import ConfigError

TASKS = ("classification", "regression", "causal-lm", "seq2seq")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda", "mps")
# Learning rates used when lr is not given. LoRA's adapters start at zero and are few, so they need
# a larger step than full fine-tuning; measured on MiniLM + the bundled reviews (docs/performance.md,
# "Which weights train").
DEFAULT_LR, DEFAULT_LORA_LR = 1e-4, 2e-3


def _opt(default, help, **meta):
    return field(default=default, metadata={"help": help, **meta})


@dataclass
class FineTuneConfig:
    # What to train on
    task: str = _opt("classification", "What the model learns: " + ", ".join(TASKS) + ".")
    text: str | None = _opt(None, "Column holding the input (source) text (inferred when not given).")
    label: str | None = _opt(None, "Column holding the label, number or target text (inferred when not given).")
    eval_fraction: float = _opt(
        0.1, "Share of the data held out (stratified, seeded) for validation when no eval data is given."
    )
    max_length: int = _opt(128, "Longest input in tokens; longer texts are truncated.")
    # How long and how fast
    epochs: float = _opt(4.0, "Passes over the training data.")
    max_steps: int | None = _opt(None, "Stop after this many optimizer steps (overrides epochs).")
    batch_size: int = _opt(16, "Examples per optimizer step (split further by grad_accum).")
    grad_accum: int = _opt(1, "Split each batch into this many smaller forward passes (saves memory).")
    lr: float | None = _opt(
        None, "Peak learning rate of AdamW (none: 1e-4, or 2e-3 with lora, whose adapters start at zero and need larger steps)."
    )
    warmup: float = _opt(0.1, "Fraction of steps over which the learning rate rises linearly from 0.")
    schedule: str = _opt("linear", "Learning-rate decay after warmup: linear, cosine or constant.")
    weight_decay: float = _opt(0.01, "AdamW weight decay (not applied to biases and LayerNorm).")
    grad_clip: float | None = _opt(1.0, "Clip the gradient norm to this value (none to disable).")
    # Which weights train (chapter 4.4)
    freeze: int | None = _opt(None, "Train only the top N transformer layers and the head; the rest stays as pretrained.")
    lora: bool = _opt(False, "Train low-rank adapters (LoRA, through peft) and the head instead of all weights.")
    lora_r: int = _opt(8, "LoRA rank: the size of each adapter's bottleneck.")
    lora_alpha: int = _opt(16, "LoRA scaling: the adapters' update is multiplied by lora_alpha / lora_r.")
    lora_dropout: float = _opt(0.1, "Dropout on the LoRA adapters' input.")
    lora_targets: str | None = _opt(
        None, "Layers that get LoRA adapters: none for every Linear layer of the transformer blocks (all-linear), "
        "qv for the attention query and value projections only (the LoRA paper's choice), or module names, comma-separated."
    )
    # Evaluation and stopping
    eval_every: int | None = _opt(None, "Evaluate every N optimizer steps (default: once per epoch).")
    early_stopping: int | None = _opt(
        3, "Stop after this many evaluations without improvement, and keep the best weights (none to disable)."
    )
    metric: str | None = _opt(
        None, "Metric that picks the best weights (default: accuracy; mse, perplexity or bleu for the other tasks)."
    )
    on_nan: str = _opt("stop", "When the loss becomes NaN/inf: stop (keep the best weights) or skip the batch.")
    # Machinery
    seed: int = _opt(42, "Random seed for weights of new layers, shuffling and the validation split.")
    device: str = _opt("auto", "Where to train: auto (GPU when present), cpu, cuda or mps.")
    precision: str = _opt("auto", "Number format: auto (bf16 where it pays, fp16 only on CUDA), fp32, bf16, fp16.")
    group_by_length: bool = _opt(True, "Batch texts of similar length together so padding is small.")
    log_every: int | None = _opt(None, "Record the training loss every N steps (default: about 100 points per run).")
    out: str | None = _opt(None, "Run folder for checkpoints and the final model (default: a new runs/<model>-NNN).")
    save_checkpoints: bool = _opt(
        True, "Write the run folder: the best weights at the end, and (for runs longer than checkpoint_every) "
        "resumable checkpoints. Off: nothing is written to disk."
    )
    checkpoint_every: float = _opt(
        10.0, "Minutes of training between resumable checkpoints (weights, optimizer, RNG), written at the next "
        "evaluation; Ctrl-C always writes one. 0: at every evaluation. Shorter runs leave only the final model."
    )
    overwrite: bool = _opt(False, "Allow `out` to be a folder that holds an earlier run (it is replaced).")
    trust_remote_code: bool = _opt(False, "Run model code downloaded from the Hub. Only for models you trust.")
    # Display
    plot: bool = _opt(True, "Show the live training curve.")
    quiet: bool = _opt(False, "Print nothing (no progress, no plot): for graded or batch runs.")

    def __post_init__(self):
        # lr=None: the default for the strategy. Remembered, so that replace(lora=True) on a config
        # whose lr was never set picks LoRA's default instead of keeping full fine-tuning's.
        self.default_lr_used = self.lr is None
        if self.lr is None:
            self.lr = DEFAULT_LORA_LR if self.lora else DEFAULT_LR
        _check_choice("task", self.task, TASKS)
        _check_choice("precision", self.precision, PRECISIONS)
        _check_choice("device", self.device, DEVICES)
        _check_choice("schedule", self.schedule, ("linear", "cosine", "constant"))
        _check_choice("on_nan", self.on_nan, ("stop", "skip"))
        _check_number("epochs", self.epochs, minimum=0, exclusive=True)
        _check_number("lr", self.lr, minimum=0, exclusive=True)
        _check_number("batch_size", self.batch_size, minimum=1, integer=True)
        _check_number("grad_accum", self.grad_accum, minimum=1, integer=True)
        _check_number("max_length", self.max_length, minimum=2, integer=True)
        _check_number("warmup", self.warmup, minimum=0, maximum=1)
        _check_number("weight_decay", self.weight_decay, minimum=0)
        _check_number("eval_fraction", self.eval_fraction, minimum=0, maximum=0.9)
        _check_number("seed", self.seed, minimum=0, integer=True)
        if self.freeze is not None:
            _check_number("freeze", self.freeze, minimum=0, integer=True)
            if self.lora:
                raise ConfigError("Choose freeze=N or lora=True, not both: LoRA already keeps the base weights frozen.")
        if self.lora_targets is not None and not self.lora:
            raise ConfigError(f"lora_targets={self.lora_targets!r} is set but lora is off: add lora=True (--lora) to train adapters.")
        _check_number("lora_r", self.lora_r, minimum=1, integer=True)
        _check_number("lora_alpha", self.lora_alpha, minimum=1)
        _check_number("lora_dropout", self.lora_dropout, minimum=0, maximum=0.9)
        _check_number("checkpoint_every", self.checkpoint_every, minimum=0)
        for name in ("max_steps", "eval_every", "early_stopping", "log_every"):
            if getattr(self, name) is not None:
                _check_number(name, getattr(self, name), minimum=1, integer=True)
        if self.grad_clip is not None:
            _check_number("grad_clip", self.grad_clip, minimum=0, exclusive=True)
        if self.batch_size % self.grad_accum:
            raise ConfigError(
                f"batch_size={self.batch_size} is not a multiple of grad_accum={self.grad_accum}: "
                "each optimizer step is split into grad_accum equal micro-batches. "
                f"Try batch_size={self.batch_size - self.batch_size % self.grad_accum or self.grad_accum}."
            )
        if self.lr > (5e-2 if self.lora else 1e-2):
            usual = "5e-4 to 5e-3 is usual for LoRA" if self.lora else "1e-5 to 3e-4 is usual"
            warnings.warn(f"lr={self.lr} is very high for fine-tuning a pretrained model; {usual}.")
        if self.trust_remote_code:
            warnings.warn(
                "trust_remote_code=True runs Python code that comes with the model from the Hub. "
                "Only use it for models whose code you trust."
            )
        from .environment import quiet

        if quiet():
            self.quiet = True

    def to_dict(self) -> dict:
        return asdict(self)

    def replace(self, **overrides) -> "FineTuneConfig":
        """A new config with some fields changed; unknown names are an error."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(_unknown_message(unknown, known))
        values = {**self.to_dict(), **overrides}
        if self.default_lr_used and "lr" not in overrides:
            values["lr"] = None  # chosen again for the new options
        return type(self)(**values)


def option_help() -> dict[str, tuple[object, str]]:
    """name -> (default, help) for every option, in declaration order."""
    out = {}
    for f in fields(FineTuneConfig):
        default = None if f.default is MISSING else f.default
        out[f.name] = (default, f.metadata["help"])
    return out


def _unknown_message(unknown, known) -> str:
    import difflib

    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1)
        parts.append(f"'{name}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    return f"Unknown option {', '.join(parts)}. Known options: {', '.join(sorted(known))}."


def _check_choice(name, value, allowed):
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not allowed; choose one of: {', '.join(allowed)}.")


def _check_number(name, value, minimum=None, maximum=None, integer=False, exclusive=False):
    kind = "a whole number" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not float(value).is_integer()):
        raise ConfigError(f"{name}={value!r} is not {kind}; give e.g. {name}={minimum if minimum else 1}.")
    if value != value:  # NaN
        raise ConfigError(f"{name} is NaN; give {kind}.")
    too_small = minimum is not None and (value <= minimum if exclusive else value < minimum)
    too_big = maximum is not None and value > maximum
    if too_small or too_big:
        low = "" if minimum is None else (f"> {minimum}" if exclusive else f">= {minimum}")
        high = "" if maximum is None else f"<= {maximum}"
        raise ConfigError(f"{name}={value:g} is out of range; it must be {' and '.join(x for x in (low, high) if x)}.")


def magic_flag(name: str) -> str:
    """How the %finetune magic spells the option `name`."""
    dashed = name.replace("_", "-")
    default = FineTuneConfig.__dataclass_fields__[name].default
    return f"--no-{dashed}" if default is True else f"--{dashed}"


def options_markdown() -> str:
    """The options table of the README (a test keeps the README in step with this)."""
    lines = ["| `%finetune` flag | `llmnb.finetune` keyword | default | what it does |", "|---|---|---|---|"]
    for name, (default, text) in option_help().items():
        lines.append(f"| `{magic_flag(name)}` | `{name}` | `{default}` | {text} |")
    return "\n".join(lines)

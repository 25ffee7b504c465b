"""`TrainConfig`: the options of the training loop, shared by every job, each with its help and checks.

A job's config (`FineTuneConfig`, `PretrainConfig`) extends it and declares only what differs:
its own fields, and loop fields whose default or help is different for that job. The help is
written once, in each field's metadata; the magics build their flags and `%finetune?` from it,
and the README's options tables are generated from it.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import MISSING, asdict, dataclass, field, fields

from llmnb.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda", "mps")
SCHEDULES = ("linear", "cosine", "constant")
# The order options are listed in (help, README tables), whatever class declared them.
GROUPS = ("data", "task", "model", "weights", "length", "evaluation", "machinery", "display")  # task: a task's own options


def option(default, help: str, group: str, **meta):
    """A config field with its help text and the group it is listed under."""
    assert group in GROUPS, group
    return field(default=default, metadata={"help": help, "group": group, **meta})


@dataclass
class TrainConfig:
    # How long and how fast
    epochs: float | None = option(4.0, "Passes over the training data.", "length")
    max_steps: int | None = option(None, "Stop after this many optimizer steps (overrides epochs).", "length")
    batch_size: int = option(16, "Examples per optimizer step (split further by grad_accum).", "length")
    grad_accum: int = option(1, "Split each batch into this many smaller forward passes (saves memory).", "length")
    lr: float | None = option(1e-4, "Peak learning rate of AdamW.", "length")
    warmup: float = option(0.1, "Fraction of steps over which the learning rate rises linearly from 0.", "length")
    schedule: str = option("linear", "Learning-rate decay after warmup: linear, cosine or constant.", "length")
    weight_decay: float = option(0.01, "AdamW weight decay (not applied to biases and LayerNorm).", "length")
    grad_clip: float | None = option(1.0, "Clip the gradient norm to this value (none to disable).", "length")
    # Evaluation and stopping
    eval_every: int | None = option(None, "Evaluate every N optimizer steps (default: once per epoch).", "evaluation")
    early_stopping: int | None = option(
        3, "Stop after this many evaluations without improvement, and keep the best weights (none to disable).", "evaluation"
    )
    on_nan: str = option("stop", "When the loss becomes NaN/inf: stop (keep the best weights) or skip the batch.", "evaluation")
    # Machinery
    seed: int = option(42, "Random seed for weights of new layers, shuffling and the validation split.", "machinery")
    device: str = option("auto", "Where to train: auto (GPU when present), cpu, cuda or mps.", "machinery")
    precision: str = option("auto", "Number format: auto (bf16 where it pays, fp16 only on CUDA), fp32, bf16, fp16.", "machinery")
    log_every: int | None = option(None, "Record the training loss every N steps (default: about 100 points per run).", "machinery")
    # Display
    plot: bool = option(True, "Show the live training curve.", "display")
    quiet: bool = option(False, "Print nothing (no progress, no plot): for graded or batch runs.", "display")
    report_to: str = option(
        "none", "Also send every logged value and the options to: none, or tensorboard (event files in the run "
        "folder's tensorboard/, or runs/tensorboard/ for a run without a folder).", "display"
    )

    def __post_init__(self):
        check_choice("precision", self.precision, PRECISIONS)
        check_choice("device", self.device, DEVICES)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_choice("on_nan", self.on_nan, ("stop", "skip"))
        check_choice("report_to", self.report_to, ("none", "tensorboard"))
        if self.report_to == "tensorboard":
            import importlib.util

            if importlib.util.find_spec("tensorboard") is None:
                raise ConfigError("report_to='tensorboard' needs the tensorboard package, which is not installed. "
                                  "Install it with `pip install tensorboard` (or `pip install llmnb[tensorboard]`), "
                                  "or leave report_to='none'.")
        if self.epochs is not None:
            check_number("epochs", self.epochs, minimum=0, exclusive=True)
        check_number("lr", self.lr, minimum=0, exclusive=True)
        check_number("batch_size", self.batch_size, minimum=1, integer=True)
        check_number("grad_accum", self.grad_accum, minimum=1, integer=True)
        check_number("warmup", self.warmup, minimum=0, maximum=1)
        check_number("weight_decay", self.weight_decay, minimum=0)
        check_number("seed", self.seed, minimum=0, integer=True)
        for name in ("max_steps", "eval_every", "early_stopping", "log_every"):
            if getattr(self, name) is not None:
                check_number(name, getattr(self, name), minimum=1, integer=True)
        if self.grad_clip is not None:
            check_number("grad_clip", self.grad_clip, minimum=0, exclusive=True)
        if self.batch_size % self.grad_accum:
            raise ConfigError(
                f"batch_size={self.batch_size} is not a multiple of grad_accum={self.grad_accum}: "
                "each optimizer step is split into grad_accum equal micro-batches. "
                f"Try batch_size={self.batch_size - self.batch_size % self.grad_accum or self.grad_accum}."
            )
        from llmnb.core.environment import quiet

        if quiet():
            self.quiet = True

    # ------------------------------------------------------------------ what the engine asks
    def planned_steps(self, steps_per_epoch: int) -> int:
        """Optimizer steps of the whole run: max_steps, else epochs x steps per epoch."""
        return self.max_steps or max(1, math.ceil(self.epochs * steps_per_epoch))

    def evaluation_interval(self, max_steps: int) -> int | None:
        """Evaluate every this many steps; None: at the end of each epoch."""
        return self.eval_every

    # ------------------------------------------------------------------ copies and help
    def to_dict(self) -> dict:
        return asdict(self)

    def replace(self, **overrides):
        """A new config with some fields changed; unknown names are an error that suggests the close one."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(unknown_option_message(unknown, known))
        return type(self)(**{**self._values_to_copy(overrides), **overrides})

    def _values_to_copy(self, overrides: dict) -> dict:
        """The current values a `replace` starts from (a job may drop derived ones)."""
        return self.to_dict()

    @classmethod
    def option_fields(cls) -> list:
        """The fields a user sets (a job may add others, e.g. its tasks' own options)."""
        return list(fields(cls))

    @classmethod
    def help_of(cls, f) -> str:
        return f.metadata["help"]

    @classmethod
    def group_of(cls, f) -> str:
        return f.metadata["group"]

    @classmethod
    def option_field(cls, name: str):
        return next(f for f in cls.option_fields() if f.name == name)

    @classmethod
    def option_help(cls) -> dict[str, tuple[object, str]]:
        """name -> (default, help) for every option, grouped (data, task, model, ..., display)."""
        ordered = sorted(cls.option_fields(), key=lambda f: GROUPS.index(cls.group_of(f)))  # stable within a group
        return {f.name: (None if f.default is MISSING else f.default, cls.help_of(f)) for f in ordered}

    @classmethod
    def magic_flag(cls, name: str) -> str:
        """How a magic spells the option `name`: --max-steps, or --no-plot for a default-on switch."""
        dashed = name.replace("_", "-")
        return f"--no-{dashed}" if cls.option_field(name).default is True else f"--{dashed}"

    @classmethod
    def options_markdown(cls, magic: str, function: str) -> str:
        """The options table of the README for one job (a test keeps the README in step with this)."""
        lines = [f"| `{magic}` flag | `{function}` keyword | default | what it does |", "|---|---|---|---|"]
        for name, (default, text) in cls.option_help().items():
            # A tuple (pretraining's prompts) cannot be spelled as one flag: a keyword only.
            flag = "(keyword only)" if str(cls.option_field(name).type) == "tuple" else f"`{cls.magic_flag(name)}`"
            lines.append(f"| {flag} | `{name}` | `{default}` | {text} |")
        return "\n".join(lines)


def unknown_option_message(unknown, known) -> str:
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1)
        parts.append(f"'{name}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    return f"Unknown option {', '.join(parts)}. Known options: {', '.join(sorted(known))}."


def check_choice(name, value, allowed):
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not allowed; choose one of: {', '.join(allowed)}.")


def check_number(name, value, minimum=None, maximum=None, integer=False, exclusive=False):
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

"""`FineTuneConfig`: the options of a fine-tuning run, on top of the loop's (`TrainConfig`).

It declares what fine-tuning adds (the task, the data's columns, which weights train, the run
folder) and the loop options whose default differs (lr: chosen for the strategy). Defaults were
chosen by measurement (see docs/defaults.md): a newcomer who sets nothing should get a good model.
"""
from __future__ import annotations

import warnings
from dataclasses import MISSING, asdict, dataclass, field, fields

from llmnb.core.config import TrainConfig, check_number, option, unknown_option_message
from llmnb.core.task import DEFAULT_TASK, get_task, task_classes, task_names
from llmnb.errors import ConfigError

# Learning rates used when lr is not given. LoRA's adapters start at zero and are few, so they need
# a larger step than full fine-tuning; measured on MiniLM + the bundled reviews (docs/performance.md,
# "Which weights train").
DEFAULT_LR, DEFAULT_LORA_LR = 1e-4, 2e-3


@dataclass(init=False)
class FineTuneConfig(TrainConfig):
    """Every option of a fine-tuning run (`llmnb.finetune(..., **options)`, `%finetune --flags`).

    The fields below are read by every task; a task's own options (beta for dpo, packing for
    sft...) are given the same way, checked by that task's `Options` dataclass and kept in
    `task_options` (and read as attributes: `config.beta`).

    Taught in chapter 2 (tutorials/02_core_concepts.ipynb); which weights train in chapter 4.
    """
    # What to train on
    task: str = option(DEFAULT_TASK, "What the model learns: one of the tasks in llmnb/tasks/ (each file one task).", "data")
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
    # The chosen task's own options, checked by its Options dataclass (not a flag: each is one).
    task_options: dict = field(default_factory=dict, metadata={"help": "The task's own options.", "group": "data", "listed": False})

    def __init__(self, **options):
        """Any field above by keyword, and the options of the chosen task (beta=0.2 with task='dpo')."""
        for f in fields(self):
            default = f.default_factory() if f.default is MISSING else f.default
            setattr(self, f.name, options.pop(f.name, default))
        self.task_options = {**self.task_options, **options}
        self.__post_init__()

    def __getattr__(self, name):
        # Only reached when normal lookup fails: a task option read as an attribute (config.beta).
        options = self.__dict__.get("task_options") or {}
        if name in options:
            return options[name]
        raise AttributeError(f"{type(self).__name__} has no option {name!r}")

    def __post_init__(self):
        # lr=None: the default for the strategy. Remembered, so that replace(lora=True) on a config
        # whose lr was never set picks LoRA's default instead of keeping full fine-tuning's.
        self.default_lr_used = self.lr is None
        if self.lr is None:
            self.lr = DEFAULT_LORA_LR if self.lora else DEFAULT_LR
        task = get_task(self.task)  # a clear error for an unknown task
        self.task = task.name  # an alias (ner) becomes the task's name
        self.task_options = _checked_task_options(task, self.task_options)
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
        if self.lr > (5e-2 if self.lora else 1e-2):
            usual = "5e-4 to 5e-3 is usual for LoRA" if self.lora else "1e-5 to 3e-4 is usual"
            warnings.warn(f"lr={self.lr} is very high for fine-tuning a pretrained model; {usual}.")
        if self.trust_remote_code:
            warnings.warn(
                "trust_remote_code=True runs Python code that comes with the model from the Hub. "
                "Only use it for models whose code you trust."
            )

    def to_dict(self) -> dict:
        """Every option by name, the task's own among them (what checkpoints, records and cards keep):
        a function given as an option (a reward) is kept by its name, so the dict is JSON."""
        values = self._options()
        return {k: _by_name(v) for k, v in values.items()}

    def _options(self) -> dict:
        values = asdict(self)
        values.update(values.pop("task_options"))
        return values

    def callable_options(self) -> dict:
        """The options that hold functions (rewards): what a resumed run must be given again."""
        return {k: v for k, v in self.task_options.items() if _by_name(v) is not v}

    def _values_to_copy(self, overrides: dict) -> dict:
        values = self._options()
        if self.default_lr_used and "lr" not in overrides:
            values["lr"] = None  # chosen again for the new options
        if "task" in overrides and get_task(overrides["task"]) is not get_task(self.task):
            for name in self.task_options:  # another task: the old one's options do not apply
                values.pop(name)
        return values

    def replace(self, **overrides):
        """A new config with some options changed (a task's own options included)."""
        known = {f.name for f in fields(self) if f.name != "task_options"} | set(self.task_option_fields())
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(unknown_option_message(unknown, known))
        return type(self)(**{**self._values_to_copy(overrides), **overrides})

    @classmethod
    def from_dict(cls, values: dict):
        """A config from a saved `to_dict()` (a checkpoint, a run's record), also one written before
        task options had their own dataclass: options no task of this run reads are dropped."""
        own = {f.name for f in fields(get_task(values.get("task", DEFAULT_TASK)).Options)}
        known = {f.name for f in fields(cls) if f.name != "task_options"}
        return cls(**{k: v for k, v in values.items() if k in known | own})

    # ------------------------------------------------------------------ help
    @classmethod
    def task_option_fields(cls) -> dict:
        """name -> (task class, dataclass field) for every task's own options, task by task."""
        found = {}
        for task in task_classes():
            for f in fields(task.Options):
                found.setdefault(f.name, (task, f))  # an option two tasks read (beta) is listed once; help_of names both
        return found

    @classmethod
    def option_fields(cls) -> list:
        listed = [f for f in fields(cls) if f.metadata.get("listed", True)]
        return listed + [f for _, f in cls.task_option_fields().values()]

    @classmethod
    def help_of(cls, f) -> str:
        if f.name == "task":  # the registry's tasks, so a new task file shows up in %finetune? and the README
            return f"What the model learns: {', '.join(task_names())} (one file each in llmnb/tasks/)."
        owners = [(task, g) for task in task_classes() for g in fields(task.Options) if g.name == f.name]
        if owners and any(g is f for _, g in owners):
            # An option several tasks read (beta: dpo and grpo) lists each one's meaning and default.
            if len(owners) > 1:
                return " ".join(f"{task.name}: {g.metadata['help']} (default {g.default}.)" for task, g in owners)
            return f"{owners[0][0].name}: {f.metadata['help']}"
        return f.metadata["help"]

    @classmethod
    def group_of(cls, f) -> str:
        owner = cls.task_option_fields().get(f.name)
        return "task" if owner and owner[1] is f else f.metadata["group"]


def _by_name(value):
    """A function (or a list holding functions) as its name; anything else as it is."""
    if isinstance(value, (list, tuple)) and any(callable(v) for v in value):
        return [_by_name(v) for v in value]
    if callable(value) and not isinstance(value, type):
        return getattr(value, "__name__", type(value).__name__)
    return value


def _checked_task_options(task, given: dict) -> dict:
    """`given` checked by the task's Options (its defaults filled in); an option of another task,
    or of none, is a clear error."""
    own = {f.name for f in fields(task.Options)}
    stray = sorted(set(given) - own)
    if stray:
        owners = {f.name: other.name for other in task_classes() for f in fields(other.Options)}
        elsewhere = [f"{name} is an option of task={owners[name]!r}" for name in stray if name in owners]
        if elsewhere:
            raise ConfigError(f"{'; '.join(elsewhere)}; this run's task is {task.name!r}, which does not read it. "
                              f"Set task={owners[stray[0]]!r}, or leave the option out.")
        known = {f.name for f in fields(FineTuneConfig) if f.name != "task_options"} | set(owners)
        raise ConfigError(unknown_option_message(stray, known))
    return asdict(task.Options(**given))

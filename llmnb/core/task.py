"""`Task`: what one kind of training makes of data, model and metrics, and the registry of tasks.

Each task is one class in one file of `llmnb/tasks/` (classification.py, sft.py, ...) that
declares what it is and registers itself:

    @register
    class Regression(Classification):
        name = "regression"
        auto_class = "AutoModelForSequenceClassification"
        metrics, headline, greater_is_better = ("mse",), "mse", False
        ...

Everything that needs to know the tasks (the `task` option's choices, `%finetune?`, the model
card, `export_script`, `lr_find`, `load_run`, the model picker) asks this registry instead of a
table of its own, so adding a task touches no other file (docs/extending.md walks through one).

A task object is built for one run (`make_task(config)`) and may keep that run's state (SFT's
shown answers, DPO's reference log-probabilities): nothing is shared between runs. Its own
options are a small dataclass, `Options`, with help in each field's metadata; `FineTuneConfig`
checks them and keeps them in `task_options`.

The job (finetuning/run.py) calls, in order: prepare -> prepare_tokenizer -> encode ->
before_training (or restore_resume_state) -> batches / compute_loss -> evaluate -> the result
class, which predicts through the task.
"""
from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field, fields

from llmnb.errors import ConfigError

TASK_PACKAGE = "llmnb.tasks"  # imported on first use: each of its modules registers one task


def task_option(default, help: str):
    """A field of a task's `Options`, with the help that `%finetune?` and the README show."""
    return field(default=default, metadata={"help": help})


@dataclass
class NoOptions:
    """The options of a task that reads none of its own."""


@dataclass
class PreparedData:
    """What `Task.prepare` hands the job: each split's inputs and targets, read and checked."""

    train_texts: list
    train_targets: list
    eval_texts: list
    eval_targets: list
    labels: object = None  # a LabelMap when the task maps class names to ids, else None
    text_column: str | None = None  # the column (or data form) the inputs came from
    label_column: str | None = None


class Task:
    """The interface every task implements; `llmnb/tasks/classification.py` holds the defaults
    most tasks inherit."""

    name: str = ""
    aliases: tuple[str, ...] = ()
    Options: type = NoOptions
    data_forms: tuple[str, ...] = ()  # the column sets it reads, in words (docs and errors)
    auto_class: str = ""  # the transformers Auto class that builds the model with this task's head
    peft_task_type: str = ""  # peft's TaskType for LoRA
    result_class: type | None = None  # what finetune returns (FineTuneResult or a subclass)
    metrics: tuple = ()
    headline = "loss"  # the metric that picks the best weights unless `metric=` says otherwise
    greater_is_better = False
    eval_at_start = False  # evaluate the starting model too, as step 0 of the curve
    generative = False  # the model writes text: its card warns that facts can be made up
    chat = False  # trains on conversations through a chat template
    export_template: str | None = None  # the training script `export_script` writes for it: "plain" or "chat"
    continues_results = False  # a result passed as the model is copied and trained on (sft after pretrain)
    float_targets = False
    uses_labels = False  # targets are class names mapped to ids (a LabelMap)
    panel_keys: tuple[str, ...] = ()  # per-step statistics of the log rows the live display shows
    # The model card's words: the Hub pipeline tag, what the model does, how it was tuned.
    pipeline_tag = ""
    does = ""
    tuned_as = ""

    def __init__(self, config=None):
        self.config = config
        self.context: int | None = None  # the most tokens the model takes, set by the job once it is loaded
        # Only this task's own fields: a config made for another task (an SFT run's config given to
        # the DPO task to score pairs) may hold options this one does not read.
        given = getattr(config, "task_options", None) or {}
        self.options = self.Options(**{f.name: given[f.name] for f in fields(self.Options) if f.name in given})
        self.samples: list = []  # answers shown beside references at the last evaluation (generative tasks)

    @classmethod
    def model_kwargs(cls, num_labels: int, id2label: dict | None) -> dict:
        """Keyword arguments for the model's config when it is loaded for this task (the head's size...)."""
        return {}

    def check_metric(self, metric: str | None) -> None:
        """`metric` must be one this task computes at each evaluation (or the loss): caught before training."""
        if metric is None:
            return
        known = list(dict.fromkeys([self.headline, *self.metrics, "loss"]))
        if metric.removeprefix("eval_") not in known:
            close = [k for k in known if k.startswith(metric.lower())] or difflib.get_close_matches(metric, known, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"metric={metric!r} is not computed for task={self.name!r}; choose one of: {', '.join(known)}.{hint}")

    def steps_per_epoch(self, rows: int, batch_size: int) -> int:
        """Optimizer steps in one pass over `rows` training examples."""
        return -(-rows // batch_size)

    def listeners(self) -> list:
        """Listeners of the task's own (e.g. adding its per-step statistics to the log rows)."""
        return []

    # The steps a job calls; llmnb/tasks/classification.py implements them for labelled texts.
    def prepare(self, data, eval, config) -> PreparedData:
        raise NotImplementedError

    def encode(self, tokenizer, texts, targets, max_length: int):
        raise NotImplementedError

    def evaluate(self, model, enc, tokenizer, batch_size: int) -> dict[str, float]:
        raise NotImplementedError

    def predict(self, result, inputs, batch_size: int, return_scores: bool, **options):
        raise NotImplementedError


_REGISTRY: dict[str, type[Task]] = {}  # name or alias -> class


def register(cls: type[Task]) -> type[Task]:
    """Class decorator: make `cls` a task that `task=cls.name` (or one of its aliases) selects."""
    for key in (cls.name, *cls.aliases):
        if _REGISTRY.get(key, cls) is not cls:
            raise ConfigError(f"Two tasks are called {key!r}: {_REGISTRY[key].__module__} and {cls.__module__}.")
        _REGISTRY[key] = cls
    return cls


def _discover() -> None:
    importlib.import_module(TASK_PACKAGE)


def task_classes() -> list[type[Task]]:
    """Every registered task, once each, the default (classification) first."""
    _discover()
    unique = list(dict.fromkeys(_REGISTRY.values()))
    return sorted(unique, key=lambda cls: (cls.name != DEFAULT_TASK, cls.name))


def task_names() -> list[str]:
    return [cls.name for cls in task_classes()]


def get_task(name: str) -> type[Task]:
    """The task class called `name` (or an alias); a clear error naming the known ones."""
    _discover()
    if name in _REGISTRY:
        return _REGISTRY[name]
    close = difflib.get_close_matches(str(name), list(_REGISTRY), n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise ConfigError(f"task={name!r} is not known; choose one of: {', '.join(task_names())}.{hint}")


def make_task(config) -> Task:
    """The task object of one run, holding that run's options and state."""
    return get_task(config.task)(config)


DEFAULT_TASK = "classification"  # what `finetune` does when no task is named

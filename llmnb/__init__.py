"""llmnb: fine-tune and pretrain language models from a notebook cell, with a live curve.

    %load_ext llmnb
    %finetune minilm reviews --eval reviews_test

or, without IPython:

    import llmnb
    ft = llmnb.finetune("minilm", "reviews", eval="reviews_test")

Importing llmnb is cheap: torch and transformers load only when a model or training is
first needed, so `%load_ext llmnb` is instant.

The public API is the names listed in `_LAZY` below (each docstring names the chapter that
teaches it) and the subpackages `llmnb.check`, `llmnb.datasets` and `llmnb.metrics`; the tutorials
use nothing else (tests/test_package.py). Everything under core/, finetuning/, instruct/,
pretraining/, display/, notebook/, tools/ and course/ may move.
"""
from __future__ import annotations

import importlib

from llmnb.version import __version__  # noqa: F401  (llmnb.__version__)

# public name -> module that defines it (imported on first use)
_LAZY = {
    "finetune": "finetuning.finetune",
    "FineTuneConfig": "finetuning.config",
    "FineTuneResult": "finetuning.result",
    "load_model": "core.models",
    "LoadedModel": "core.models",
    "ModelPicker": "notebook.widgets",
    "Callback": "core.events",
    "TrainState": "core.events",
    "LlmnbError": "errors",
    "DataError": "errors",
    "ConfigError": "errors",
    "ModelNotFoundError": "errors",
    "TrainingError": "errors",
    "quantize": "tools.compress",
    "prune": "tools.compress",
    "ensemble": "tools.compress",
    "explain": "tools.interpret",
    "export_script": "tools.export",
    "launch": "tools.export",
    "LiveCallback": "display.bridge",
    "pretrain": "pretraining.run",
    "PretrainConfig": "pretraining.config",
    "PretrainResult": "pretraining.result",
    "train_tokenizer": "pretraining.tokenizer",
    "build_corpus": "datasets.stories",
    "augment": "course.augmentation",
    "course_assistant": "course.assistant",
    "deletion_test": "tools.probes",
    "swap_test": "tools.probes",
    "step_time": "tools.scaling",
    "measure": "tools.cost",
    "Cost": "tools.cost",
    "resident_mb": "core.memory",
    "release_memory": "core.memory",
    "runs": "core.run_folders",
    "clean_runs": "core.run_folders",
    "available_memory": "core.memory",
    "resolve_device": "core.models",
    "bundled_minilm_path": "core.models",
    "choose_precision": "core.engine",
    "cpu_has_fast_bf16": "core.engine",
    "make_optimizer": "core.engine",
    "make_scheduler": "core.engine",
    "auto_threads": "core.threads",
    "apply_strategy": "finetuning.strategies",
    "generate": "pretraining.model",
    "perplexity": "pretraining.model",
    "PlainGPT": "pretraining.plain_gpt",
    "causal_attention": "pretraining.plain_gpt",
    "filter_logits": "pretraining.plain_gpt",
    "word_t5": "datasets.tense",
    "attach": "display.bridge",
    "show_masking": "instruct.masking",
    "preference_accuracy": "tasks.dpo",
    "ChatResult": "instruct.result",
    "ChatBox": "notebook.chatbox",
    "dpo_loss": "tasks.dpo",
    "reward_probe": "instruct.reward_probe",
    "group_advantages": "instruct.policy_loss",
    "policy_loss": "instruct.policy_loss",
    "no_signal_share": "instruct.reward_probe",
    "compare": "tools.compare",
    "Comparison": "tools.compare",
    "lr_find": "tools.lr_find",
    "LRFindResult": "tools.lr_find",
    "load_run": "tools.load_run",
}
# Public subpackages, importable as attributes (llmnb.datasets.load, llmnb.check.check, ...).
_SUBMODULES = ("datasets", "metrics", "check")

__all__ = sorted(_LAZY) + ["load_ipython_extension", "unload_ipython_extension", "__version__"]

# Before torch runs its first CPU kernel: keeps bf16 training from filling the heap with cached
# oneDNN kernels, one per batch shape (see llmnb/core/memory.py). Sets two environment variables only.
from llmnb.core.memory import bound_onednn_caches as _bound_onednn_caches  # noqa: E402

_bound_onednn_caches()


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'llmnb' has no attribute '{name}'")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))


def load_ipython_extension(ipython):
    """`%load_ext llmnb`: register the magics."""
    from llmnb.notebook.experiment_magics import register

    register(ipython)


def unload_ipython_extension(ipython):
    pass

"""llmnb: fine-tune and pretrain language models from a notebook cell, with a live curve.

    %load_ext llmnb
    %finetune minilm reviews --eval reviews_test

or, without IPython:

    import llmnb
    ft = llmnb.finetune("minilm", "reviews", eval="reviews_test")

Importing llmnb is cheap: torch and transformers load only when a model or training is
first needed, so `%load_ext llmnb` is instant.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it (imported on first use)
_LAZY = {
    "finetune": "finetuning",
    "FineTuneConfig": "config",
    "FineTuneResult": "result",
    "load_model": "models",
    "LoadedModel": "models",
    "ModelPicker": "widgets",
    "Callback": "events",
    "TrainState": "events",
    "LlmnbError": "errors",
    "DataError": "errors",
    "ConfigError": "errors",
    "ModelNotFoundError": "errors",
    "TrainingError": "errors",
    "quantize": "compress",
    "prune": "compress",
    "ensemble": "compress",
    "explain": "interpret",
    "export_script": "export",
    "launch": "export",
    "LiveCallback": "bridge",
    "pretrain": "pretraining",
    "PretrainConfig": "pretraining",
    "PretrainResult": "pretraining",
    "train_tokenizer": "pretraining",
    "build_corpus": "corpus",
    "augment": "augmentation",
    "deletion_test": "probes",
    "swap_test": "probes",
    "step_time": "scaling",
    "measure": "cost",
    "Cost": "cost",
    "resident_mb": "cost",
    "release_memory": "memory",
    "runs": "run_folders",
    "clean_runs": "run_folders",
}
_SUBMODULES = ("datasets", "metrics", "display", "data", "engine", "models", "config", "magics", "check", "compress", "export", "bridge", "interpret", "corpus")

__all__ = sorted(_LAZY) + ["load_ipython_extension", "unload_ipython_extension", "__version__"]

# Before torch runs its first CPU kernel: keeps bf16 training from filling the heap with cached
# oneDNN kernels, one per batch shape (see llmnb/memory.py). Sets two environment variables only.
from .memory import bound_onednn_caches as _bound_onednn_caches  # noqa: E402

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
    from .magics import register

    register(ipython)


def unload_ipython_extension(ipython):
    pass

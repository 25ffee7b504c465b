"""`llmnb.load_run`: reopen a run folder as the result it was, from its `llmnb.json` record.

    ft = llmnb.load_run("minilm-003")          # a name under runs/ (see llmnb.runs())
    ft = llmnb.load_run("my-model")            # or any folder result.save() wrote
    ft.history, ft.metrics, ft.predict([...])  # as on the day it ran
    llmnb.compare(ft, llmnb.load_run("minilm-004", model=False))

The record holds the options, the data fingerprints, the environment, the costs and the whole
history, so curves and tables come back without training again. The weights load only when
asked (`model=True`, the default); `model=False` is enough for `llmnb.compare` and is instant.
A run stopped by Ctrl-C has no final model yet: its checkpoint is reopened instead.
"""
from __future__ import annotations

import json
from pathlib import Path

from llmnb.errors import DataError

META_FILE, CHECKPOINT_STATE = "llmnb.json", "trainer_state.json"


def find_run(name_or_path) -> Path:
    """A run folder from a path, or a name under runs/ (LLMNB_RUNS_DIR); a DataError lists the runs there."""
    from llmnb.core.checkpoint import find_checkpoint, runs_root

    given = Path(str(name_or_path)).expanduser()
    for folder in (given, runs_root() / str(name_or_path)):
        if folder.is_dir() and ((folder / META_FILE).exists() or find_checkpoint(folder) is not None):
            return folder
    from llmnb.core.run_folders import run_folders

    names = [f.name for f in run_folders()][-8:]
    known = f" Runs under {runs_root()}/: {', '.join(names)}." if names else f" There are no runs under {runs_root()}/."
    raise DataError(f"No run at '{name_or_path}': a run folder holds llmnb.json (or a checkpoint/ of an interrupted run).{known}")


def read_record(folder: Path) -> dict:
    """The run's llmnb.json; for an interrupted run, what its checkpoint recorded."""
    from llmnb.core.checkpoint import find_checkpoint

    meta_path = Path(folder) / META_FILE
    if meta_path.exists():
        return json.loads(meta_path.read_text())
    checkpoint = find_checkpoint(folder)
    saved = json.loads((checkpoint / CHECKPOINT_STATE).read_text())
    return {**saved, "result": "FineTuneResult", "status": saved.get("state", {}).get("status", "interrupted"),
            "task": saved.get("config", {}).get("task"), "weights": str(checkpoint)}


def load_run(name_or_path, model: bool = True):
    """Reopen a run (a name under runs/ or a folder) as a `FineTuneResult`, `ChatResult` or
    `PretrainResult`: history, metrics, options, data fingerprints, costs and (model=True) the
    weights and tokenizer. model=False skips the weights: enough for curves and `llmnb.compare`.

    Taught in chapter 4 (tutorials/04_math.ipynb).
    """
    from llmnb.core.checkpoint import state_from_dict
    from llmnb.core.events import TrainState

    folder = find_run(name_or_path)
    record = read_record(folder)
    state = state_from_dict(record["state"]) if "state" in record else TrainState(
        metric_name=record.get("metric_name") or "eval_loss", status=record.get("status", "finished"))
    weights = Path(record.get("weights", folder))
    if record.get("result") == "PretrainResult" or record.get("kind") == "pretrained GPT":
        result = _pretrain_result(record, state, weights if model else None)
    else:
        result = _finetune_result(record, state, weights if model else None)
    result.data = record.get("data") or {}
    result.environment = record.get("environment") or {}
    result.wall_seconds = record.get("wall_seconds")
    result.peak_memory_mb = record.get("peak_memory_mb")
    result.gpu_peak_mb = record.get("gpu_peak_mb")
    result.run_dir = folder
    result.started_from_result = False
    result.saved_parameters = record.get("parameters") or {}
    return result


def _known(config_class, values: dict) -> dict:
    """The options this version knows (a record from another version may have more or fewer)."""
    from dataclasses import fields

    names = {f.name for f in fields(config_class)}
    return {k: v for k, v in values.items() if k in names}


def _finetune_result(record: dict, state, weights: Path | None):
    from llmnb.core.models import load_model
    from llmnb.finetuning.config import FineTuneConfig
    from llmnb.finetuning.data import LabelMap
    from llmnb.core.task import make_task

    config = FineTuneConfig.from_dict({**(record.get("config") or {}), "quiet": True})
    task = make_task(config)
    labels = LabelMap(record["labels"]) if record.get("labels") else None
    model = tokenizer = None
    if weights is not None:
        loaded = load_model(str(weights), task=config.task, num_labels=len(labels.names) if labels else 1,
                            id2label=labels.id2label if labels else None, device=config.device)
        model, tokenizer = loaded.model, loaded.tokenizer
    train = (record.get("data") or {}).get("train") or {}
    evaluation = (record.get("data") or {}).get("validation") or {}
    return task.result_class(model=model, tokenizer=tokenizer, config=config, state=state, task=task, labels=labels,
                        model_name=record.get("model_name", ""), text_column=record.get("text_column", "text"),
                        label_column=record.get("label_column"), train_size=train.get("rows", 0),
                        eval_size=evaluation.get("rows", 0))


def _pretrain_result(record: dict, state, weights: Path | None):
    from llmnb.pretraining.config import PretrainConfig
    from llmnb.pretraining.result import PretrainResult

    config = PretrainConfig(**{**_known(PretrainConfig, record.get("config") or {}), "quiet": True})
    model = tokenizer = None
    if weights is not None:
        from llmnb.core.models import load_model

        from llmnb.core.models import CAUSAL_LM

        loaded = load_model(str(weights), task=CAUSAL_LM, device=config.device)
        model, tokenizer = loaded.model, loaded.tokenizer
    return PretrainResult(model=model, tokenizer=tokenizer, config=config, state=state,
                          corpus_name=record.get("corpus", ""), seconds=record.get("wall_seconds") or 0.0)

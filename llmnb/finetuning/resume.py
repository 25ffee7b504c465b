"""Resuming a fine-tune and choosing its run folder: where a run goes, and how a checkpoint
puts a new job back exactly where the interrupted one stopped (state, optimizer, RNG, best
weights, LoRA adapters, the task's own state). `llmnb.finetuning.run.FineTuneJob` calls these.
"""
from __future__ import annotations

import json

from llmnb.errors import DataError
from llmnb.finetuning.config import FineTuneConfig


def resume_point(resume, model, config: FineTuneConfig):
    """(checkpoint folder, the run's own config) for `resume=`."""
    from pathlib import Path

    from llmnb.core.checkpoint import CHECKPOINT, find_checkpoint, latest_run
    from llmnb.errors import ConfigError

    if resume is True:
        name = model if isinstance(model, str) else getattr(model, "model_name", getattr(model, "name", "model"))
        run_dir = latest_run(name)
        if run_dir is None:
            raise ConfigError(f"Nothing to resume: no run of '{name}' with a checkpoint under runs/. Give the run folder: resume='runs/...'.")
    else:
        run_dir = Path(resume)
    checkpoint = find_checkpoint(run_dir, CHECKPOINT)
    if checkpoint is None:
        raise ConfigError(
            f"No checkpoint to resume in '{run_dir}'. A run leaves {CHECKPOINT}/ when Ctrl-C stopped it, or while it is "
            "still training after checkpoint_every minutes; a finished run has its final model there instead."
        )
    saved = json.loads((checkpoint / "trainer_state.json").read_text())
    # Functions (rewards) were saved by name only: the resuming call passes them again.
    own = FineTuneConfig.from_dict({**saved["config"], **config.callable_options(), "quiet": config.quiet, "plot": config.plot,
                                    "out": str(run_dir), "overwrite": True})
    return checkpoint, own


def run_dir_for(config: FineTuneConfig, model, checkpoint):
    """Where this run's checkpoints and final model go (None: nowhere)."""
    from pathlib import Path

    from llmnb.core.checkpoint import check_writable, holds_a_run, new_run_dir
    from llmnb.errors import ConfigError

    if checkpoint is not None:
        return checkpoint.parent
    if config.out:
        run_dir = check_writable(config.out)
        if holds_a_run(run_dir) and not config.overwrite:
            raise ConfigError(
                f"out='{config.out}' holds an earlier run. Choose a new folder, continue it with resume='{config.out}', "
                "or pass overwrite=True (--overwrite) to replace it."
            )
        return run_dir
    if not config.save_checkpoints:
        return None
    name = model if isinstance(model, str) else getattr(model, "model_name", getattr(model, "name", "model"))
    return check_writable(new_run_dir(Path(str(name)).name))


def saved_task_state(checkpoint) -> dict | None:
    """The task's own part of a checkpoint (DPO: the reference log-probabilities), if any."""
    if checkpoint is None:
        return None
    return json.loads((checkpoint / "trainer_state.json").read_text()).get("task_state")


def load_checkpoint_adapters(model, checkpoint) -> None:
    """A LoRA checkpoint's adapters (and trained head) into the freshly wrapped model."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = load_file(str(checkpoint / "adapter_model.safetensors"), device="cpu")
    advice = "Resume with the same MODEL and the same LoRA settings as the interrupted run."
    try:
        outcome = set_peft_model_state_dict(model, weights)
    except RuntimeError as e:  # same names, other shapes: another base model
        raise DataError(f"The checkpoint's LoRA adapters do not fit this model ({str(e).splitlines()[0][:160]}). {advice}") from None
    unplaced = list(getattr(outcome, "unexpected_keys", []))
    if unplaced:
        raise DataError(f"The checkpoint's LoRA adapters do not fit this model ({len(unplaced)} weights have no place, "
                        f"e.g. {unplaced[0]}). {advice}")


def check_same_labels(checkpoint, labels):
    saved = json.loads((checkpoint / "trainer_state.json").read_text()).get("labels")
    now = labels.names if labels else None
    if saved != now:
        raise DataError(f"The data's labels {now} differ from the checkpoint's {saved}: resume with the same data.")


def restore_engine(engine, checkpoint):
    """Put the engine back where the checkpoint left it: state, optimizer, RNG, best weights."""
    from llmnb.core.checkpoint import (
        read_best_weights,
        read_checkpoint,
        state_from_dict,
    )

    payload, snapshot, weights = read_checkpoint(checkpoint)
    saved = state_from_dict(payload["state"])
    best_weights = read_best_weights(checkpoint)
    if best_weights is None and saved.best_step == saved.step:
        # the checkpoint's own weights were the best ones (LoRA: already loaded into the model)
        best_weights = weights if weights is not None else {k: v.detach().cpu().clone() for k, v in engine.model.state_dict().items()}
    del weights
    for name in ("step", "epoch", "samples_seen", "tokens_seen", "train_loss", "lr", "best_metric", "best_step", "last_eval", "history"):
        setattr(engine.state, name, getattr(saved, name))
    engine.state.started_at = saved.started_at  # the clock goes on from the checkpoint's last row
    engine.restore(snapshot, best_weights)

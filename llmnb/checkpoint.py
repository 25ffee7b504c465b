"""Run folders and checkpoints: nothing trained is lost to a crash, a restart or Ctrl-C.

A run folder (`--out DIR`, or `runs/<model>-NNN` by default, never reused) holds

    checkpoint-last/   the newest evaluation point: weights, tokenizer, optimizer,
    checkpoint-best/   scheduler, RNG states, step, history and label map
    model.safetensors  ...  the final weights (the best evaluation's), written at the end
    llmnb.json         what the run was: model, task, labels, metrics, options

Checkpoints are written at every evaluation by `Checkpointer`, a listener like the display.
Each is written into a temporary folder and renamed into place, so a crash or Ctrl-C in the
middle of a write leaves the previous checkpoint whole. Only two are kept (best and last).
Weights are safetensors; training state is loaded with `torch.load(weights_only=True)`.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, fields
from pathlib import Path

from .errors import ConfigError
from .events import Callback, TrainState

LAST, BEST = "checkpoint-last", "checkpoint-best"
STATE_FILE, TRAINING_FILE = "trainer_state.json", "training.pt"


# ----------------------------------------------------------------------------- folders

def check_writable(directory) -> Path:
    """Fail now, not after an hour of training, if `directory` cannot be created or written.

    Nothing is created here: a run that fails before training leaves no empty folders behind.
    """
    out = Path(directory).expanduser()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out='{directory}' is a file, not a folder. Give a folder name for the saved model.")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"Cannot create out='{directory}': '{existing}' is a file, not a folder.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"Cannot write to out='{directory}': no write permission in '{existing}'. "
            "Choose a folder you can write to, e.g. out='runs/my-model'."
        )
    return out


def ensure_writable(directory) -> Path:
    """`check_writable`, then create the folder."""
    out = check_writable(directory)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"Cannot create out='{directory}': {e.strerror}.") from None
    return out


def runs_root() -> Path:
    return Path(os.environ.get("LLMNB_RUNS_DIR", "runs"))


def new_run_dir(model_name: str) -> Path:
    """runs/<model>-001, -002, ...: the first number not used yet."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(str(model_name)).name or "model").strip("-") or "model"
    root = runs_root()
    taken = [int(m.group(1)) for p in (root.glob(f"{safe}-*") if root.exists() else []) if (m := re.fullmatch(rf"{re.escape(safe)}-(\d+)", p.name))]
    return root / f"{safe}-{max(taken, default=0) + 1:03d}"


def holds_a_run(directory) -> bool:
    d = Path(directory)
    return d.is_dir() and any((d / name).exists() for name in (LAST, LAST + ".old", BEST, "llmnb.json"))


def find_checkpoint(run_dir, which: str = LAST) -> Path | None:
    """The checkpoint folder to load, also after a crash between the two renames of a write."""
    for candidate in (Path(run_dir) / which, Path(run_dir) / (which + ".old")):
        if (candidate / STATE_FILE).exists():
            return candidate
    return None


def latest_run(model_name: str) -> Path | None:
    """The newest run folder of `model_name` that has a checkpoint."""
    stem = new_run_dir(model_name).name.rsplit("-", 1)[0]
    runs = sorted(p for p in runs_root().glob(f"{stem}-*") if find_checkpoint(p))
    return runs[-1] if runs else None


# ----------------------------------------------------------------------------- writing

def _atomic_dir(final: Path, write) -> None:
    """Fill a temporary folder with `write(tmp)`, then swap it in for `final`."""
    tmp = final.with_name(final.name + ".tmp")
    old = final.with_name(final.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write(tmp)
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)  # from here until the next rename, loaders fall back to .old
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def _link_or_copy(src, dst):
    # Checkpoint files are never modified in place, so a hard link is a safe, instant copy.
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


class Checkpointer(Callback):
    """Listener that writes checkpoint-last (and checkpoint-best when it improved) at each evaluation."""

    def __init__(self, run_dir, engine, tokenizer, extra: dict):
        self.run_dir = Path(run_dir)
        self.engine = engine
        self.tokenizer = tokenizer
        self.extra = extra  # labels, config, model name: what a resumed run must match
        self.saved_steps: list[int] = []

    def on_evaluate(self, state: TrainState, metrics) -> None:
        import torch

        from .models import quiet_transformers

        def write(folder: Path):
            with quiet_transformers():  # no "Writing model shards" bar on stderr
                self.engine.model.save_pretrained(folder, safe_serialization=True)
                self.tokenizer.save_pretrained(folder)
            torch.save(self.engine.snapshot(), folder / TRAINING_FILE)
            payload = {"state": state_to_dict(state), **self.extra}
            (folder / STATE_FILE).write_text(json.dumps(payload, indent=1, default=str))

        self.run_dir.mkdir(parents=True, exist_ok=True)
        _atomic_dir(self.run_dir / LAST, write)
        if state.best_step == state.step:
            last = self.run_dir / LAST
            _atomic_dir(self.run_dir / BEST, lambda tmp: shutil.copytree(last, tmp, dirs_exist_ok=True, copy_function=_link_or_copy))
        self.saved_steps.append(state.step)


# ----------------------------------------------------------------------------- reading

def state_to_dict(state: TrainState) -> dict:
    data = asdict(state)
    data.pop("started_at", None)  # a clock reading means nothing in another process
    return data


def state_from_dict(data: dict) -> TrainState:
    known = {f.name for f in fields(TrainState)} - {"started_at"}
    return TrainState(**{k: v for k, v in data.items() if k in known})


def read_checkpoint(folder: Path) -> tuple[dict, dict, dict]:
    """(trainer_state.json contents, training snapshot, model weights on the CPU)."""
    import torch
    from safetensors.torch import load_file

    payload = json.loads((folder / STATE_FILE).read_text())
    snapshot = torch.load(folder / TRAINING_FILE, map_location="cpu", weights_only=True)
    weights = load_file(folder / "model.safetensors", device="cpu")
    return payload, snapshot, weights

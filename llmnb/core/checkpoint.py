"""Run folders and checkpoints: nothing trained is lost to a crash, a restart or Ctrl-C, and a
default run leaves little on disk.

A run folder (`--out DIR`, or `runs/<model>-NNN` by default, never reused) holds

    model.safetensors  ...  the final weights (the best evaluation's) and tokenizer
    llmnb.json              what the run was: model, task, labels, metrics, options
    checkpoint/             only while a run can still be resumed: weights, optimizer,
                            scheduler, RNG states, step, history and label map, and
                            best.safetensors when the best weights are not the current ones

Disk is the budget here: MiniLM's weights are 87 MB and AdamW's state twice that, and learners
run many models. So a resumable checkpoint is written by `Checkpointer` (a listener like the
display) only once a run has trained for `checkpoint_every` minutes since the last one (at the
next evaluation), and always on Ctrl-C; a run that finishes removes it, since its final model is
at the top of the folder. A short run leaves only its final model (~90 MB for MiniLM).

Each checkpoint is written into a temporary folder and renamed into place, so a crash in the
middle of a write leaves the previous one whole. A write that fails (disk full, no permission)
warns once, names the space it needed, and training goes on: the model is still in memory.
Weights are safetensors; training state is loaded with `torch.load(weights_only=True)`.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
import warnings
from dataclasses import asdict, fields
from pathlib import Path

from llmnb.core.events import Callback, TrainState
from llmnb.errors import ConfigError, DiskWarning

CHECKPOINT = "checkpoint"
LEGACY = ("checkpoint-last",)  # the name earlier versions gave it; still resumable
LAST = CHECKPOINT  # the name older code imports
STATE_FILE, TRAINING_FILE, BEST_FILE = "trainer_state.json", "training.pt", "best.safetensors"


def write_errors() -> tuple[type, ...]:
    """What a failed write raises: OSError, and safetensors' own error (a full disk while it
    serializes weights is a `SafetensorError`, not an OSError)."""
    try:
        from safetensors import SafetensorError
    except ImportError:
        return (OSError,)
    return (OSError, SafetensorError)


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
    names = [n + tail for n in (CHECKPOINT, *LEGACY) for tail in ("", ".old")] + ["llmnb.json"]
    return d.is_dir() and any((d / name).exists() for name in names)


def find_checkpoint(run_dir, which: str = CHECKPOINT) -> Path | None:
    """The checkpoint folder to load, also after a crash between the two renames of a write."""
    for name in (which, *LEGACY) if which == CHECKPOINT else (which,):
        for candidate in (Path(run_dir) / name, Path(run_dir) / (name + ".old")):
            if (candidate / STATE_FILE).exists():
                return candidate
    return None


def discard_checkpoint(run_dir) -> None:
    """Remove the resumable checkpoint of a run that finished: its final model is saved beside it."""
    for name in (CHECKPOINT, *LEGACY):
        for tail in ("", ".old", ".tmp"):
            shutil.rmtree(Path(run_dir) / (name + tail), ignore_errors=True)


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
    try:
        tmp.mkdir(parents=True)
        write(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # a half-written copy must not hold the space a retry needs
        raise
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)  # from here until the next rename, loaders fall back to .old
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def state_bytes(model, optimizer=None) -> int:
    """Bytes a checkpoint of `model` (and its optimizer state) takes: what a write needs free."""
    size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    if optimizer is not None:
        for values in optimizer.state.values():
            size += sum(v.numel() * v.element_size() for v in values.values() if hasattr(v, "numel"))
    return size


def write_failed(folder, error: Exception, needed: int, what: str) -> str:
    """One paragraph for a write that failed, with the space it needed and the space there is."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        free = f"{shutil.disk_usage(existing).free / 1e6:,.0f} MB are free there"
    except OSError:
        free = "the free space there could not be read"
    return (
        f"Could not write {what} to '{folder}': {getattr(error, 'strerror', None) or error}. It needs about {needed / 1e6:,.0f} MB "
        f"and {free}. The model is still in memory; free some space (llmnb.clean_runs(keep=3) removes old runs) "
        "and save it with ft.save('a/folder')."
    )


class Checkpointer(Callback):
    """Listener that writes a resumable checkpoint on a time cadence and on Ctrl-C.

    `every_minutes` of training since the last write (or the start) make a checkpoint due; it is
    written at the next evaluation, when the history holds a fresh eval row. 0: every evaluation.
    """

    def __init__(self, run_dir, engine, tokenizer, extra: dict, every_minutes: float = 10.0, clock=time.monotonic):
        self.run_dir = Path(run_dir)
        self.engine = engine
        self.tokenizer = tokenizer
        self.extra = extra  # labels, config, model name: what a resumed run must match
        self.every_seconds = every_minutes * 60
        self.clock = clock
        self.saved_steps: list[int] = []
        self.failed: str | None = None  # the warning, once a write failed; no more tries after it
        self._last_write = None

    def on_train_begin(self, state: TrainState) -> None:
        self._last_write = self.clock()

    def on_evaluate(self, state: TrainState, metrics) -> None:
        if self.clock() - self._last_write >= self.every_seconds:
            self.write(state)

    def on_interrupt(self, state: TrainState) -> None:
        if state.step and (not self.saved_steps or self.saved_steps[-1] != state.step):
            self.write(state)

    def write(self, state: TrainState) -> None:
        """The checkpoint of this step, or one warning if it cannot be written."""
        if self.failed:
            return
        import torch

        from llmnb.core.models import quiet_transformers

        engine = self.engine
        best = engine.best_weights if state.best_step not in (None, state.step) else None

        def fill(folder: Path):
            with quiet_transformers():  # no "Writing model shards" bar on stderr
                engine.model.save_pretrained(folder, safe_serialization=True)
                self.tokenizer.save_pretrained(folder)
            if best is not None:
                from safetensors.torch import save_file

                save_file(best, str(folder / BEST_FILE))
            torch.save(engine.snapshot(), folder / TRAINING_FILE)
            payload = {"state": state_to_dict(state), **self.extra}
            (folder / STATE_FILE).write_text(json.dumps(payload, indent=1, default=str))

        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            _atomic_dir(self.run_dir / CHECKPOINT, fill)
        except write_errors() as error:
            needed = state_bytes(engine.model, engine.optimizer) + (state_bytes(engine.model) if best is not None else 0)
            self.failed = write_failed(self.run_dir / CHECKPOINT, error, needed, f"the checkpoint of step {state.step}")
            state.notes.append("checkpoints were not written: " + self.failed)
            warnings.warn(self.failed, DiskWarning, stacklevel=2)
            return
        self.saved_steps.append(state.step)
        self._last_write = self.clock()


# ----------------------------------------------------------------------------- reading

def state_to_dict(state: TrainState) -> dict:
    data = asdict(state)
    data.pop("started_at", None)  # a clock reading means nothing in another process
    return data


def state_from_dict(data: dict) -> TrainState:
    known = {f.name for f in fields(TrainState)} - {"started_at"}
    state = TrainState(**{k: v for k, v in data.items() if k in known})
    # The clock continues from the last recorded row, so a resumed run's wall-time curve goes on.
    seconds = [r["seconds"] for r in state.history if isinstance(r.get("seconds"), (int, float))]
    state.started_at -= max(seconds, default=0.0)
    return state


def read_checkpoint(folder: Path) -> tuple[dict, dict, dict]:
    """(trainer_state.json contents, training snapshot, model weights on the CPU; None for LoRA adapters)."""
    import torch
    from safetensors.torch import load_file

    payload = json.loads((folder / STATE_FILE).read_text())
    snapshot = torch.load(folder / TRAINING_FILE, map_location="cpu", weights_only=True)
    full = folder / "model.safetensors"  # a LoRA run's checkpoint has adapter_model.safetensors instead
    weights = load_file(full, device="cpu") if full.exists() else None
    return payload, snapshot, weights


def read_best_weights(folder: Path) -> dict | None:
    """The best weights a checkpoint kept apart from its current ones (None: the same, or no eval yet)."""
    from safetensors.torch import load_file

    path = Path(folder) / BEST_FILE
    return load_file(path, device="cpu") if path.exists() else None

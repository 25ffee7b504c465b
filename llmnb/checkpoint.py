"""Where trained weights go on disk, and making sure they can go there before training starts."""
from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError


def check_writable(directory) -> Path:
    """Fail now, not after an hour of training, if `directory` cannot be created or written.

    Nothing is created here: a run that fails before saving leaves no empty folders behind.
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

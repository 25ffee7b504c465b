"""The LLMNB_* environment variables, each read in one place with one meaning.

    LLMNB_QUIET     1/true/yes/on: print nothing (graders, CI); 0/false/no/off or unset: normal
    LLMNB_PROFILE   fast | full: how long the tutorials' runs are (see tutorials/)
    LLMNB_RUNS_DIR  where default run folders go (default: runs/)

This module imports nothing heavy: the display and the self-checks read it without torch.
"""
from __future__ import annotations

import os

TRUE, FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def env_flag(name: str) -> bool:
    """True when the variable says yes. An unknown value (e.g. 'maybe') warns and counts as no."""
    value = os.environ.get(name, "").strip().lower()
    if value in TRUE:
        return True
    if value not in FALSE:
        import warnings

        warnings.warn(f"{name}={os.environ[name]!r} is not understood; use 1 or 0. Treated as 0.", stacklevel=2)
    return False


def quiet() -> bool:
    """LLMNB_QUIET: no progress, no plot, no notices."""
    return env_flag("LLMNB_QUIET")

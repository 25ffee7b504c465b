"""Number, duration and status wording shared by every display.

Kept in one place so the notebook, the console and the chart say the same thing
the same way (a learning rate is always "1.2e-4", never "0.00012").
"""
from __future__ import annotations

import math

from llmnb.core.events import (
    FAILED,
    FINISHED,
    INTERRUPTED,
    RUNNING,
    STOPPED_EARLY,
    TrainState,
)


def sci(value: float, digits: int = 2) -> str:
    """Short scientific notation: 0.00012 -> "1.2e-4" (no "+", no padded exponent)."""
    mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def fmt_num(value: float | None) -> str:
    """A metric or loss value for people: 4 significant digits, scientific when tiny."""
    if value is None:
        return "–"
    if not math.isfinite(value):
        return str(value)  # "nan" / "inf" must stay visible: they mean the run diverged
    if value == 0:
        return "0"
    if abs(value) < 1e-3 or abs(value) >= 1e6:
        return sci(value, 3)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def fmt_duration(seconds: float | None) -> str:
    """65 -> "1:05", 3725 -> "1:02:05"; unknown -> "?"."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def metric_label(key: str) -> str:
    """"eval_accuracy" -> "accuracy": the eval prefix is implied by where it is shown."""
    return key[len("eval_"):] if key.startswith("eval_") else key


def status_text(state: TrainState, detail: bool = True) -> str:
    """How the run stands, e.g. "stopped early at step 120 (best step 80)".

    With `detail`, the engine's own explanation (`state.message`) is used when it has
    one; without, the text stays short enough for a status badge.
    """
    if state.status == RUNNING:
        return RUNNING
    if detail and state.message:
        # The engine knows *why*; make sure the reader still sees *what* happened.
        if state.status.lower() in state.message.lower():
            return state.message
        return f"{state.status}: {state.message}"
    if state.status == FINISHED:
        return FINISHED
    best = f" (best step {state.best_step})" if state.best_step is not None else ""
    if state.status == STOPPED_EARLY:
        return f"{STOPPED_EARLY} at step {state.step}{best}"
    if state.status == INTERRUPTED:
        kept = " — best weights kept" if state.best_step is not None else ""
        return f"{INTERRUPTED} at step {state.step}{kept}"
    if state.status == FAILED:
        return f"{FAILED} at step {state.step}"
    return state.status


def speed_text(state: TrainState) -> str:
    """Throughput; falls back to steps/s when the engine does not count samples."""
    if state.samples_seen:
        return f"{state.samples_per_second:.1f} samples/s"
    elapsed = state.elapsed
    return f"{state.step / elapsed:.2f} steps/s" if elapsed > 0 else ""


def best_text(state: TrainState) -> str:
    """E.g. "best accuracy 0.912 at step 320", or "" before the first evaluation."""
    if state.best_metric is None:
        return ""
    where = f" at step {state.best_step}" if state.best_step is not None else ""
    return f"best {metric_label(state.metric_name)} {fmt_num(state.best_metric)}{where}"


def fmt_tick(value: float, step: float) -> str:
    """Just enough digits to tell neighbouring ticks apart: 0.42, 1.2e-4, 1500, 12k."""
    if abs(value) < step * 1e-6:
        return "0"
    if step < 1e-3 or abs(value) >= 1e5:
        # As many mantissa digits as the step needs: 6.925e-1 and 6.95e-1, never 6.93e-1 twice.
        scale = 10.0 ** math.floor(math.log10(abs(value)))
        return sci(value, min(6, _decimals(step / scale) + 1))
    if step >= 1:
        return f"{value / 1000:g}k" if abs(value) >= 10_000 else f"{value:.0f}"
    return f"{value:.{_decimals(step)}f}"


def _decimals(step: float) -> int:
    """Decimals that write a multiple of `step` exactly: 0.25 -> 2, 0.5 -> 1, 2 -> 0."""
    return next((d for d in range(0, 8) if abs(round(step, d) - step) < step * 1e-6), 8)


def fmt_column(values: list[float | None]) -> list[str]:
    """A table column with one number of decimals, so the decimal points line up:
    0.5 and 0.7708 -> "0.5000", "0.7708" (4 significant digits for the largest value)."""
    finite = [abs(v) for v in values if v is not None and math.isfinite(v) and v != 0]
    if not finite or max(finite) < 1e-3 or max(finite) >= 1e6:
        return [fmt_num(v) for v in values]
    decimals = max(0, 3 - math.floor(math.log10(max(finite))))
    if decimals > 6:  # values spanning many magnitudes: each one on its own
        return [fmt_num(v) for v in values]
    return [fmt_num(v) if v is None or not math.isfinite(v) else f"{v:,.{decimals}f}" for v in values]

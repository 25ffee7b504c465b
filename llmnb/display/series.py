"""What the loss chart shows, decided once for both renderers.

`chart_panels` turns `TrainState.history` rows into panels of lines (already
smoothed and downsampled); svg.py draws them live in the notebook and plot.py
draws them with matplotlib. Neither renderer picks series, colours or smoothing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

from llmnb.display.text import metric_label

# Mid-tone colours: enough contrast on a white page and on a dark theme (#1e1e1e).
BLUE = "#3b7dd8"  # training
ORANGE = "#e8710a"  # anything measured on the validation set
GREY = "#8a8a8a"  # learning rate, secondary information

MAX_POINTS = 300  # per series: more is invisible at this size and slows redraws
MAX_MARKERS = 60  # beyond this, dots on every evaluation merge into a blur

# Eval-row keys that are timings, not quality metrics (Hugging Face style rows).
_TIMING_SUFFIXES = ("runtime", "per_second")


@dataclass
class Line:
    label: str
    xs: list[float]
    ys: list[float]
    color: str
    width: float = 2.0
    opacity: float = 1.0
    markers: bool = False  # dot every point: evaluations are few and discrete
    in_legend: bool = True


@dataclass
class Panel:
    title: str
    lines: list[Line]
    weight: float  # share of the chart width
    empty_text: str = ""  # shown while no line has data yet
    best_x: float | None = None  # step of the best checkpoint, drawn as a dashed rule

    @property
    def has_data(self) -> bool:
        return any(line.xs for line in self.lines)


def column(history: Iterable[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of every row holding a finite `key`: a NaN loss must not break drawing."""
    xs, ys = [], []
    for row in history:
        value = row.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value):
            xs.append(float(row.get("step", len(xs))))
            ys.append(float(value))
    return xs, ys


def eval_metric_keys(history: Iterable[dict[str, Any]]) -> list[str]:
    """"eval_*" quality metrics in order of first appearance (eval_loss first if present)."""
    keys: dict[str, None] = {}
    for row in history:
        for key in row:
            if key.startswith("eval_") and not key.endswith(_TIMING_SUFFIXES):
                keys.setdefault(key)
    return sorted(keys, key=lambda k: k != "eval_loss")  # stable: keeps the rest in order


def pick_metric(history: list[dict[str, Any]], metric_name: str | None) -> str | None:
    """The metric for the right-hand panel; None when only the loss exists.

    The loss already has its own panel, so when the headline metric *is* the loss we
    show the first other metric (e.g. perplexity) instead of drawing the loss twice.
    """
    if metric_name:
        name = metric_name if metric_name.startswith("eval_") else f"eval_{metric_name}"
        if name != "eval_loss":
            return name
    others = [k for k in eval_metric_keys(history) if k != "eval_loss"]
    return others[0] if others else None


# (training column, validation column, panel title) of the first panel, the first whose training
# column the history holds. Learning from rewards (tasks/grpo.py) logs the reward: its loss
# hovers around 0 by construction and says little.
TRAIN_CURVES = (("reward_mean", "eval_reward", "reward"), ("train_loss", "eval_loss", "loss"))


def train_curve(history) -> tuple[str, str, str]:
    for curve in TRAIN_CURVES[:-1]:
        if any(curve[0] in row for row in history):
            return curve
    return TRAIN_CURVES[-1]


def ema(values: list[float]) -> list[float]:
    """Bias-corrected exponential moving average (as TensorBoard's smoothing slider).

    Smoothing grows with the number of points so a long run's noisy loss still reads
    as a trend, while a 20-point run is barely changed.
    """
    beta = min(0.95, max(0.6, 1 - 5 / max(len(values), 1)))
    out, avg = [], 0.0
    for t, value in enumerate(values, start=1):
        avg = beta * avg + (1 - beta) * value
        out.append(avg / (1 - beta**t))
    return out


def downsample(xs: list[float], ys: list[float], max_points: int = MAX_POINTS):
    """At most `max_points` points, keeping each bucket's min and max so spikes survive."""
    n = len(xs)
    if n <= max_points:
        return xs, ys
    buckets = max(1, (max_points - 2) // 2)
    keep = {0, n - 1}  # the ends: where the run started and the latest value
    for b in range(buckets):
        idx = range(1 + b * (n - 2) // buckets, 1 + (b + 1) * (n - 2) // buckets)
        if idx:
            keep.add(min(idx, key=ys.__getitem__))
            keep.add(max(idx, key=ys.__getitem__))
    order = sorted(keep)
    return [xs[i] for i in order], [ys[i] for i in order]


def chart_panels(
    history: list[dict[str, Any]],
    metric_name: str | None = None,
    best_step: int | None = None,
    max_points: int = MAX_POINTS,
) -> list[Panel]:
    """Loss panel, metric panel (if there is a metric) and learning-rate panel (if logged)."""
    def series(key):
        return downsample(*column(history, key), max_points)

    train_key, eval_key, title = train_curve(history)
    steps, loss = column(history, train_key)
    # Smooth at full resolution, then thin out: smoothing thinned data would alias.
    raw = Line("train (raw)", *downsample(steps, loss, max_points), BLUE, 1.0, 0.35, in_legend=False)
    smooth = Line("train", *downsample(steps, ema(loss), max_points), BLUE)
    val_steps, val_loss = series(eval_key)
    val = Line("validation", val_steps, val_loss, ORANGE, markers=len(val_steps) <= MAX_MARKERS)
    panels = [Panel(title, [raw, smooth, val], 3.0, "waiting for the first log row", best_step)]

    metric = pick_metric(history, metric_name)
    if metric == eval_key:  # already drawn beside its training curve
        metric = next((k for k in eval_metric_keys(history) if k not in (eval_key, "eval_loss")), None)
    if metric:
        label = metric_label(metric)
        xs, ys = series(metric)
        line = Line(label, xs, ys, ORANGE, markers=len(xs) <= MAX_MARKERS, in_legend=False)
        waiting = "waiting for the first evaluation"
        panels.append(Panel(f"{label} (validation)", [line], 2.2, waiting, best_step))

    lr_steps, lr = series("lr")
    if lr_steps:
        line = Line("learning rate", lr_steps, lr, GREY, 1.2, in_legend=False)
        panels.append(Panel("learning rate", [line], 1.4))
    return panels

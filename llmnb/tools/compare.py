"""`llmnb.compare` and `%compare`: runs side by side, as curves and one table.

    llmnb.compare(full, frozen, lora)                     # results in memory
    llmnb.compare("minilm-003", "minilm-004")             # or runs reopened from runs/ (llmnb.load_run)
    %compare full frozen lora --names full,top-2,LoRA

The figure overlays the training loss and the evaluation metric, each against optimizer steps
and against wall time: a run can win per step and lose per second (LoRA often does both ways
round). The table has, per run: the best and final metric, the wall time, the peak memory, the
share of parameters trained, and how the best metric and the wall time differ from the first run.
A run is named by what differs in its options from the first run, unless `names` are given.
"""
from __future__ import annotations

import base64
import io
import math

# Options that say nothing about the training itself: never used to name a run.
NOT_NAMING = {"quiet", "plot", "out", "overwrite", "report_to", "save_checkpoints", "checkpoint_every", "eval_generate"}
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


class Comparison:
    """What `compare` returns: `.table` (a DataFrame, one row per run) and `.figure` (matplotlib).
    Shown in a notebook as the figure above the table.

    Taught in chapter 4 (tutorials/04_math.ipynb).
    """

    def __init__(self, table, figure, metric: str):
        self.table, self.figure, self.metric = table, figure, metric

    def _repr_html_(self):
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=100)
        image = base64.b64encode(buffer.getvalue()).decode("ascii")
        return (f'<img src="data:image/png;base64,{image}" alt="curves of the compared runs"/>'
                + self.table.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="–"))

    def __repr__(self):
        return self.table.to_string(index=False, float_format=lambda v: f"{v:.4g}", na_rep="-")


def compare(*runs, names=None, metric: str | None = None, path=None) -> Comparison:
    """Put runs side by side: curves (training loss and the metric, against step and against wall
    time) and a table (best and final metric, wall time, peak memory, trained share, differences
    from the first run). `runs`: results (fine-tune, chat or pretrain) or run names/folders.
    `metric`: the metric to compare (default: the first run's, e.g. accuracy). `path`: save the
    figure as PNG there too.

    Taught in chapter 4 (tutorials/04_math.ipynb).
    """
    from llmnb.errors import ConfigError

    if len(runs) == 1 and isinstance(runs[0], (list, tuple)):
        runs = tuple(runs[0])
    if not runs:
        raise ConfigError("compare() needs at least one run: results such as ft, or run names from llmnb.runs().")
    results = [_as_result(run, i) for i, run in enumerate(runs)]
    if names is not None:
        names = [n.strip() for n in names.split(",")] if isinstance(names, str) else [str(n) for n in names]
        if len(names) != len(results):
            raise ConfigError(f"names= gives {len(names)} names for {len(results)} runs; give one name per run.")
    else:
        names = run_names(results)
    metric = "eval_" + (metric or results[0].state.metric_name).removeprefix("eval_")
    table = comparison_table(results, names, metric)
    figure = comparison_figure(results, names, metric)
    if path is not None:
        figure.savefig(path, dpi=150)
    return Comparison(table, figure, metric)


def _as_result(run, index: int):
    from llmnb.core.result import TrainResult
    from llmnb.errors import ConfigError

    if isinstance(run, TrainResult):
        return run
    if isinstance(run, str) or hasattr(run, "__fspath__"):
        from llmnb.tools.load_run import load_run

        return load_run(run, model=False)
    raise ConfigError(f"compare() takes results (ft from llmnb.finetune, gpt from llmnb.pretrain) or run names; "
                      f"run {index + 1} is a {type(run).__name__}.")


def run_names(results) -> list[str]:
    """Each run named by the options that differ from the first run's (the first: its model)."""
    first = results[0].config.to_dict()
    names = []
    for i, result in enumerate(results):
        options = result.config.to_dict()
        changed = [k for k, v in options.items() if k not in NOT_NAMING and first.get(k) != v]
        label = ", ".join(f"{k}={options[k]}" for k in changed[:3]) if changed else ""
        if not label:
            label = str(getattr(result, "model_name", "") or type(result).__name__.removesuffix("Result").lower())
        names.append(label)
    # duplicates get their position, so every curve has its own label
    return [f"{name} (#{i + 1})" if names.count(name) > 1 else name for i, name in enumerate(names)]


def _evaluations(result, metric: str) -> list[dict]:
    return [r for r in result.state.history if metric in r and _finite(r[metric])]


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _parameters(result) -> tuple[int | None, int | None]:
    """(trained, total), from the model or, without it, as recorded."""
    counts = result.parameter_counts()
    return counts.get("trainable"), counts.get("total")


def comparison_table(results, names, metric: str):
    """One row per run; the last two columns compare each run with the first."""
    import pandas as pd

    short = metric.removeprefix("eval_")
    greater = results[0].state.greater_is_better if results[0].state.metric_name == metric else short not in ("loss", "mse", "perplexity")
    rows = []
    for name, result in zip(names, results):
        evals = _evaluations(result, metric)
        values = [r[metric] for r in evals]
        trained, total = _parameters(result)
        rows.append({
            "run": name,
            "status": result.status,
            "steps": result.state.step,
            f"best {short}": (max(values) if greater else min(values)) if values else math.nan,
            f"final {short}": values[-1] if values else math.nan,
            "wall s": result.wall_seconds if result.wall_seconds is not None else math.nan,
            "peak MB": result.peak_memory_mb if result.peak_memory_mb is not None else math.nan,
            "trained share": trained / total if trained is not None and total else math.nan,
        })
        rewards = [r["reward_mean"] for r in result.state.history if _finite(r.get("reward_mean"))]
        if rewards:  # learning from rewards: the training reward at the end, beside the task metric
            rows[-1]["final training reward"] = rewards[-1]
    table = pd.DataFrame(rows)
    table[f"best {short} - first"] = table[f"best {short}"] - table[f"best {short}"].iloc[0]
    table["wall x first"] = table["wall s"] / table["wall s"].iloc[0]
    return table


def comparison_figure(results, names, metric: str):
    """Training loss and `metric`, each against step and against wall time (seconds)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from llmnb.display.series import train_curve

    key, _, title = train_curve(results[0].state.history)  # runs that learn from rewards: the training reward
    has_metric = any(_evaluations(r, metric) for r in results)
    rows = 2 if has_metric else 1
    figure = Figure(figsize=(9, 3.0 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, 2, squeeze=False)
    short = metric.removeprefix("eval_")
    for i, (name, result) in enumerate(zip(names, results)):
        colour = COLOURS[i % len(COLOURS)]
        train = [r for r in result.state.history if _finite(r.get(key))]
        evals = _evaluations(result, metric)
        for column, x in enumerate(("step", "seconds")):
            points = [(r[x], r[key]) for r in train if _finite(r.get(x))]
            if points:
                axes[0][column].plot(*zip(*points), color=colour, label=name, linewidth=1.2)
            if has_metric:
                points = [(r[x], r[metric]) for r in evals if _finite(r.get(x))]
                if points:
                    axes[1][column].plot(*zip(*points), color=colour, label=name, marker="o", markersize=3)
    for row in range(rows):
        for column, label in enumerate(("optimizer step", "wall time (s)")):
            axes[row][column].set_xlabel(label)
            axes[row][column].set_ylabel(f"training {title}" if row == 0 else f"validation {short}")
            axes[row][column].grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    figure.suptitle(f"{len(results)} runs: training {title} and validation {short}", fontsize=10)
    return figure


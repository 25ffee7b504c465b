"""Metrics through `evaluate`, loaded from the modules shipped in this folder (works offline).

`load_metric("accuracy")` returns an `evaluate` metric; `compute(names, predictions, references)`
returns {"accuracy": ..., "f1": ...}. Add a metric by adding a folder `<name>/<name>.py`.
"""
from __future__ import annotations

import functools
from pathlib import Path

HERE = Path(__file__).parent


def available() -> list[str]:
    return sorted(p.name for p in HERE.iterdir() if (p / f"{p.name}.py").exists())


@functools.lru_cache(maxsize=None)
def load_metric(name: str):
    import evaluate

    path = HERE / name
    if not (path / f"{name}.py").exists():
        from llmnb.errors import ConfigError

        raise ConfigError(f"Unknown metric '{name}'. Metrics shipped with llmnb: {', '.join(available())}.")
    return evaluate.load(str(path))


def compute(names, predictions, references) -> dict[str, float]:
    out = {}
    for name in names:
        out.update(load_metric(name).compute(predictions=predictions, references=references))
    return out


def perplexity(loss: float) -> float:
    """exp(mean next-token loss): how many tokens the model hesitates between, on average. Capped
    at exp(50) so a diverged run reports a huge number instead of overflowing."""
    import math

    return math.exp(min(float(loss), 50.0))

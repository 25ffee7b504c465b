"""defaults: candidate defaults for `finetune` on the bundled reviews (train -> test).

    python benchmarks/defaults.py [--grid quick|seeds|full]

Prints one line per setting: held-out accuracy (recomputed from predict), wall seconds.
The chosen defaults and the table behind them are in docs/defaults.md. As a section of run.py
(`--only defaults`): the quick grid with --quick, the full grid otherwise.
"""
import argparse
import itertools
import json
import time

import common  # noqa: F401  (offline environment, this checkout's llmnb on sys.path)
from common import Section

import llmnb

GRIDS = {
    "quick": {"lr": [5e-5, 1e-4, 2e-4], "epochs": [3, 4], "precision": ["bf16"]},
    "seeds": {"lr": [1e-4, 2e-4], "epochs": [3, 4], "seed": [0, 1, 2], "precision": ["bf16"]},
    "full": {"lr": [3e-5, 5e-5, 1e-4, 2e-4], "epochs": [3, 4, 5], "precision": ["bf16", "fp32"], "seed": [0, 1]},
    "smoke": {"lr": [1e-4], "max_steps": [2]},
}


def measure(grid: dict) -> list[dict]:
    """One fine-tune per setting of the grid: its options, test accuracy, best step, wall seconds."""
    train, test = llmnb.datasets.load("reviews"), llmnb.datasets.load("reviews", "test")
    rows = []
    for values in itertools.product(*grid.values()):
        options = dict(zip(grid, values))
        start = time.perf_counter()
        ft = llmnb.finetune("minilm", train, eval=test, quiet=True, **options)
        wall = time.perf_counter() - start
        predicted = ft.predict(test["text"].tolist())
        accuracy = sum(p == y for p, y in zip(predicted, test["label"])) / len(test)
        rows.append({**options, "accuracy": round(accuracy, 4), "best_step": ft.state.best_step, "seconds": round(wall, 1)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def run(quick: bool) -> Section:
    grid = GRIDS[common.MODE or ("quick" if quick else "full")]
    rows = measure(grid)
    best = max(rows, key=lambda row: row["accuracy"])
    return Section({"defaults_best": best}, rows, f"llmnb.finetune over the grid {grid}, test accuracy from predict")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--grid", choices=[g for g in GRIDS if g != "smoke"], default="quick")
    args = parser.parse_args()
    measure(GRIDS[args.grid])


if __name__ == "__main__":
    main()

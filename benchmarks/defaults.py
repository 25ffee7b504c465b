"""Measure candidate defaults for `finetune` on the bundled reviews (train -> test).

    python benchmarks/defaults.py [--grid quick|full]

Prints one line per setting: held-out accuracy (recomputed from predict), wall seconds.
The chosen defaults and the table behind them are in docs/defaults.md.
"""
import argparse
import itertools
import json
import time

import llmnb

GRIDS = {
    "quick": {"lr": [5e-5, 1e-4, 2e-4], "epochs": [3, 4], "precision": ["bf16"]},
    "seeds": {"lr": [1e-4, 2e-4], "epochs": [3, 4], "seed": [0, 1, 2], "precision": ["bf16"]},
    "full": {"lr": [3e-5, 5e-5, 1e-4, 2e-4], "epochs": [3, 4, 5], "precision": ["bf16", "fp32"], "seed": [0, 1]},
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--grid", choices=GRIDS, default="quick")
    args = parser.parse_args()
    train, test = llmnb.datasets.load("reviews"), llmnb.datasets.load("reviews", "test")
    grid = GRIDS[args.grid]
    for values in itertools.product(*grid.values()):
        options = dict(zip(grid, values))
        start = time.perf_counter()
        ft = llmnb.finetune("minilm", train, eval=test, quiet=True, **options)
        wall = time.perf_counter() - start
        predicted = ft.predict(test["text"].tolist())
        accuracy = sum(p == y for p, y in zip(predicted, test["label"])) / len(test)
        print(json.dumps({**options, "accuracy": round(accuracy, 4), "best_step": ft.state.best_step, "seconds": round(wall, 1)}), flush=True)


if __name__ == "__main__":
    main()

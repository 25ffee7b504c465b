"""trainer: llmnb.finetune against Hugging Face's Trainer with equal settings, whole runs.

    .venv/bin/python benchmarks/trainer.py [--quick]

Both train MiniLM on the 480 bundled reviews with lr 1e-4, batch 16, warmup 10 %, linear decay,
weight decay 0.01, clipping 1.0, fp32, dynamic padding, evaluation with accuracy on the 240 test
reviews after each epoch, no checkpoints; each is timed from model load to the end of training
(the Trainer: common.train_with_trainer, the one baseline every section uses). Accuracy is
recomputed afterwards on the test reviews. llmnb.finetune in bf16 runs in the same rounds, for
bf16.py (whole-run speed and accuracy). Contenders alternate, the order rotating every round.
"""
from __future__ import annotations

import functools
import tempfile
import time

import common
from common import BATCH, LLMNB_LR, SEED, Section, interleave, median, spread, values

import llmnb.finetuning.inference  # noqa: F401  (imported by finetune's result: kept out of the timing)
from llmnb import finetune

SETTINGS = {"quick": dict(epochs=1, rounds=2, deadline=380), "full": dict(epochs=4, rounds=3, deadline=None),
            "smoke": dict(epochs=0.1, rounds=1, deadline=None)}


def epochs(quick: bool) -> float:
    return common.pick(SETTINGS, quick)["epochs"]


@functools.cache
def finetune_rounds(quick: bool) -> dict:
    """Per round: llmnb.finetune fp32, the Trainer, llmnb.finetune bf16 (run once per process).
    Round r uses seed SEED + r for every contender, so accuracy compares at equal seeds."""
    settings = common.pick(SETTINGS, quick)
    if common.busy_scale(quick) < common.BUSY_SCALE:
        settings["rounds"] = 1
    common.warm_up()
    data = common.load_data()
    train, test = data["frames"]
    runs = {}

    def seed_for(name):
        runs[name] = runs.get(name, -1) + 1
        return SEED + runs[name]

    def run_llmnb(precision):
        seed = seed_for(precision)
        start = time.perf_counter()
        ft = finetune("minilm", train, eval=test, quiet=True, save_checkpoints=False, epochs=settings["epochs"], lr=LLMNB_LR,
                      batch_size=BATCH, precision=precision, seed=seed, device="cpu")
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "accuracy": common.accuracy(ft.model, ft.tokenizer, *data["test"]), "best_step": ft.state.best_step}

    def run_trainer():
        seed = seed_for("trainer")
        with tempfile.TemporaryDirectory(prefix="llmnb_bench_") as out:
            start = time.perf_counter()
            baseline = common.train_with_trainer(common.minilm_path(), data["train"], data["test"], out, lr=LLMNB_LR,
                                                 epochs=settings["epochs"], warmup=0.1, weight_decay=0.01, seed=seed)
            seconds = time.perf_counter() - start
        return {"seconds": seconds, "accuracy": common.accuracy(baseline.model, baseline.processing_class, *data["test"]),
                "optim": baseline.args.optim.value}

    contenders = {"llmnb fp32": lambda: run_llmnb("fp32"), "trainer fp32": run_trainer, "llmnb bf16": lambda: run_llmnb("bf16")}
    return interleave(contenders, settings["rounds"], "finetune", deadline=common.deadline(settings["deadline"], quick))


def run(quick: bool) -> Section:
    results = finetune_rounds(quick)
    ratio = [a / b for a, b in zip(values(results, "llmnb fp32"), values(results, "trainer fp32"))]
    summary = {
        "trainer_ratio": median(ratio),
        "trainer_spread": spread(ratio),
        "trainer_optimizer": results["trainer fp32"][-1]["optim"],
        "finetune_seconds": {name: round(median(values(results, name)), 2) for name in results},
        "finetune_accuracy": {name: round(median(values(results, name, "accuracy")), 4) for name in results},
    }
    notes = {"trainer_ratio": ("llmnb.finetune / transformers.Trainer, fp32, wall",
                               f"per round {summary['trainer_spread']}; {epochs(quick):g} epoch(s) x {len(ratio)} round(s); "
                               f"seconds {summary['finetune_seconds']}")}
    timed = (f"llmnb.finetune vs transformers.Trainer, equal settings, fp32, {epochs(quick):g} epoch(s) x {len(ratio)} round(s), "
             "from model load to the end of training (llmnb bf16 alongside, for bf16.py)")
    return Section(summary, common.round_rows(results), timed, notes)


if __name__ == "__main__":
    common.main_for(run)

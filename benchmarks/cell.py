"""A whole notebook cell, timed the way a learner waits for it: `%finetune` with every default
against the Hugging Face Trainer recipe, each in a fresh process, from the first import to the
last line of output.

    .venv/bin/python benchmarks/cell.py              # 2 rounds, then the split of llmnb's cell
    .venv/bin/python benchmarks/cell.py --rounds 1

Data: 600 training / 272 evaluation sentences: the bundled reviews (480 / 240) grown with
restaurant reviews from `llmnb.datasets.synthetic.rated_reviews` (ratings 4-5 positive, 1-2
negative; 120 / 32), all made by llmnb's developers.

  llmnb    llmnb.finetune("minilm", train, eval=test): every default (4 epochs, lr 1e-4, precision
           auto, early stopping, the run folder with the final model), with the notebook display
           (live HTML and the final PNG) drawing into a sink as it would into a cell.
  trainer  transformers.Trainer: lr 5e-5, 3 epochs, batch 16, fp32, evaluation (accuracy) every
           epoch, dynamic padding, no checkpoints, the issue's recipe.

Each contender runs in its own child process, alternating, the order rotating every round; the
ratio of one round's two wall times is that round's `cell_ratio_vs_trainer`, and the median over
rounds is reported (goal <= 0.9). Accuracy is each model's accuracy on the 272 evaluation
sentences (llmnb keeps its best epoch's weights, chosen on those sentences, as the Trainer would
with load_best_model_at_end; both numbers are printed side by side).

The split (`--profile`, also printed after the rounds) times each phase of llmnb's cell in one
more process: imports, data checks, model load, tokenizing, each epoch's steps, each evaluation,
checkpoints, the final save and the final image.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL = 0.9

# Everything below runs in a fresh child process, so that imports count as they do in a new kernel.
CELL_SCRIPT = r'''
import time
T0 = time.perf_counter()
import json, os, sys
role, data_dir, out_dir, profile = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
marks = []  # (phase, seconds)

def timed(owner, name, label):
    real = getattr(owner, name)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            marks.append((label, time.perf_counter() - start))
    setattr(owner, name, wrapper)

if role == "llmnb":
    if profile:
        start = time.perf_counter()
        import torch, transformers, evaluate, pandas  # what the cell imports on its first run
        marks.append(("imports (torch, transformers, evaluate, pandas)", time.perf_counter() - start))
    import pandas as pd
    import llmnb, llmnb.display, llmnb.finetuning.run, llmnb.finetuning.tasks, llmnb.core.checkpoint
    from llmnb.display.notebook import NotebookDisplay
    llmnb.display.in_notebook = lambda: True  # the notebook view, drawing into a sink (stdout)
    train, test = pd.read_csv(f"{data_dir}/train.csv"), pd.read_csv(f"{data_dir}/test.csv")
    if profile:
        from llmnb.core.events import Callback
        timed(llmnb.finetuning.run, "prepare_data", "read and check the data")
        timed(llmnb.finetuning.run, "_load", "load the model")
        timed(llmnb.finetuning.tasks.Task, "encode", "tokenize")
        timed(llmnb.finetuning.run.FineTuneJob, "evaluate", "evaluation")
        timed(llmnb.core.checkpoint.Checkpointer, "write", "checkpoint")
        timed(llmnb.finetuning.run, "save_final", "final save (weights, tokenizer, llmnb.json)")
        timed(NotebookDisplay, "on_train_end", "final image (PNG of the curves)")
        class Epochs(Callback):
            def on_train_begin(self, state):
                self.t = time.perf_counter()
            def on_epoch_end(self, state):
                now = time.perf_counter()
                evals = sum(s for label, s in marks if label == "evaluation")
                marks.append(("epoch (training steps)", now - self.t - (evals - getattr(self, "evals", 0))))
                self.t, self.evals = now, evals
        callbacks = [Epochs()]
    else:
        callbacks = []
    os.environ["LLMNB_RUNS_DIR"] = out_dir
    ft = llmnb.finetune("minilm", train, eval=test, callbacks=callbacks)
    seconds = time.perf_counter() - T0
    accuracy = ft.metrics["eval_accuracy"]
    notes = f"{ft.state.status}, {ft.state.step} steps, best step {ft.state.best_step}, run folder {sum(p.stat().st_size for p in ft.run_dir.rglob('*') if p.is_file()) / 1e6:.0f} MB"
else:
    import numpy as np
    import pandas as pd
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer, TrainingArguments
    from llmnb.core.models import bundled_minilm_path
    transformers.logging.set_verbosity_error()
    train, test = pd.read_csv(f"{data_dir}/train.csv"), pd.read_csv(f"{data_dir}/test.csv")
    names = sorted(set(train["label"]))
    path = str(bundled_minilm_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)

    def rows(frame):
        enc = tokenizer(frame["text"].astype(str).tolist(), truncation=True, max_length=128)
        return [{"input_ids": i, "attention_mask": m, "labels": names.index(y)} for i, m, y in zip(enc["input_ids"], enc["attention_mask"], frame["label"])]

    def compute_metrics(prediction):
        return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}

    args = TrainingArguments(output_dir=out_dir, learning_rate=5e-5, num_train_epochs=3, per_device_train_batch_size=16,
                             per_device_eval_batch_size=16, eval_strategy="epoch", save_strategy="no", report_to=[],
                             use_cpu=True, bf16=False, seed=42)
    trainer = Trainer(model=model, args=args, train_dataset=rows(train), eval_dataset=rows(test), processing_class=tokenizer,
                      data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=compute_metrics)
    trainer.train()
    seconds = time.perf_counter() - T0
    accuracy = trainer.evaluate()["eval_accuracy"]
    notes = "fp32, 3 epochs, lr 5e-5"
print(json.dumps({"seconds": seconds, "accuracy": accuracy, "notes": notes, "marks": marks}))
'''


def make_data(folder) -> dict:
    """600 / 272 labelled sentences (see the module docstring), written as CSV into `folder`."""
    import pandas as pd

    sys.path.insert(0, str(ROOT))
    import llmnb.datasets
    from llmnb.datasets.synthetic import rated_reviews

    def binary(split, n):
        frame = rated_reviews(n * 3, split=split, seed=7)
        frame = frame[frame["rating"] != 3].assign(label=lambda f: f["rating"].map(lambda r: "positive" if r > 3 else "negative"))
        # balanced: n/2 of each
        return pd.concat([frame[frame["label"] == name].head(n // 2) for name in ("positive", "negative")])[["text", "label"]]

    train = pd.concat([llmnb.datasets.load("reviews"), binary("train", 120)]).sample(frac=1, random_state=0)
    test = pd.concat([llmnb.datasets.load("reviews", "test"), binary("test", 32)]).sample(frac=1, random_state=0)
    assert len(train) == 600 and len(test) == 272, (len(train), len(test))
    train.to_csv(Path(folder) / "train.csv", index=False)
    test.to_csv(Path(folder) / "test.csv", index=False)
    return {"train": len(train), "test": len(test)}


def run_cell(role: str, data_dir, profile: bool = False, timeout: int = 900) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("LLMNB_QUIET", None)
    with tempfile.TemporaryDirectory(prefix=f"llmnb_cell_{role}_") as out:
        done = subprocess.run([sys.executable, "-c", CELL_SCRIPT, role, str(data_dir), out, "1" if profile else "0"],
                              capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT)
    if done.returncode:
        raise RuntimeError(f"the {role} cell failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def cell_section(rounds: int, log=print) -> dict:
    """`rounds` of (llmnb, trainer) cells, the order rotating; ratios per round and their median."""
    with tempfile.TemporaryDirectory(prefix="llmnb_cell_data_") as data_dir:
        sizes = make_data(data_dir)
        results = {"llmnb": [], "trainer": []}
        for round_ in range(rounds):
            for role in (("llmnb", "trainer") if round_ % 2 == 0 else ("trainer", "llmnb")):
                row = run_cell(role, data_dir)
                results[role].append(row)
                log(f"  cell  round {round_ + 1}/{rounds}  {role:<8} {row['seconds']:6.1f} s  accuracy {row['accuracy']:.4f}  ({row['notes']})", flush=True)
    ratios = [a["seconds"] / b["seconds"] for a, b in zip(results["llmnb"], results["trainer"])]
    return {
        "cell_ratio_vs_trainer": statistics.median(ratios),
        "cell_ratios": [round(r, 3) for r in ratios],
        "cell_seconds": {k: round(statistics.median(r["seconds"] for r in v), 1) for k, v in results.items()},
        "cell_accuracy": {k: round(statistics.median(r["accuracy"] for r in v), 4) for k, v in results.items()},
        "cell_rounds": rounds,
        "cell_data": sizes,
    }


def profile_split(log=print) -> dict:
    """One llmnb cell with each phase timed; returns {phase: seconds} (epochs and evaluations summed)."""
    with tempfile.TemporaryDirectory(prefix="llmnb_cell_data_") as data_dir:
        make_data(data_dir)
        row = run_cell("llmnb", data_dir, profile=True)
    split: dict[str, list[float]] = {}
    for label, seconds in row["marks"]:
        split.setdefault(label, []).append(seconds)
    accounted = sum(sum(v) for v in split.values())
    log(f"  split of one llmnb cell ({row['seconds']:.1f} s, {row['notes']}):")
    for label, values in split.items():
        each = f"  ({len(values)} x {statistics.mean(values):.2f} s)" if len(values) > 1 else ""
        log(f"    {label:<48}{sum(values):7.2f} s{each}")
    log(f"    {'the rest (python start, llmnb imports, plan, etc.)':<48}{row['seconds'] - accounted:7.2f} s")
    return {label: round(sum(v), 2) for label, v in split.items()} | {"total": round(row["seconds"], 2)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--profile", action="store_true", help="only the split of llmnb's cell")
    args = parser.parse_args()
    found = {}
    if not args.profile:
        found = cell_section(args.rounds)
        ok = found["cell_ratio_vs_trainer"] <= GOAL
        print(f"cell_ratio_vs_trainer {found['cell_ratio_vs_trainer']:.3f} (goal <= {GOAL}: {'met' if ok else 'NOT met'}); "
              f"accuracy llmnb {found['cell_accuracy']['llmnb']:.4f} vs trainer {found['cell_accuracy']['trainer']:.4f}")
    found["split"] = profile_split()
    print(json.dumps(found))


if __name__ == "__main__":
    main()

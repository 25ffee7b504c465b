"""cell: what a learner's notebook cells cost, each timed in a fresh process the way a learner
waits for it: `%load_ext llmnb`, a whole default `%finetune` cell against the Hugging Face Trainer
recipe (and what its live display costs it), and the memory a bundled fine-tune needs.

    .venv/bin/python benchmarks/cell.py              # 2 rounds, then the split of llmnb's cell
    .venv/bin/python benchmarks/cell.py --rounds 1
    .venv/bin/python benchmarks/cell.py --profile    # only the split

  load_ext  a fresh python starts IPython's InteractiveShell; only `%load_ext llmnb` is timed
            (median of 3, or 7 in full mode); those processes also report whether torch or
            transformers got imported (they must not).
  cell      600 training / 272 evaluation sentences: the bundled reviews (480 / 240) grown with
            restaurant reviews from `llmnb.datasets.synthetic.rated_reviews` (ratings 4-5 positive,
            1-2 negative; 120 / 32), all made by llmnb's developers. Each contender is timed from the
            first import to the last line of output, alternating, the order rotating every round,
            both with the benchmark's torch thread count (OMP_NUM_THREADS):
      llmnb    llmnb.finetune("minilm", train, eval=test): every default (4 epochs, lr 1e-4, precision
               auto, early stopping, the run folder with the final model), with the notebook display
               (live HTML and the final PNG) drawing into a kernel-like sink (common.KernelSink).
      trainer  common.train_with_trainer with the Trainer recipe: lr 5e-5, 3 epochs, batch 16, fp32,
               accuracy every epoch, dynamic padding, no checkpoints.
            cell_ratio_vs_trainer is the median over rounds of llmnb's wall / the Trainer's (goal
            <= 0.9). Accuracy: each model on the 272 evaluation sentences (llmnb keeps its best
            epoch's weights, chosen on them, as the Trainer would with load_best_model_at_end).
            cell_display_cost_fraction: seconds inside the notebook display's callbacks / the
            Engine's fit() wall time without them, in llmnb's cell (goal <= 0.01).
  memory    VmHWM (peak resident memory) of a fresh process running the bundled fine-tune
            (quick: 10 steps, or 4 on a busy machine, and an evaluation; full: the whole run).

The split (`--profile`, also printed by `python cell.py` after the rounds) times each phase of
llmnb's cell in one more process: imports, data checks, model load, tokenizing, each epoch's
steps, each evaluation, the display's callbacks, checkpoints, the final save.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import common
import torch
from common import Section, median

SETTINGS = {"quick": dict(rounds=1, load_ext=3, memory_steps=10), "full": dict(rounds=3, load_ext=7, memory_steps=None),
            "smoke": dict(rounds=0, load_ext=1, memory_steps=2)}
QUICK_MEMORY_DEADLINE = 600  # past this many seconds of --quick, the memory run takes 2 steps

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
    import common  # light: the kernel-like sink
    import IPython.display
    import pandas as pd
    import llmnb, llmnb.display, llmnb.core.engine, llmnb.finetuning.run, llmnb.tasks.classification, llmnb.core.checkpoint
    from llmnb.display.notebook import NotebookDisplay
    from llmnb.display.plot import CHARTS
    llmnb.display.in_notebook = lambda: True  # the notebook view...
    IPython.display.display = common.KernelSink()  # ...each update serialised as a kernel would send it
    train, test = pd.read_csv(f"{data_dir}/train.csv"), pd.read_csv(f"{data_dir}/test.csv")
    for event in ("on_train_begin", "on_log", "on_evaluate", "on_epoch_end", "on_train_end"):
        timed(NotebookDisplay, event, "display callbacks (live view, final image)")
    timed(llmnb.core.engine.Engine, "fit", "fit")
    callbacks = []
    if profile:
        from llmnb.core.events import Callback
        timed(llmnb.finetuning.run.FineTuneJob, "prepare_data", "read and check the data")
        timed(llmnb.finetuning.run, "_load", "load the model")
        timed(llmnb.tasks.classification.Classification, "encode", "tokenize")
        timed(llmnb.finetuning.run.FineTuneJob, "evaluate", "evaluation")
        timed(llmnb.core.checkpoint.Checkpointer, "write", "checkpoint")
        timed(llmnb.finetuning.run, "save_final", "final save (weights, tokenizer, llmnb.json)")
        class Epochs(Callback):
            def on_train_begin(self, state):
                self.t, self.evals = time.perf_counter(), 0.0
            def on_epoch_end(self, state):
                now = time.perf_counter()
                evals = sum(s for label, s in marks if label == "evaluation")
                shown = sum(s for label, s in marks if label.startswith("display"))
                marks.append(("epoch (training steps)", now - self.t - (evals - self.evals) - (shown - getattr(self, "shown", 0.0))))
                self.t, self.evals, self.shown = now, evals, shown
        callbacks = [Epochs()]
    os.environ["LLMNB_RUNS_DIR"] = out_dir
    ft = llmnb.finetune("minilm", train, eval=test, callbacks=callbacks)
    seconds = time.perf_counter() - T0
    accuracy = ft.metrics["eval_accuracy"]
    display = sum(s for label, s in marks if label.startswith("display"))
    fit = sum(s for label, s in marks if label == "fit")
    marks = [m for m in marks if m[0] != "fit"]
    extra = {"display_s": display, "fit_s": fit, "display_fraction": display / (fit - display), "chart_thread_cpu_s": CHARTS.cpu_seconds}
    notes = f"{ft.state.status}, {ft.state.step} steps, best step {ft.state.best_step}, run folder {sum(p.stat().st_size for p in ft.run_dir.rglob('*') if p.is_file()) / 1e6:.0f} MB"
else:
    import pandas as pd
    import common
    import transformers
    from llmnb.core.models import bundled_minilm_path
    transformers.logging.set_verbosity_error()
    train, test = pd.read_csv(f"{data_dir}/train.csv"), pd.read_csv(f"{data_dir}/test.csv")
    names = sorted(set(train["label"]))
    def texts_labels(frame):
        return frame["text"].astype(str).tolist(), [names.index(y) for y in frame["label"]]
    trainer = common.train_with_trainer(str(bundled_minilm_path()), texts_labels(train), texts_labels(test), out_dir)
    seconds = time.perf_counter() - T0
    accuracy = trainer.evaluate()["eval_accuracy"]
    extra, notes = {}, "fp32, 3 epochs, lr 5e-5"
print(json.dumps({"seconds": seconds, "accuracy": accuracy, "notes": notes, "marks": marks, **extra}))
'''

LOAD_EXT_SCRIPT = r"""
import json, sys, time
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
start = time.perf_counter()
shell.run_line_magic("load_ext", "llmnb")
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "torch": "torch" in sys.modules, "transformers": "transformers" in sys.modules}))
"""

MEMORY_SCRIPT = r"""
import json, sys
import torch
torch.set_num_threads(int(sys.argv[1]))
import llmnb
max_steps = None if sys.argv[2] == "none" else int(sys.argv[2])
ft = llmnb.finetune("minilm", "reviews", eval="reviews_test", quiet=True, save_checkpoints=False, max_steps=max_steps)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent through fork/vfork + exec,
# so a child of a big benchmark process would report the parent's peak.
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"peak_rss_mb": peak_kb / 1024, "steps": ft.state.step,
                  "precision": str(llmnb.core.engine.choose_precision("auto", torch.device("cpu")))}))
"""


def make_data(folder) -> dict:
    """600 / 272 labelled sentences (see the module docstring), written as CSV into `folder`."""
    import pandas as pd

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


def run_cell(role: str, data_dir, profile: bool = False) -> dict:
    # Both cells with the benchmark's thread count (1 on a busy machine: see run.py --threads).
    env = {"LLMNB_QUIET": "0", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": str(torch.get_num_threads())}
    with tempfile.TemporaryDirectory(prefix=f"llmnb_cell_{role}_") as out:
        return common.child(CELL_SCRIPT, role, data_dir, out, "1" if profile else "0", env=env)


def cell_rounds(rounds: int) -> tuple[dict, dict]:
    """`rounds` of (llmnb, trainer) cells, the order rotating: {role: [rows]}, data sizes."""
    with tempfile.TemporaryDirectory(prefix="llmnb_cell_data_") as data_dir:
        sizes = make_data(data_dir)
        results = {"llmnb": [], "trainer": []}
        for round_ in range(rounds):
            for role in (("llmnb", "trainer") if round_ % 2 == 0 else ("trainer", "llmnb")):
                row = run_cell(role, data_dir)
                results[role].append(row)
                display = f"  display {row['display_fraction']:.4f} of fit" if role == "llmnb" else ""
                common.log(f"  cell  round {round_ + 1}/{rounds}  {role:<8} {row['seconds']:6.1f} s  accuracy {row['accuracy']:.4f}"
                           f"{display}  ({row['notes']})")
    return results, sizes


def profile_split() -> dict:
    """One llmnb cell with each phase timed; returns {phase: seconds} (epochs and evaluations summed)."""
    with tempfile.TemporaryDirectory(prefix="llmnb_cell_data_") as data_dir:
        make_data(data_dir)
        row = run_cell("llmnb", data_dir, profile=True)
    split: dict[str, list[float]] = {}
    for label, seconds in row["marks"]:
        split.setdefault(label, []).append(seconds)
    accounted = sum(sum(v) for v in split.values())
    common.log(f"  split of one llmnb cell ({row['seconds']:.1f} s, {row['notes']}):")
    for label, values in split.items():
        each = f"  ({len(values)} x {statistics.mean(values):.2f} s)" if len(values) > 1 else ""
        common.log(f"    {label:<48}{sum(values):7.2f} s{each}")
    common.log(f"    {'the rest (python start, llmnb imports, plan, etc.)':<48}{row['seconds'] - accounted:7.2f} s")
    return {label: round(sum(v), 3) for label, v in split.items()} | {"total": round(row["seconds"], 2)}


def run(quick: bool) -> Section:
    settings = common.pick(SETTINGS, quick)
    rows, summary, notes = [], {}, {}
    threads = torch.get_num_threads()
    load_ext = [common.child(LOAD_EXT_SCRIPT) for _ in range(settings["load_ext"])]
    rows += [{"load_ext s": r["seconds"], "torch imported": r["torch"], "transformers imported": r["transformers"]} for r in load_ext]
    summary.update(load_ext_seconds=median([r["seconds"] for r in load_ext]),
                   load_ext_imports_torch=any(r["torch"] or r["transformers"] for r in load_ext))
    notes["load_ext_seconds"] = ("%load_ext llmnb in a fresh IPython (median)",
                                 f"{len(load_ext)} processes; torch/transformers imported: {summary['load_ext_imports_torch']}")
    steps = settings["memory_steps"]
    if common.mode(quick) == "quick" and common.busy_scale(quick) < common.BUSY_SCALE:
        steps = 4
    late = common.deadline(QUICK_MEMORY_DEADLINE, quick)
    if late is not None and time.perf_counter() > late:
        steps = 2
    memory = common.child(MEMORY_SCRIPT, threads, "none" if steps is None else steps)
    rows.append({"memory peak RSS MB": round(memory["peak_rss_mb"]), "steps": memory["steps"], "precision": memory["precision"]})
    summary.update(peak_rss_mb=memory["peak_rss_mb"], memory_steps=memory["steps"])
    notes["peak_rss_mb"] = ("VmHWM of a process running the bundled fine-tune", f"{memory['steps']} steps + evaluation, precision auto")
    if settings["rounds"]:
        results, sizes = cell_rounds(settings["rounds"])
        ratios = [a["seconds"] / b["seconds"] for a, b in zip(results["llmnb"], results["trainer"])]
        shown = results["llmnb"]
        summary.update(
            cell_ratio_vs_trainer=median(ratios),
            cell_ratios=[round(r, 3) for r in ratios],
            cell_seconds={k: round(median([r["seconds"] for r in v]), 1) for k, v in results.items()},
            cell_accuracy={k: round(median([r["accuracy"] for r in v]), 4) for k, v in results.items()},
            cell_display_cost_fraction=median([r["display_fraction"] for r in shown]),
            cell_display_seconds=round(median([r["display_s"] for r in shown]), 3),
            cell_chart_thread_cpu_s=round(median([r["chart_thread_cpu_s"] for r in shown]), 3),
            cell_data=sizes,
        )
        rows += [{"round": i + 1, "cell": role, "seconds": r["seconds"], "accuracy": r["accuracy"], "notes": r["notes"],
                  **({"display s": r["display_s"], "fit s": r["fit_s"]} if role == "llmnb" else {})}
                 for role, rs in results.items() for i, r in enumerate(rs)]
        notes["cell_ratio_vs_trainer"] = ("default %finetune cell / Trainer recipe, whole process",
                                          f"per round {summary['cell_ratios']}; seconds {summary['cell_seconds']}; "
                                          f"accuracy {summary['cell_accuracy']} on {sizes['test']} sentences")
        notes["cell_display_cost_fraction"] = ("the default cell's display callbacks / its Engine.fit without them",
                                               f"{summary['cell_display_seconds']} s inside the callbacks; chart thread CPU "
                                               f"{summary['cell_chart_thread_cpu_s']} s beside them")
    timed = (f"fresh processes: %load_ext llmnb x {len(load_ext)}; the bundled fine-tune's peak memory; "
             f"{settings['rounds']} round(s) of a default %finetune cell vs the Trainer recipe")
    return Section(summary, rows, timed, notes)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--profile", action="store_true", help="only the split of llmnb's cell")
    args = parser.parse_args()
    found = {}
    common.set_threads("auto")  # the children get the same count
    if not args.profile:
        SETTINGS["full"]["rounds"] = args.rounds
        section = run(False)
        common.print_section("cell", section)
        found = section.summary
    found["split"] = profile_split()
    print(json.dumps(found))


if __name__ == "__main__":
    sys.exit(main())

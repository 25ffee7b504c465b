"""display: what the live notebook display costs a training run.

    .venv/bin/python benchmarks/display.py [--quick]

display_cost_fraction = seconds spent inside the live notebook display's callbacks / the Engine's
wall time without them, in the same run. Per round: llmnb's Engine trains MiniLM in fp32 on the
bundled reviews for a fixed number of steps (quick 24, not scaled to the machine's load), two
epochs with an evaluation on 64 test reviews at the end of each (as a default run evaluates),
log_every=1 (a redraw chance at every step: the display's worst case), with
`llmnb.display.notebook.NotebookDisplay` drawing into a KernelSink, which does a kernel's work
for every update: the mime bundle, the PNG in base64, the JSON message. The callbacks run on the
training thread, so the time inside them is exactly the wall time they add; what the chart
thread does beside (matplotlib's import and warm-up, the final PNG) is reported as its CPU
seconds. The first round of a process is the one that imports matplotlib (on that thread);
IPython.display is imported beforehand, as a notebook kernel has it loaded.

The split (`split`, in a fresh process): matplotlib's import, the first PNG (fonts, glyphs, a new
figure), a PNG of the kept figure (draw + encode), a PNG of a new figure, the PNG encoding alone,
the kernel's base64 + JSON of it, and one live redraw (HTML + SVG).
"""
from __future__ import annotations

import time

import common
import engine
import IPython.display  # noqa: F401  (a kernel has it loaded: the display imports it on its first draw)
import torch
from common import Section, median

from llmnb.core.engine import Engine
from llmnb.core.events import Callback, TrainState
from llmnb.display import plot
from llmnb.display.notebook import NotebookDisplay

SETTINGS = {"quick": dict(steps=24, rounds=3), "full": dict(steps=60, rounds=5), "smoke": dict(steps=4, rounds=1)}
EVAL_ROWS = 64
DEFAULT_RUN_STEPS = 120  # the bundled default fine-tune: 4 epochs of 30 steps


class Timed(Callback):
    """Forwards every event to `inner` and adds up the seconds spent inside it."""

    def __init__(self, inner):
        self.inner, self.seconds, self.final_seconds = inner, 0.0, 0.0

    def _call(self, name, *args):
        start = time.perf_counter()
        getattr(self.inner, name)(*args)
        spent = time.perf_counter() - start
        self.seconds += spent
        return spent

    def on_train_begin(self, state):
        self._call("on_train_begin", state)

    def on_log(self, state, row):
        self._call("on_log", state, row)

    def on_evaluate(self, state, metrics):
        self._call("on_evaluate", state, metrics)

    def on_epoch_end(self, state):
        self._call("on_epoch_end", state)

    def on_train_end(self, state):
        self.final_seconds = self._call("on_train_end", state)  # the final HTML and the PNG of the curves


def evaluator(model, tokenizer):
    """Loss and accuracy on the first EVAL_ROWS test reviews: a default run's evaluation, smaller."""
    texts, labels = common.load_data()["test"]
    batch = dict(tokenizer(texts[:EVAL_ROWS], truncation=True, max_length=128, padding=True, return_tensors="pt"),
                 labels=torch.tensor(labels[:EVAL_ROWS]))

    def evaluate():
        out = model(**batch)
        return {"eval_loss": float(out.loss), "eval_accuracy": float((out.logits.argmax(-1) == batch["labels"]).float().mean())}

    return evaluate


def one_run(bench) -> dict:
    sink = common.KernelSink()
    shown = Timed(NotebookDisplay(plot=True, display_fn=sink))
    model = bench.fresh()
    state = TrainState(task="classification", model_name="minilm", metric_name="eval_accuracy", greater_is_better=True)
    cpu = plot.CHARTS.cpu_seconds
    start = time.perf_counter()
    done = Engine(model, bench.config, lambda epoch: bench.batches, bench.steps // 2, evaluator(model, bench.tokenizer),
                  [shown], state).fit()
    wall = time.perf_counter() - start
    assert done.status == "finished" and done.step == bench.steps, (done.status, done.message)
    engine_s = wall - shown.seconds
    return {"seconds": engine_s, "display s": shown.seconds, "final s": shown.final_seconds, "draws": shown.inner.draws,
            "fraction": shown.seconds / engine_s, "chart thread cpu s": plot.CHARTS.cpu_seconds - cpu, "kernel kB": sink.bytes / 1000}


SPLIT_SCRIPT = r"""
import json, statistics, sys, time
T = time.perf_counter
start = T()
import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
imported = T() - start
import common
from llmnb.core.events import TrainState
from llmnb.display.notebook import render_html
from llmnb.display.plot import NotebookChart, encode_png
from IPython.display import Image
state = TrainState(task="classification", model_name="minilm", max_steps=152, num_epochs=4, steps_per_epoch=38,
                   metric_name="eval_accuracy", greater_is_better=True, status="finished", step=152)
for s in range(1, 153):  # a default cell's run: 152 steps, 4 evaluations
    state.history.append({"step": s, "train_loss": 0.7 / s ** 0.3, "lr": 1e-4 * (1 - s / 153), "seconds": s * 0.1})
    if s % 38 == 0:
        state.history.append({"step": s, "eval_loss": 0.5 - s / 1000, "eval_accuracy": 0.7 + s / 1000})
        state.best_step = s
args = (state.history, state.metric_name)
options = dict(best_step=state.best_step, max_step=152)
chart = NotebookChart()
start = T(); png = chart.png(*args, **options); first = T() - start

def med(f, n=7):
    times = []
    for _ in range(n):
        start = T(); f(); times.append(T() - start)
    return statistics.median(times)

sink = common.KernelSink()
out = {
    "import matplotlib": imported,
    "first PNG (fonts, glyphs, new figure)": first,
    "PNG of the kept figure (draw + encode)": med(lambda: chart.png(*args, **options)),
    "PNG of a new figure": med(lambda: NotebookChart().png(*args, **options)),
    "draw of the kept figure": med(chart._fig.canvas.draw),
    "PNG encoding": med(lambda: encode_png(chart._fig.canvas.buffer_rgba())),
    "kernel: base64 + JSON of the PNG": med(lambda: sink(Image(data=png, format="png"))),
    "live redraw (HTML + SVG)": med(lambda: render_html(state, chart=True)),
}
print(json.dumps({k: round(v, 4) for k, v in out.items()}))
"""


def split() -> dict:
    """Seconds of each part of the display's work, in a fresh process (so the import is cold)."""
    return common.child(SPLIT_SCRIPT, env={"MPLBACKEND": "Agg"})


def run(quick: bool) -> Section:
    settings = common.pick(SETTINGS, quick)
    bench = engine.Bench(settings["steps"])
    rounds = [one_run(bench) for _ in range(settings["rounds"])]
    for r, row in enumerate(rounds):
        common.log(f"  display round {r + 1}/{len(rounds)}  " + "  ".join(f"{k} {common.fmt(v)}" for k, v in row.items()))
    live = [(r["display s"] - r["final s"]) / r["seconds"] for r in rounds]
    step_s = median([r["seconds"] for r in rounds]) / bench.steps
    parts = split()
    summary = {
        "display_cost_fraction": median([r["fraction"] for r in rounds]),
        "display_live_fraction": median(live),
        "display_final_seconds": median([r["final s"] for r in rounds]),
        "display_draws": median([r["draws"] for r in rounds]),
        "display_chart_thread_cpu_s": [round(r["chart thread cpu s"], 3) for r in rounds],
        # The same costs on the bundled default fine-tune (4 epochs of 30 steps): the end is paid once per run.
        "display_cost_fraction_default_run": median(live) + median([r["final s"] for r in rounds]) / (DEFAULT_RUN_STEPS * step_s),
        "display_split_s": parts,
    }
    notes = {"display_cost_fraction": (
        "time inside the live display / engine wall without it",
        f"{bench.steps} steps, 2 evaluations; live redraws {summary['display_live_fraction']:.4f} ({summary['display_draws']:g} draws) "
        f"+ end of run {summary['display_final_seconds']:.3f} s; chart thread CPU {summary['display_chart_thread_cpu_s']} s; "
        f"projected on the 120-step default fine-tune: {summary['display_cost_fraction_default_run']:.4f}")}
    rows = [{"round": r + 1, **row} for r, row in enumerate(rounds)] + [{"part": k, "seconds": v} for k, v in parts.items()]
    timed = (f"the Engine on MiniLM, {bench.steps} steps fp32 with 2 evaluations, NotebookDisplay drawing into a kernel-like sink, "
             f"its callbacks timed, x {len(rounds)} rounds; the split of the display's work in a fresh process")
    return Section(summary, rows, timed, notes)


if __name__ == "__main__":
    common.main_for(run)

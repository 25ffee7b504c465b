"""llmnb.display.plot: the matplotlib chart, the notebook's reusable figure, its PNG encoder
and the background thread that draws the final PNG of a run."""
from __future__ import annotations

import io
import math
import threading

import pytest

from llmnb.display import plot
from llmnb.display.plot import ChartThread, NotebookChart, encode_png, png_bytes


def history(steps: int, evals=(), wobble: float = 0.03) -> list[dict]:
    rows = []
    for step in range(1, steps + 1):
        rows.append({"step": step, "train_loss": 0.3 + 0.5 * math.exp(-step / 50) + wobble * math.sin(step), "lr": 5e-5 * (1 - step / (steps + 1))})
        if step in evals:
            rows.append({"step": step, "eval_loss": 0.5 - step / 1000, "eval_accuracy": 0.8 + step / 2000})
    return rows


def test_encode_png_keeps_every_pixel():
    np = pytest.importorskip("numpy")
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, size=(7, 5, 4), dtype=np.uint8)
    decoded = Image.open(io.BytesIO(encode_png(pixels)))
    assert decoded.mode == "RGBA" and decoded.size == (5, 7)
    assert (np.asarray(decoded) == pixels).all()


def test_a_reused_figure_draws_what_a_new_one_draws():
    """The notebook's figure is kept between drawings: nothing of an earlier chart may remain."""
    chart = NotebookChart()
    first = dict(best_step=60, max_step=200)
    chart.png(history(200, evals=(60,)), "eval_accuracy", **first)
    for rows, metric, options in [
        (history(120, evals=(40, 80, 120), wobble=0.1), "eval_accuracy", dict(best_step=80, max_step=120)),
        ([{"step": s, "train_loss": 0.6925, "lr": 1e-4} for s in range(1, 30)], None, dict(max_step=60)),  # other panels
        (history(200, evals=(60,)), "eval_accuracy", first),
    ]:
        assert chart.png(rows, metric, **options) == png_bytes(rows, metric, **options)


def test_chart_thread_draws_off_the_calling_thread_and_counts_its_time(monkeypatch):
    charts, seen = ChartThread(), []
    real = charts._chart.png

    def png(*args, **kwargs):
        seen.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(charts._chart, "png", png)
    assert charts.warm_up() is charts.warm_up()  # once per process
    rows = history(50, evals=(50,))
    data = charts.png(rows, "eval_accuracy", best_step=50, max_step=50).result(timeout=60)
    assert data == png_bytes(rows, "eval_accuracy", best_step=50, max_step=50)
    assert seen == ["llmnb-chart", "llmnb-chart"] and charts.cpu_seconds > 0


def test_chart_thread_hands_errors_to_the_waiter():
    charts = ChartThread()

    def broken():
        raise ImportError("No module named 'matplotlib'")

    with pytest.raises(ImportError, match="matplotlib"):
        charts.submit(broken).result(timeout=10)
    assert charts.submit(lambda: 42).result(timeout=10) == 42  # the thread lives on


def test_long_tick_labels_widen_their_margin():
    rows = [{"step": s, "train_loss": 1.0 / s, "lr": 1.25e-4 - 5e-8 * s} for s in range(1, 100)]  # lr ticks like 1.22e-4
    loss, lr = plot.plot_history(rows).axes
    panels = plot.chart_panels(rows)
    lr_start = plot.WIDTH * panels[0].weight / sum(p.weight for p in panels)
    lr_margin = lr.get_position().x0 * plot.WIDTH - lr_start  # pixels at 100 dpi
    low, high = lr.get_ylim()
    labels = lr.yaxis.get_major_formatter().format_ticks([t for t in lr.yaxis.get_majorticklocs() if low <= t <= high])
    assert max(map(len, labels)) >= len("1.22e-4")
    assert lr_margin >= plot.TICK_PAD_PX + plot.LABEL_CHAR_PX * max(map(len, labels))
    assert loss.get_position().x0 * plot.WIDTH < lr_margin  # 0.5, 1.0... need less

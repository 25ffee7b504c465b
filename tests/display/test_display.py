"""Tests for llmnb.display: no kernel, no GPU, no torch needed.

A fake engine (`run_events`) drives the callbacks the way the trainer does; the
notebook display gets a recording `display_fn` and a simulated clock.
"""
from __future__ import annotations

import io
import math
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET

import pytest

from llmnb.core.events import FINISHED, INTERRUPTED, STOPPED_EARLY, TrainState
from llmnb.display import plot
from llmnb.display import (
    ConsoleDisplay,
    NotebookDisplay,
    make_display,
    plot_history,
    png_bytes,
    render_html,
    svg_chart,
)
from llmnb.display.series import MAX_POINTS, downsample, ema
from llmnb.display.text import fmt_duration, fmt_num, fmt_tick, status_text

SVG = "{http://www.w3.org/2000/svg}"


# ---------------------------------------------------------------- fakes

def make_state(**kwargs) -> TrainState:
    defaults = dict(
        task="classification",
        model_name="tiny-bert",
        max_steps=200,
        num_epochs=2,
        steps_per_epoch=100,
        metric_name="eval_accuracy",
        greater_is_better=True,
    )
    return TrainState(**{**defaults, **kwargs})


def log_row(state: TrainState, step: int) -> dict:
    state.step, state.epoch = step, step / max(state.steps_per_epoch, 1)
    state.train_loss = 0.3 + 0.5 * math.exp(-step / 50) + 0.03 * math.sin(step)
    state.lr = 5e-5 * (1 - step / (state.max_steps + 1))
    state.samples_seen = step * 16
    row = {"step": step, "epoch": state.epoch, "train_loss": state.train_loss, "lr": state.lr}
    state.history.append(row)
    return row


def eval_row(state: TrainState, accuracy: float) -> dict:
    row = {"step": state.step, "epoch": state.epoch, "eval_loss": 1 - accuracy,
           "eval_accuracy": accuracy, "eval_f1": accuracy - 0.01}
    state.history.append(row)
    state.last_eval = row
    if state.best_metric is None or accuracy > state.best_metric:
        state.best_metric, state.best_step = accuracy, state.step
    return row


def history_rows(steps=200, every=5, evals=(60, 120, 180)) -> list[dict]:
    state = make_state(max_steps=steps)
    for step in range(every, steps + 1, every):
        log_row(state, step)
        if step in evals:
            eval_row(state, 0.8 + step / 2000)
    return state.history


def run_events(display, state, steps=200, evals=(100, 200), status=FINISHED, stop_at=None):
    """Drive `display` like the engine: begin, logs, evaluations, end."""
    display.on_train_begin(state)
    for step in range(1, steps + 1):
        if stop_at is not None and step > stop_at:
            break
        display.on_log(state, log_row(state, step))
        if step in evals:
            display.on_evaluate(state, eval_row(state, 0.8 + step / 2000))
    state.status = status
    display.on_train_end(state)


class FakeHandle:
    def __init__(self, log):
        self.log = log

    def update(self, obj):
        self.log.append(("update", obj))


class FakeDisplay:
    """Stands in for IPython.display.display; records what would be shown."""

    def __init__(self):
        self.log = []

    def __call__(self, obj, display_id=False):
        self.log.append(("display", obj))
        return FakeHandle(self.log) if display_id else None

    def htmls(self):
        return [obj.data for _, obj in self.log if type(obj).__name__ == "HTML"]

    def images(self):
        return [obj for _, obj in self.log if type(obj).__name__ == "Image"]


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


# ---------------------------------------------------------------- svg chart

def polylines(svg: str, css_class: str) -> list[ET.Element]:
    root = ET.fromstring(svg)  # also proves the SVG is well-formed XML
    return [el for el in root.iter(f"{SVG}polyline") if el.get("class") == css_class]


def test_svg_is_wellformed_and_draws_training_loss():
    history = history_rows()
    svg = svg_chart(history, "eval_accuracy", best_step=180, max_step=200)
    (train,) = polylines(svg, "series-train")
    assert len(train.get("points").split()) == 40  # one vertex per log row
    assert polylines(svg, "series-train-raw")
    assert polylines(svg, "series-validation")
    assert polylines(svg, "series-accuracy")
    assert polylines(svg, "series-learning-rate")
    assert "step" in svg and "accuracy (validation)" in svg


def test_svg_follows_the_theme():
    svg = svg_chart(history_rows())
    root = ET.fromstring(svg)
    assert root.get("fill") == "currentColor"  # text inherits the notebook's colour
    assert not any(el.get("fill") in ("white", "#fff", "#ffffff") for el in root.iter(f"{SVG}rect"))


def test_svg_downsamples_thousands_of_points_but_keeps_spikes():
    history = [{"step": s, "train_loss": 1.0, "lr": 1e-4} for s in range(1, 5001)]
    history[2500]["train_loss"] = 9.0  # a single loss spike must stay visible
    svg = svg_chart(history)
    for cls in ("series-train", "series-train-raw", "series-learning-rate"):
        (line,) = polylines(svg, cls)
        assert 2 <= len(line.get("points").split()) <= MAX_POINTS
    xs, ys = downsample(list(range(5000)), [h["train_loss"] for h in history])
    assert len(xs) <= MAX_POINTS and max(ys) == 9.0 and xs[0] == 0 and xs[-1] == 4999


@pytest.mark.parametrize("rows", [[], [{"step": 10, "train_loss": 0.7, "lr": 1e-5}]])
def test_svg_handles_zero_and_one_point(rows):
    root = ET.fromstring(svg_chart(rows, "eval_accuracy"))
    if rows:
        assert list(root.iter(f"{SVG}circle"))  # a lone point is drawn as a dot
    else:
        assert "waiting for the first log row" in svg_chart(rows)


def test_ema_smooths_and_starts_at_first_value():
    noisy = [1.0 if i % 2 else 0.0 for i in range(200)]
    smooth = ema(noisy)
    assert smooth[0] == 0.0
    assert max(smooth[100:]) - min(smooth[100:]) < 0.2


def test_number_formatting():
    assert fmt_duration(65) == "1:05" and fmt_duration(3725) == "1:02:05" and fmt_duration(None) == "?"
    assert fmt_num(0.00012) == "1.2e-4" and fmt_num(0.4213) == "0.4213" and fmt_num(None) == "–"
    assert fmt_tick(0.4, 0.2) == "0.4" and fmt_tick(0.45, 0.05) == "0.45"
    assert fmt_tick(2e-5, 1e-5) == "2e-5" and fmt_tick(1500, 500) == "1500" and fmt_tick(20000, 5000) == "20k"


# ---------------------------------------------------------------- notebook

def test_notebook_throttles_redraws_by_time():
    fake, clock = FakeDisplay(), FakeClock()
    nb = NotebookDisplay(display_fn=fake, clock=clock, min_interval=0.5)
    state = make_state(max_steps=1000)
    nb.on_train_begin(state)
    for step in range(1, 1001):
        clock.now = step / 1000  # 1000 logs within one simulated second
        nb.on_log(state, log_row(state, step))
    assert nb.draws <= 7
    assert len(fake.log) == nb.draws
    before = nb.draws
    nb.on_evaluate(state, eval_row(state, 0.9))  # same instant: still forced
    assert nb.draws == before + 1 and "0.9" in fake.htmls()[-1]


def test_notebook_interval_is_longer_in_vscode(monkeypatch):
    monkeypatch.setenv("VSCODE_PID", "123")
    assert NotebookDisplay().min_interval == 1.0
    monkeypatch.delenv("VSCODE_PID")
    assert NotebookDisplay().min_interval == 0.5


def test_notebook_uses_one_output_area_and_ends_with_png():
    fake = FakeDisplay()
    state = make_state()
    run_events(NotebookDisplay(display_fn=fake, clock=FakeClock()), state)
    kinds = [kind for kind, _ in fake.log]
    # One display with an id, then only updates, then the PNG of the final curve.
    assert kinds[0] == "display" and set(kinds[1:-1]) == {"update"} and kinds[-1] == "display"
    (image,) = fake.images()
    assert image.data.startswith(b"\x89PNG")
    final = fake.htmls()[-1]
    assert "finished" in final and "accuracy" in final and "0.9" in final  # best eval 0.9 at step 200
    assert "<svg" not in final  # the PNG replaces the SVG: no chart shown twice


@pytest.fixture
def charts(monkeypatch):
    """A chart thread of the test's own; `drawn` notes (thread, history rows, x end) of each
    matplotlib chart drawn, on any thread."""
    charts, drawn = plot.ChartThread(), []
    real = plot.NotebookChart.png

    def png(self, history, metric_name=None, **options):
        drawn.append((threading.current_thread().name, len(history), options.get("max_step")))
        return real(self, history, metric_name, **options)

    monkeypatch.setattr(plot.NotebookChart, "png", png)
    monkeypatch.setattr(plot, "CHARTS", charts)
    charts.drawn = drawn
    return charts


def test_final_png_is_drawn_off_the_training_thread_at_the_last_evaluation(charts):
    fake, state = FakeDisplay(), make_state()
    nb = NotebookDisplay(display_fn=fake, clock=FakeClock())
    nb.on_train_begin(state)
    assert charts.warm_up().result(timeout=60) is not None  # matplotlib warmed up while the run trains
    run_events(nb, state, steps=200, evals=(100, 200))
    # Drawn once, on the chart thread, when the last planned evaluation came in; that drawing is shown.
    assert charts.drawn[1:] == [("llmnb-chart", len(state.history), 200)]
    (image,) = fake.images()
    assert image.data == plot.png_bytes(state.history, "eval_accuracy", best_step=200, max_step=200)


def test_final_png_is_drawn_again_when_the_curve_changed_after_the_last_evaluation(charts):
    fake, state = FakeDisplay(), make_state(max_steps=20)
    nb = NotebookDisplay(display_fn=fake, clock=FakeClock())
    nb.on_train_begin(state)
    for step in range(1, 21):
        nb.on_log(state, log_row(state, step))
    nb.on_evaluate(state, eval_row(state, 0.9))
    log_row(state, 20)  # one more row after the chart was drawn ahead
    state.status = FINISHED
    nb.on_train_end(state)
    assert charts.drawn[1:] == [("llmnb-chart", len(state.history) - 1, 20), ("llmnb-chart", len(state.history), 20)]
    assert fake.images()[0].data == plot.png_bytes(state.history, "eval_accuracy", best_step=20, max_step=20)


def test_stopped_run_ends_its_chart_where_it_stopped(charts):
    fake, state = FakeDisplay(), make_state()
    run_events(NotebookDisplay(display_fn=fake, clock=FakeClock()), state, evals=(100,), status=STOPPED_EARLY, stop_at=150)
    assert charts.drawn[1:] == [("llmnb-chart", len(state.history), 150)] and len(fake.images()) == 1


def test_without_matplotlib_the_svg_stays(charts, monkeypatch):
    def missing(*args, **kwargs):
        raise ImportError("No module named 'matplotlib'")

    monkeypatch.setattr(plot.NotebookChart, "png", missing)
    fake = FakeDisplay()
    run_events(NotebookDisplay(display_fn=fake, clock=FakeClock()), make_state())
    assert not fake.images() and "<svg" in fake.htmls()[-1] and "finished" in fake.htmls()[-1]


def test_notebook_without_plot_has_no_chart(charts):
    fake = FakeDisplay()
    run_events(NotebookDisplay(plot=False, display_fn=fake, clock=FakeClock()), make_state())
    assert not fake.images() and not any("<svg" in h for h in fake.htmls())
    assert charts._thread is None  # no chart thread, no matplotlib


def test_notebook_interrupt_forces_redraw_and_shows_interrupted():
    fake, clock = FakeDisplay(), FakeClock()
    nb = NotebookDisplay(display_fn=fake, clock=clock)
    state = make_state()
    nb.on_train_begin(state)
    for step in range(1, 40):
        nb.on_log(state, log_row(state, step))
    draws = nb.draws
    state.status = INTERRUPTED
    nb.on_log(state, log_row(state, 40))  # same simulated instant
    assert nb.draws == draws + 1
    nb.on_train_end(state)
    assert "interrupted at step 40" in fake.htmls()[-1]


def test_status_text_wording():
    state = make_state(step=120, best_step=80, status=STOPPED_EARLY)
    assert status_text(state) == "stopped early at step 120 (best step 80)"
    state = make_state(step=37, best_step=30, status=INTERRUPTED)
    assert status_text(state) == "interrupted at step 37 — best weights kept"
    state.message = "no improvement for 3 evaluations"  # the engine's reason wins, status stays visible
    assert status_text(state) == "interrupted: no improvement for 3 evaluations"
    assert status_text(state, detail=False) == "interrupted at step 37 — best weights kept"


def test_notebook_shows_short_badge_and_engine_message():
    state = make_state(step=120, best_step=80, status=STOPPED_EARLY)
    state.message = "stopped early at step 120: eval_accuracy did not improve for 3 evaluations"
    html = render_html(state)
    badge = html.split('class="llmnb-status"', 1)[1].split("</span>", 1)[0]
    assert badge.endswith(">stopped early at step 120 (best step 80)")
    assert "did not improve for 3 evaluations" in html
    state.status, state.message = "failed", "CUDA out of memory. " * 100  # long error text is cut
    assert "CUDA out of memory" in render_html(state) and len(render_html(state)) < 4000


def test_default_display_is_ipython_and_never_clears(monkeypatch):
    import IPython.display

    fake = FakeDisplay()
    monkeypatch.setattr(IPython.display, "display", fake)
    monkeypatch.setattr(IPython.display, "clear_output", lambda *a, **k: pytest.fail("clear_output called"))
    run_events(NotebookDisplay(plot=False), make_state(), steps=20, evals=(20,))
    assert fake.log[0][0] == "display" and len(fake.log) > 2


def test_render_html_has_progress_and_eta():
    state = make_state(step=50, samples_seen=800)
    state.started_at -= 65
    html = render_html(state)
    assert "step 50/200" in html and "width:25.0%" in html and "elapsed 1:05" in html and "ETA 3:1" in html


# ---------------------------------------------------------------- mode selection

def test_quiet_mode_prints_nothing(capsys):
    assert make_display("quiet") is None
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


@pytest.mark.parametrize("mode", ["auto", "notebook", "console"])
def test_llmnb_quiet_env_forces_quiet(monkeypatch, capsys, mode):
    monkeypatch.setenv("LLMNB_QUIET", "1")
    assert make_display(mode) is None
    assert capsys.readouterr() == ("", "")


def test_auto_mode_outside_kernel_is_console(monkeypatch):
    monkeypatch.delenv("LLMNB_QUIET", raising=False)
    assert isinstance(make_display(), ConsoleDisplay)
    with pytest.raises(ValueError):
        make_display("fancy")


def test_auto_mode_in_kernel_is_notebook(monkeypatch):
    monkeypatch.delenv("LLMNB_QUIET", raising=False)

    class ZMQInteractiveShell:
        pass

    class Shell(ZMQInteractiveShell):  # Colab subclasses the kernel shell
        pass

    fake_ipython = type(sys)("IPython")
    fake_ipython.get_ipython = Shell
    monkeypatch.setitem(sys.modules, "IPython", fake_ipython)
    assert isinstance(make_display(), NotebookDisplay)
    fake_ipython.get_ipython = lambda: None  # plain python with IPython imported
    assert isinstance(make_display(), ConsoleDisplay)


def test_import_and_auto_mode_stay_light():
    code = (
        "import sys, llmnb.display as d; d.make_display('auto');"
        "print(sorted(m for m in ('IPython', 'matplotlib', 'torch', 'transformers', 'ipywidgets')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------- console

class TTY(io.StringIO):
    def isatty(self):
        return True


def test_console_writes_progress_to_stderr_only(capsys):
    run_events(ConsoleDisplay(), make_state(), steps=200)
    out = capsys.readouterr()
    assert out.out == ""
    assert "200/200" in out.err and "accuracy 0.9" in out.err
    assert "finished | 200 steps" in out.err and "best accuracy 0.9 at step 200" in out.err


def test_console_without_tty_prints_a_line_per_tenth():
    stream = io.StringIO()
    run_events(ConsoleDisplay(stream=stream), make_state(max_steps=1000), steps=1000, evals=())
    text = stream.getvalue()
    assert "\r" not in text
    assert 9 <= text.count("] ") <= 11  # progress lines carry the bar


def test_console_tty_redraws_in_place_and_throttles():
    stream, clock = TTY(), FakeClock()
    console = ConsoleDisplay(stream=stream, clock=clock)
    state = make_state(max_steps=1000)
    console.on_train_begin(state)
    for step in range(1, 1001):
        clock.now = step / 1000
        console.on_log(state, log_row(state, step))
    assert 2 <= stream.getvalue().count("\r") <= 3  # 1 s at 0.5 s per redraw
    console.on_evaluate(state, eval_row(state, 0.9))
    printed, bar = stream.getvalue().rsplit("\n", 1)
    # The eval line is printed on its own line, then the bar is redrawn below it.
    assert printed.rsplit("\r", 1)[-1].startswith("eval at step 1000 (epoch 10.00): loss 0.1")
    assert bar.startswith("\r 50% [") and "501/1000" in bar  # the last bar drawn, unchanged


# ---------------------------------------------------------------- matplotlib

def test_plot_history_writes_png(tmp_path, capsys):
    path = tmp_path / "curve.png"
    fig = plot_history(history_rows(), "eval_accuracy", path=str(path))
    assert path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size > 5000
    assert len(fig.axes) == 3
    assert capsys.readouterr() == ("", "")


def test_plot_history_into_given_axes():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.subplots()
    assert plot_history(history_rows(), ax=ax) is fig
    assert ax.lines  # the loss panel went into the given axes


def test_png_bytes_is_transparent_png():
    data = png_bytes(history_rows(), "eval_accuracy")
    assert data.startswith(b"\x89PNG")
    assert data[25] == 6  # PNG colour type 6: RGBA, i.e. a transparent background

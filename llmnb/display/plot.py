"""The loss chart with matplotlib: for saved figures and the final PNG of a run.

matplotlib is imported inside the functions (it is slow to import and optional),
and only the object API is used (`Figure` + `FigureCanvasAgg`, no pyplot), so no
window opens and nothing is printed, whatever backend the user has configured.
Nothing here changes matplotlib's global settings, so the notebook's PNG can be
drawn on a background thread (`CHARTS`) while the learner's own code uses them.

Speed (measured in benchmarks/display.py; the final PNG is drawn while a learner
waits): the figure has fixed margins laid out like the live SVG, not a layout engine
(which draws every artist twice, once to measure and once to paint); titles and the
"step" labels sit at fixed places (matplotlib would measure the tick labels to place
them); tick labels are formatted once per axis, not once per tick, and there are about 4
on a y axis, as in the SVG; the notebook's figure is kept and redrawn at its own
resolution, so its axes, ticks and text measurements are reused; and its PNG is
written without PNG filters at zlib level 1.
"""
from __future__ import annotations

import queue
import struct
import threading
import time
import zlib
from concurrent.futures import Future
from typing import Any

from llmnb.display.series import Panel, chart_panels
from llmnb.display.svg import HEIGHT, WIDTH, y_range
from llmnb.display.text import fmt_tick

GREY = "#808080"  # mid-grey text on a transparent background reads on light and dark themes
# The same as matplotlib settings, for code that draws its own figures in this style (rc_context).
_NEUTRAL_STYLE = {
    "text.color": GREY,
    "axes.labelcolor": GREY,
    "axes.edgecolor": GREY,
    "axes.titlecolor": GREY,
    "xtick.color": GREY,
    "ytick.color": GREY,
}
FIG_HEIGHT = HEIGHT + 30  # pixels at 100 dpi: the SVG's height plus room for the x tick labels
PNG_DPI = 200  # 2x: sharp on high-density screens; the notebook shows it WIDTH pixels wide
# Per-panel margins in pixels at 100 dpi. The left one is fitted to the y tick labels: the
# tick and its padding, then about 6.5 pixels a character at 8 points (digits 7, "." and "-" 4).
LEFT, RIGHT, TOP, BOTTOM = 30, 14, 30, 44
LABEL_CHAR_PX, TICK_PAD_PX = 6.5, 12
XLABEL_PX = 24  # from the axis line down to the top of "step", below the x tick labels


def plot_history(
    history: list[dict[str, Any]],
    metric_name: str | None = None,
    ax: Any = None,
    path: str | None = None,
    *,
    best_step: int | None = None,
    max_step: int | None = None,
):
    """Draw loss / metric / learning-rate panels and return the matplotlib Figure.

    `ax`: None makes a new figure; one Axes gets the loss panel only; a sequence
    (or array) of Axes gets the panels in order. `path`: also save a PNG there.
    """
    panels = chart_panels(history, metric_name, best_step)
    if ax is None:
        fig, axes = _new_figure(panels)
    else:
        # One Axes, a list of them, or the numpy array that plt.subplots returns.
        axes = list(ax.flat) if hasattr(ax, "flat") else list(ax) if isinstance(ax, (list, tuple)) else [ax]
        fig = axes[0].figure
    _draw_panels(axes, panels, max_step, fit=ax is None)
    if path is not None:
        fig.savefig(path, dpi=150)
    return fig


def png_bytes(
    history: list[dict[str, Any]],
    metric_name: str | None = None,
    *,
    best_step: int | None = None,
    max_step: int | None = None,
) -> bytes:
    """The chart as PNG bytes for the notebook: transparent, grey text, 2x resolution."""
    return NotebookChart().png(history, metric_name, best_step=best_step, max_step=max_step)


class NotebookChart:
    """The notebook's PNG of the curves, from one figure kept between drawings.

    Drawn again for a new history, the figure keeps its axes, tick artists and the
    text measurements of its renderer (a new figure would rebuild them all), as long
    as the panels stay the same. One instance belongs to one thread at a time.
    """

    def __init__(self):
        self._fig = self._axes = self._layout = None

    def png(self, history: list[dict[str, Any]], metric_name: str | None = None, *, best_step: int | None = None,
            max_step: int | None = None) -> bytes:
        panels = chart_panels(history, metric_name, best_step)
        layout = [p.weight for p in panels]
        new = layout != self._layout
        if new:
            self._fig, self._axes = _new_figure(panels, dpi=PNG_DPI, transparent=True)
            self._layout = layout
        else:
            for ax in self._axes:
                _clear(ax)
        _draw_panels(self._axes, panels, max_step, fit=True, color=GREY, style=new)
        canvas = self._fig.canvas
        canvas.draw()
        return encode_png(canvas.buffer_rgba())


def encode_png(rgba) -> bytes:
    """PNG bytes of an RGBA image (a (height, width, 4) uint8 array or buffer, as Agg's).

    Rows go unfiltered through zlib at level 1: for a chart that is mostly transparent
    this is about 3x faster than Pillow at its fastest setting, for a similar size."""
    import numpy as np

    pixels = np.asarray(rgba, dtype=np.uint8)
    height, width = pixels.shape[:2]
    rows = np.zeros((height, 1 + 4 * width), dtype=np.uint8)  # each row: filter type 0, then its pixels
    rows[:, 1:] = pixels.reshape(height, 4 * width)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA, no interlacing
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), 1))
            + chunk(b"IEND", b""))


class ChartThread:
    """Draws the notebook's PNGs on one background thread, off the training thread.

    `warm_up()` imports matplotlib and draws a typical chart (fonts, glyphs, the
    figure the next drawings reuse) while a run trains: the import alone takes about
    a second in a new kernel. `png(...)` queues the chart of a history and returns a
    Future of its bytes. Jobs run one at a time, in order, on a daemon thread;
    `cpu_seconds` adds up the CPU time they took (the benchmarks report it).
    """

    def __init__(self):
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._warm: Future | None = None
        self._chart = NotebookChart()  # used on the thread only
        self.cpu_seconds = 0.0

    def warm_up(self) -> Future:
        """A Future, done once matplotlib is imported and has drawn (once per process)."""
        with self._lock:
            if self._warm is None:
                self._warm = self.submit(self._chart.png, *_TYPICAL_CHART)
            return self._warm

    def png(self, history: list[dict[str, Any]], metric_name: str | None = None, *, best_step: int | None = None,
            max_step: int | None = None) -> Future:
        """A Future of the PNG of `history` (copied now: its rows are never changed, only appended)."""
        return self.submit(self._chart.png, list(history), metric_name, best_step=best_step, max_step=max_step)

    def submit(self, fn, *args, **kwargs) -> Future:
        future: Future = Future()
        self._jobs.put((future, fn, args, kwargs))
        with self._lock:
            if self._thread is None or not self._thread.is_alive():  # the first job, or a forked process
                self._thread = threading.Thread(target=self._work, name="llmnb-chart", daemon=True)
                self._thread.start()
        return future

    def _work(self) -> None:
        while True:
            future, fn, args, kwargs = self._jobs.get()
            if not future.set_running_or_notify_cancel():
                continue
            start = time.thread_time()
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as error:  # raised again for whoever waits on the Future
                future.set_exception(error)
            self.cpu_seconds += time.thread_time() - start


# A classification run's chart (loss, accuracy, learning rate): what most first drawings look like.
_TYPICAL_CHART = (
    [*({"step": s, "train_loss": 0.7 / s**0.3, "lr": 1e-4 * (1 - s / 40)} for s in range(1, 41)),
     {"step": 40, "eval_loss": 0.45, "eval_accuracy": 0.81}],
    "eval_accuracy",
)
CHARTS = ChartThread()  # one per process: matplotlib is imported and warmed up once


def _new_figure(panels: list[Panel], dpi: float = 100, transparent: bool = False):
    """A figure with one Axes per panel, placed like the SVG's panels (no layout engine)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH / 100, FIG_HEIGHT / 100), dpi=dpi)
    FigureCanvasAgg(fig)  # render off-screen, independent of the pyplot backend
    total, x0, axes = sum(p.weight for p in panels), 0.0, []
    for panel in panels:
        width = WIDTH * panel.weight / total
        box = [(x0 + LEFT) / WIDTH, BOTTOM / FIG_HEIGHT, (width - LEFT - RIGHT) / WIDTH, (FIG_HEIGHT - TOP - BOTTOM) / FIG_HEIGHT]
        axes.append(fig.add_axes(box))
        x0 += width
    if transparent:
        for patch in [fig.patch, *(ax.patch for ax in axes)]:
            patch.set_facecolor("none")
    return fig, axes


def _clear(ax) -> None:
    """Remove what `_draw_panel` added, keeping the Axes, its ticks and its settings."""
    for artist in [*ax.lines, *ax.texts]:
        artist.remove()
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    ax.relim()
    ax.set_autoscaley_on(True)


def _draw_panels(axes, panels: list[Panel], max_step, fit: bool, color: str | None = None, style: bool = True) -> None:
    seen = [x for p in panels for line in p.lines for x in line.xs[-1:]]
    x_hi = max([max_step or 0, *seen]) or 1
    for panel, axis in zip(panels, axes):
        if style:
            _style(axis, panel, color)
        _draw_panel(axis, panel, x_hi, color)
    if fit:
        _fit_tick_labels(axes, panels)


def _fit_tick_labels(axes, panels: list[Panel]) -> None:
    """Each panel's left margin as wide as its y tick labels need (0.8 or 1.25e-4)."""
    total, x0 = sum(p.weight for p in panels), 0.0
    for axis, panel in zip(axes, panels):
        width = WIDTH * panel.weight / total
        lo, hi = axis.get_ylim()
        labels = axis.yaxis.get_major_formatter().format_ticks([t for t in axis.yaxis.get_majorticklocs() if lo <= t <= hi])
        left = max(LEFT, TICK_PAD_PX + LABEL_CHAR_PX * max((len(s) for s in labels), default=0))
        box = axis.get_position()
        axis.set_position([(x0 + left) / WIDTH, box.y0, (width - left - RIGHT) / WIDTH, box.height])
        x0 += width


_FORMATTER = None


def _step_formatter():
    """Tick labels with just enough digits for the spacing of the ticks (text.fmt_tick).

    matplotlib hands a formatter every tick position before asking for the labels: the
    spacing is read once there, not recomputed for each label (which cost more than
    the rest of the drawing)."""
    global _FORMATTER
    if _FORMATTER is None:
        from matplotlib.ticker import Formatter

        class StepFormatter(Formatter):
            step = None

            def set_locs(self, locs):
                super().set_locs(locs)
                self.step = abs(locs[1] - locs[0]) if len(locs) > 1 else None

            def __call__(self, value, pos=None):
                return fmt_tick(value, self.step or abs(value) or 1.0)

        _FORMATTER = StepFormatter
    return _FORMATTER()


def _style(ax, panel: Panel, color: str | None = None) -> None:
    """What stays the same from one drawing of a panel to the next: axis labels, spines, ticks."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.set_xlabel("step", fontsize=9, **({"color": color} if color else {}))
    # Fixed places for the axis labels (the y one is empty): matplotlib would measure the tick labels at
    # every drawing to place them.
    ax.xaxis.set_label_coords(0.5, -XLABEL_PX / (FIG_HEIGHT - TOP - BOTTOM))
    ax.xaxis.label.set_verticalalignment("top")
    ax.yaxis.set_label_coords(-0.1, 0.5)
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(labelsize=8, **({"colors": color} if color else {}))
    if color:
        for spine in ax.spines.values():
            spine.set_edgecolor(color)
    x_bins = max(2, round(panel.weight * 1.4))  # fewer ticks on narrow panels
    ax.xaxis.set_major_locator(MaxNLocator(nbins=x_bins, steps=[1, 2, 5, 10], integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: fmt_tick(v, 1.0)))


def _draw_panel(ax, panel: Panel, x_hi: float, color: str | None = None) -> None:
    """One panel's data into `ax` (styled by `_style`); `color`: the colour of its text."""
    from matplotlib.ticker import MaxNLocator

    text = {"color": color} if color else {}
    # y given: the title stays where it is put (matplotlib would measure the axis to move it up).
    ax.set_title(panel.title, loc="left", fontsize=10, fontweight="bold", pad=10, y=1.0, **text)
    ax.set_xlim(0, x_hi)
    if not panel.has_data:
        ax.set_yticks([])
        ax.text(0.5, 0.5, panel.empty_text, transform=ax.transAxes, ha="center", alpha=0.6, fontsize=8, **text)
        return
    ax.yaxis.set_major_locator(MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]))  # as many as the live SVG's
    ax.yaxis.set_major_formatter(_step_formatter())
    for line in panel.lines:
        if not line.xs:
            continue
        dots = line.markers or len(line.xs) == 1  # a lone point has no line to show
        ax.plot(
            line.xs,
            line.ys,
            color=line.color,
            linewidth=line.width,
            alpha=line.opacity,
            marker="o" if dots else None,
            markersize=3.5,
            label=line.label if line.in_legend else "_nolegend_",
            clip_on=False,  # a marker on the last step would otherwise be cut in half
        )
    if panel.best_x is not None:
        ax.axvline(panel.best_x, linestyle="--", linewidth=0.8, color=GREY, alpha=0.7)
        inside = ax.get_xaxis_transform()  # x in data units, y in axes units
        # Beside the line, inside the top of the plot (the legend sits above it, as in the SVG).
        right_half = panel.best_x > 0.8 * x_hi
        ax.text(panel.best_x, 0.99, "best " if right_half else " best", transform=inside, fontsize=7,
                ha="right" if right_half else "left", va="top", alpha=0.8, **text)
    values = [y for line in panel.lines for y in line.ys]
    lo, hi = y_range(min(values), max(values))
    if (lo, hi) != (min(values), max(values)):  # a nearly flat series: widen the axis
        ax.set_ylim(lo, hi)
    legend = [line for line in panel.lines if line.in_legend and line.xs]
    if legend:  # on the title row, right-aligned, like the live SVG: never over the curves
        ax.legend(fontsize=8, frameon=False, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=len(legend),
                  borderaxespad=0.3, handlelength=1.6, columnspacing=1.2, labelcolor=color)
    ax.grid(axis="y", alpha=0.2)

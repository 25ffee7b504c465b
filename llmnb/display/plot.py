"""The loss chart with matplotlib: for saved figures and the final PNG of a run.

matplotlib is imported inside the functions (it is slow to import and optional),
and only the object API is used (`Figure` + `FigureCanvasAgg`, no pyplot), so no
window opens and nothing is printed, whatever backend the user has configured.
"""
from __future__ import annotations

import io
from typing import Any

from llmnb.display.series import Panel, chart_panels
from llmnb.display.svg import HEIGHT, WIDTH, y_range
from llmnb.display.text import fmt_tick

# Mid-grey text on a transparent background reads on light and dark notebook themes.
_NEUTRAL_STYLE = {
    "text.color": "#808080",
    "axes.labelcolor": "#808080",
    "axes.edgecolor": "#808080",
    "axes.titlecolor": "#808080",
    "xtick.color": "#808080",
    "ytick.color": "#808080",
}


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
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = chart_panels(history, metric_name, best_step)
    if ax is None:
        fig = Figure(figsize=(WIDTH / 100, HEIGHT / 100 + 0.3), layout="constrained")
        FigureCanvasAgg(fig)  # render off-screen, independent of the pyplot backend
        ratios = [p.weight for p in panels]
        axes = list(fig.subplots(1, len(panels), squeeze=False, gridspec_kw={"width_ratios": ratios})[0])
    else:
        # One Axes, a list of them, or the numpy array that plt.subplots returns.
        axes = list(ax.flat) if hasattr(ax, "flat") else list(ax) if isinstance(ax, (list, tuple)) else [ax]
        fig = axes[0].figure
    seen = [x for p in panels for line in p.lines for x in line.xs[-1:]]
    x_hi = max([max_step or 0, *seen]) or 1
    for panel, axis in zip(panels, axes):
        _draw_panel(axis, panel, x_hi)
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
    import matplotlib

    with matplotlib.rc_context(_NEUTRAL_STYLE):  # rc values are read when artists are created
        fig = plot_history(history, metric_name, best_step=best_step, max_step=max_step)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=200, transparent=True)
    return buffer.getvalue()


def _draw_panel(ax, panel: Panel, x_hi: float) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.set_title(panel.title, loc="left", fontsize=10, fontweight="bold", pad=10)
    ax.set_xlabel("step", fontsize=9)
    ax.set_xlim(0, x_hi)
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(labelsize=8)
    x_bins = max(2, round(panel.weight * 1.4))  # fewer ticks on narrow panels
    ax.xaxis.set_major_locator(MaxNLocator(nbins=x_bins, steps=[1, 2, 5, 10], integer=True))
    if not panel.has_data:
        ax.set_yticks([])
        ax.text(0.5, 0.5, panel.empty_text, transform=ax.transAxes, ha="center", alpha=0.6, fontsize=8)
        return
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
        ax.axvline(panel.best_x, linestyle="--", linewidth=0.8, color="#808080", alpha=0.7)
        inside = ax.get_xaxis_transform()  # x in data units, y in axes units
        # Beside the line, inside the top of the plot (the legend sits above it, as in the SVG).
        right_half = panel.best_x > 0.8 * x_hi
        ax.text(panel.best_x, 0.99, "best " if right_half else " best", transform=inside, fontsize=7,
                ha="right" if right_half else "left", va="top", alpha=0.8)
    values = [y for line in panel.lines for y in line.ys]
    lo, hi = y_range(min(values), max(values))
    if (lo, hi) != (min(values), max(values)):  # a nearly flat series: widen the axis
        ax.set_ylim(lo, hi)
    legend = [line for line in panel.lines if line.in_legend and line.xs]
    if legend:  # on the title row, right-aligned, like the live SVG: never over the curves
        ax.legend(fontsize=8, frameon=False, loc="lower right", bbox_to_anchor=(1.0, 1.0),
                  ncol=len(legend), borderaxespad=0.3, handlelength=1.6, columnspacing=1.2)
    ax.grid(axis="y", alpha=0.2)

    def tick_label(value: float, _pos: int) -> str:
        ticks = ax.yaxis.get_majorticklocs()
        step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else abs(value) or 1.0
        return fmt_tick(value, step)

    ax.yaxis.set_major_formatter(FuncFormatter(tick_label))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: fmt_tick(v, 1.0)))

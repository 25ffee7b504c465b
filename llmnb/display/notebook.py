"""Live training view for Jupyter: one HTML output area per run, updated in place.

Plain HTML + inline SVG rather than ipywidgets: widget state is lost when a
notebook is saved and reopened, while the last HTML update is stored in the
notebook and still shows how the run went. At the end the chart is also sent as
a PNG, which renders everywhere (GitHub, nbviewer, untrusted notebooks).

The PNG is matplotlib's work, kept off the training thread: matplotlib is imported
and warmed up on a background thread when the run begins (`plot.CHARTS`), and the
final chart is drawn there as soon as the last planned evaluation is in, so the
end of the run waits for as little of it as possible.
"""
from __future__ import annotations

import math
import os
import time
from html import escape
from typing import Any, Callable

from llmnb.core.events import (
    FAILED,
    FINISHED,
    INTERRUPTED,
    RUNNING,
    STOPPED_EARLY,
    Callback,
    TrainState,
)
from llmnb.display.series import eval_metric_keys
from llmnb.display.svg import WIDTH, svg_chart
from llmnb.display.text import (
    fmt_column,
    fmt_duration,
    fmt_num,
    metric_label,
    speed_text,
    status_text,
)

FIRST_DRAWS = 5  # draw the first updates at once: the user is watching the run start
TABLE_ROWS = 5  # latest evaluations shown under the progress bar
MESSAGE_CHARS = 500  # an error message can be a whole traceback: show its start
# Badge fills dark enough for white text (contrast >= 4.5), which reads on any theme.
BADGE_COLORS = {
    RUNNING: "#2f6fc4",
    FINISHED: "#23844b",
    STOPPED_EARLY: "#a8570b",
    INTERRUPTED: "#a8570b",
    FAILED: "#c53030",
}


def default_min_interval() -> float:
    # VS Code's notebook renderer is slow with large HTML updates: redraw half as often.
    return 1.0 if os.environ.get("VSCODE_PID") else 0.5


class NotebookDisplay(Callback):
    """Progress bar, latest evaluations and loss chart in a single updating output.

    `display_fn(obj, display_id=True)` must return a handle with `.update(obj)`;
    it defaults to `IPython.display.display` and is a parameter so tests can run
    without a kernel. `clock` is injectable for the same reason.
    """

    def __init__(
        self,
        plot: bool = True,
        min_interval: float | None = None,
        display_fn: Callable[..., Any] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.plot = plot
        self.min_interval = default_min_interval() if min_interval is None else min_interval
        self._display_fn = display_fn
        self._clock = clock
        self._handle = None
        self._last_draw = -math.inf
        self.draws = 0  # redraws in the current run, including the first display
        self._final = None  # (what the chart shows, Future of its PNG) drawn ahead of the end

    def on_train_begin(self, state: TrainState) -> None:
        self._handle, self.draws, self._final = None, 0, None  # a new run gets its own output area
        if self.plot:
            _charts().warm_up()  # matplotlib's import and first draw, while the run trains
        self._draw(state, force=True)

    def on_log(self, state: TrainState, row: dict[str, Any]) -> None:
        self._draw(state, force=state.status in (INTERRUPTED, FAILED))

    def on_evaluate(self, state: TrainState, metrics: dict[str, float]) -> None:
        if self.plot and state.max_steps and state.step >= state.max_steps:
            # The last planned evaluation: the curve is final unless something follows it.
            self._final = self._draw_png(state, x_end=state.step)
        self._draw(state, force=True)  # evaluations are rare and are what people wait for

    def on_epoch_end(self, state: TrainState) -> None:
        self._draw(state)

    def on_train_end(self, state: TrainState) -> None:
        final = self._final_future(state) if self.plot else None
        # With a PNG the SVG would show the same curve twice, so the PNG replaces it. The view without
        # it is drawn while the chart thread makes the PNG.
        html = render_html(state, chart=False)
        png = self._wait(final) if final is not None else None
        if self.plot and png is None:  # no matplotlib: the SVG stays as the record of the run
            html = render_html(state, chart=True)
        self._show(html)
        if png is not None:
            from IPython.display import Image

            self._display(Image(data=png, format="png", width=WIDTH))
        self._handle = None

    def _draw(self, state: TrainState, force: bool = False) -> None:
        """Redraw unless the last redraw was under `min_interval` ago (time-based throttle)."""
        now = self._clock()
        if not force and self.draws >= FIRST_DRAWS and now - self._last_draw < self.min_interval:
            return
        self._last_draw = now
        self._show(render_html(state, chart=self.plot))

    def _show(self, html: str) -> None:
        from IPython.display import HTML

        self.draws += 1
        if self._handle is None:
            self._handle = self._display(HTML(html), display_id=True)
        else:
            self._handle.update(HTML(html))

    def _display(self, obj: Any, **kwargs: Any) -> Any:
        if self._display_fn is None:
            from IPython.display import display

            self._display_fn = display
        return self._display_fn(obj, **kwargs)

    def _final_future(self, state: TrainState):
        """The Future of the final curve's PNG: the one drawn ahead if nothing changed since, else one
        queued now (on the chart thread, which has matplotlib warmed up by then)."""
        final, self._final = self._final, None
        if final is None or final[0] != _chart_key(state, _x_end(state)):
            final = self._draw_png(state, x_end=_x_end(state))
        return final[1]

    @staticmethod
    def _wait(future) -> bytes | None:
        try:
            return future.result()
        except ImportError:  # no matplotlib
            return None

    @staticmethod
    def _draw_png(state: TrainState, x_end: int | None) -> tuple:
        """(what the chart shows, Future of its PNG), queued on the chart thread."""
        future = _charts().png(state.history, state.metric_name, best_step=state.best_step, max_step=x_end)
        return _chart_key(state, x_end), future


def _charts():
    from llmnb.display.plot import CHARTS

    return CHARTS


def _chart_key(state: TrainState, x_end: int | None) -> tuple:
    """What the chart of `state` shows (history rows are only ever appended, never changed)."""
    return len(state.history), state.best_step, x_end, state.metric_name


def render_html(state: TrainState, chart: bool = True) -> str:
    """The whole view as one HTML string (pure: used for every redraw and in tests)."""
    color = BADGE_COLORS.get(state.status, BADGE_COLORS[FAILED])
    fraction = min(1.0, state.step / state.max_steps) if state.max_steps else 0.0
    bar = (
        '<div style="height:8px;border-radius:4px;background:rgba(127,127,127,.25);overflow:hidden">'
        f'<div style="width:{fraction * 100:.1f}%;height:100%;background:{color}"></div></div>'
    )
    svg = ""
    if chart:
        svg = svg_chart(state.history, state.metric_name, best_step=state.best_step, max_step=_x_end(state))
    return (
        '<div class="llmnb-run" style="font-size:13px;line-height:1.45;max-width:780px;'
        'font-variant-numeric:tabular-nums">'
        f"{_header(state, color)}{bar}{_info_line(state)}{_panel_line(state)}{_eval_table(state)}"
        f"{samples_table(state.samples)}{svg}</div>"
    )


def _panel_line(state: TrainState) -> str:
    """The task's per-step statistics from the latest log row that has them (learning from rewards:
    reward mean ± std and by function, groups with no signal, completion length, truncation...)."""
    if not state.panel_keys:
        return ""
    row = next((r for r in reversed(state.history) if any(k in r for k in state.panel_keys)), None)
    if row is None:
        return ""
    parts = []
    for key in state.panel_keys:
        if key not in row:
            continue
        if key == "reward_std":
            continue  # shown with the mean
        value = row[key]
        if key == "reward_mean":
            text = f"reward {fmt_num(value)} ± {fmt_num(row.get('reward_std', 0.0))}"
            by_function = [(k.split("/", 1)[1], v) for k, v in row.items() if k.startswith("reward/")]
            if len(by_function) > 1:
                text += " (" + ", ".join(f"{escape(name)} {fmt_num(v)}" for name, v in by_function) + ")"
        elif key.endswith(("_share", "_ratio")):
            text = f"{key.replace('_', ' ')} {value:.0%}"
        else:
            text = f"{key.replace('_', ' ')} {fmt_num(value)}"
        parts.append(text)
    return f'<div class="llmnb-panel" style="font-size:12px;opacity:.85;margin:0 0 6px">{" · ".join(parts)}</div>'


def samples_table(samples, caption: str = "") -> str:
    """Instruction tuning: a few answers of the last evaluation beside their references (the live
    display and the result's summary)."""
    if not samples:
        return ""
    cell = "padding:1px 8px;text-align:left;vertical-align:top"
    scored = all("reward" in s for s in samples)  # learning from rewards: each answer's reward too
    rows = "".join(
        f'<tr><td style="{cell};opacity:.75">{escape(str(s["prompt"])[-90:])}</td><td style="{cell}">{escape(str(s["answer"]))}</td>'
        f'<td style="{cell}">{escape(str(s["reference"]))}</td>'
        + (f'<td style="{cell}">{escape(fmt_num(s["reward"]))}</td>' if scored else "") + "</tr>"
        for s in samples
    )
    caption = f'<caption style="text-align:left">{escape(caption)}</caption>' if caption else ""
    return (
        '<table class="llmnb-samples" style="border-collapse:collapse;margin:4px 0 6px;font-size:12px">'
        f"{caption}"
        f'<thead><tr><th style="{cell}">prompt (end)</th><th style="{cell}">answer</th><th style="{cell}">reference</th>'
        + (f'<th style="{cell}">reward</th>' if scored else "") + "</tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _x_end(state: TrainState) -> int | None:
    """Where the x axis ends: the planned last step while running (the curve grows from
    left to right), the last step reached once over (an interrupted run of 6000 planned
    steps is not squeezed into the left edge of its chart)."""
    if state.status == RUNNING or not state.step:
        return state.max_steps
    return state.step


def _header(state: TrainState, color: str) -> str:
    """Model, task and a short status badge; the engine's full reason on a line below."""
    badge = (
        f'<span class="llmnb-status" style="background:{color};color:#fff;border-radius:9px;'
        f'padding:1px 9px;font-size:12px;font-weight:600">{escape(status_text(state, detail=False))}</span>'
    )
    header = (
        '<div style="display:flex;flex-wrap:wrap;align-items:center;gap:8px;margin-bottom:6px">'
        f'<b>{escape(state.model_name or "model")}</b><span style="opacity:.7">{escape(state.task)}</span>'
        f"{badge}</div>"
    )
    if state.message and state.status != RUNNING:
        message = state.message
        if len(message) > MESSAGE_CHARS:
            message = message[:MESSAGE_CHARS] + "…"
        header += f'<div class="llmnb-message" style="white-space:pre-wrap;margin-bottom:6px">{escape(message)}</div>'
    for note in state.notes:  # what went wrong on the way and was worked around (disk full, out of memory)
        header += f'<div class="llmnb-note" style="white-space:pre-wrap;margin-bottom:6px;color:#b45309">{escape(note)}</div>'
    return header


def _info_line(state: TrainState) -> str:
    parts = [f"step {state.step}/{state.max_steps}" if state.max_steps else f"step {state.step}"]
    if state.num_epochs:
        planned = f"{state.num_epochs:.2f}".rstrip("0").rstrip(".")  # 2, 2.5, 0.67 (not 0.666667)
        parts.append(f"epoch {state.epoch:.2f}/{planned}")
    if state.train_loss is not None:
        parts.append(f"loss {fmt_num(state.train_loss)}")
    parts += [speed_text(state), f"elapsed {fmt_duration(state.elapsed)}"]
    if state.status == RUNNING and state.eta_seconds is not None:
        parts.append(f"ETA {fmt_duration(state.eta_seconds)}")
    text = " · ".join(p for p in parts if p)
    return f'<div style="font-size:12px;opacity:.85;margin:3px 0 6px">{text}</div>'


def _eval_table(state: TrainState) -> str:
    """Latest evaluations (the best one always included and starred)."""
    rows = [r for r in state.history if any(k.startswith("eval_") for k in r)]
    if not rows:
        return ""
    keys = eval_metric_keys(rows)
    shown = rows[-TABLE_ROWS:]
    best = [r for r in rows if state.best_step is not None and r.get("step") == state.best_step]
    if best and best[-1] not in shown:
        shown = [best[-1], *shown[1:]]
    cell = "padding:1px 10px;text-align:right"
    head = "".join(  # the headline metric's column stands out
        f'<th style="{cell};font-weight:{700 if k == state.metric_name else 500}">'
        f"{escape(metric_label(k))}</th>"
        for k in keys
    )
    columns = {k: fmt_column([row.get(k) for row in shown]) for k in keys}  # decimals line up
    body = []
    for i, row in enumerate(shown):
        is_best = bool(best) and row is best[-1]
        step = f"{row.get('step', '')}{' ★' if is_best else ''}"
        values = "".join(f'<td style="{cell}">{columns[k][i]}</td>' for k in keys)
        weight = "font-weight:700;" if is_best else ""
        body.append(f'<tr style="{weight}background:transparent"><td style="{cell}">{step}</td>{values}</tr>')
    return (
        '<table style="border-collapse:collapse;margin:4px 0 6px;font-size:12px">'
        '<thead><tr style="border-bottom:1px solid rgba(127,127,127,.4)">'
        f'<th style="{cell}">step</th>{head}</tr>'
        f"</thead><tbody>{''.join(body)}</tbody></table>"
    )

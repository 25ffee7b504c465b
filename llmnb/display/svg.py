"""The live loss chart as an inline SVG string.

Pure Python string building (about a millisecond), so the notebook can redraw the
chart on every display update; matplotlib would cost ~100x more per frame.
Text uses `currentColor` and there is no background, so the chart follows the
notebook theme (light or dark); line colours come from series.py.
"""
from __future__ import annotations

import math
from html import escape
from typing import Any

from llmnb.display.series import Line, Panel, chart_panels
from llmnb.display.text import fmt_tick

WIDTH, HEIGHT = 760, 230
LEFT, RIGHT, TOP, BOTTOM = 52, 18, 32, 38  # plot-area margins inside each panel
DIGIT_W = 7.0  # rough width of one 12px digit, to keep the last x label inside the chart
CHAR_W = 6.2  # rough width of one 12px sans-serif character, for laying out the legend
MIN_SPAN = 0.02  # a y axis spans at least 2% of its largest value (see y_range)


def svg_chart(
    history: list[dict[str, Any]],
    metric_name: str | None = None,
    *,
    best_step: int | None = None,
    max_step: int | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> str:
    """Loss / metric / learning-rate panels side by side, as one <svg> element.

    `max_step` (the planned run length) fixes the x axis so the curve grows from
    left to right instead of being rescaled at every redraw.
    """
    panels = chart_panels(history, metric_name, best_step)
    seen = [x for p in panels for line in p.lines for x in line.xs[-1:]]
    x_hi = max([max_step or 0, *seen]) or 1
    total = sum(p.weight for p in panels)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" style="max-width:100%;height:auto" '
        'font-family="sans-serif" font-size="12" fill="currentColor">'
    ]
    x0 = 0.0
    for panel in panels:
        panel_w = width * panel.weight / total
        out += _panel(panel, x0, panel_w, height, x_hi)
        x0 += panel_w
    out.append("</svg>")
    return "".join(out)


def y_range(lo: float, hi: float) -> tuple[float, float]:
    """The value range an axis shows: at least MIN_SPAN of the values' size, centred.

    Without it a loss that moves by 1e-5 fills the whole panel, as if it had collapsed,
    and every tick gets the same label.
    """
    floor = max(abs(lo), abs(hi)) * MIN_SPAN or 1.0
    if hi - lo < floor:
        middle = (lo + hi) / 2
        lo, hi = middle - floor / 2, middle + floor / 2
    return lo, hi


def nice_ticks(lo: float, hi: float, count: int, integer: bool = False) -> tuple[list[float], float]:
    """About `count` round tick values (steps of 1, 2, 2.5 or 5 x 10^k) covering [lo, hi]."""
    if hi - lo <= abs(hi) * 1e-9:  # a flat series still needs a visible range
        pad = abs(hi) * 0.05 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * (1 - 1e-9))
    if integer:
        step = max(1.0, round(step))
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [i * step for i in range(first, last + 1)], step


def _panel(panel: Panel, x0: float, w: float, h: int, x_hi: float) -> list[str]:
    left, right, top, bottom = x0 + LEFT, x0 + w - RIGHT, TOP, h - BOTTOM
    out = [f'<text x="{left:.1f}" y="16" font-weight="bold">{escape(panel.title)}</text>']
    out += _legend([line for line in panel.lines if line.in_legend and line.xs], right)
    baseline = f'<line x1="{left:.1f}" y1="{bottom}" x2="{right:.1f}" y2="{bottom}" '
    out.append(baseline + 'stroke="currentColor" stroke-opacity="0.35"/>')
    middle = (left + right) / 2
    out.append(f'<text x="{middle:.1f}" y="{h - 4}" text-anchor="middle" opacity="0.7">step</text>')
    if not panel.has_data:
        out.append(
            f'<text x="{middle:.1f}" y="{(top + bottom) / 2:.1f}" '
            f'text-anchor="middle" opacity="0.55">{escape(panel.empty_text)}</text>'
        )
        return out

    values = [y for line in panel.lines for y in line.ys]
    y_ticks, y_step = nice_ticks(*y_range(min(values), max(values)), 4)
    y_lo, y_hi = y_ticks[0], y_ticks[-1]

    def sx(x: float) -> float:
        return left + x / x_hi * (right - left)

    def sy(y: float) -> float:
        return bottom - (y - y_lo) / (y_hi - y_lo) * (bottom - top)

    for y in y_ticks:
        out.append(
            f'<line x1="{left:.1f}" y1="{sy(y):.1f}" x2="{right:.1f}" y2="{sy(y):.1f}" '
            'stroke="currentColor" stroke-opacity="0.12"/>'
            f'<text x="{left - 5:.1f}" y="{sy(y) + 3.5:.1f}" text-anchor="end">{fmt_tick(y, y_step)}</text>'
        )
    x_ticks, x_step = nice_ticks(0, x_hi, max(2, int((right - left) // 70)), integer=True)
    for x in x_ticks:
        if x <= x_hi * (1 + 1e-9):  # the x range is exact, not rounded up to a tick
            label = fmt_tick(x, x_step)
            tx, anchor = sx(x), "middle"
            if tx + len(label) * DIGIT_W / 2 > x0 + w - 1:  # would run off the chart's right edge
                tx, anchor = x0 + w - 1, "end"
            out.append(f'<text x="{tx:.1f}" y="{bottom + 15}" text-anchor="{anchor}">{label}</text>')
    if panel.best_x is not None and 0 <= panel.best_x <= x_hi:
        bx = sx(panel.best_x)
        # Inside the plot, beside the dashed line: above it the label ran into the title.
        tx, anchor = (bx - 3, "end") if bx + 30 > right else (bx + 3, "start")
        out.append(
            f'<line x1="{bx:.1f}" y1="{top}" x2="{bx:.1f}" y2="{bottom}" stroke="currentColor" '
            'stroke-opacity="0.4" stroke-dasharray="3 3"/>'
            f'<text x="{tx:.1f}" y="{top + 9}" font-size="10" text-anchor="{anchor}" opacity="0.7">best</text>'
        )
    for line in panel.lines:
        out += _series(line, sx, sy)
    return out


def _series(line: Line, sx, sy) -> list[str]:
    points = [(sx(x), sy(y)) for x, y in zip(line.xs, line.ys)]
    css = "series-" + "-".join("".join(c if c.isalnum() else " " for c in line.label).split())
    style = f'stroke="{line.color}" stroke-width="{line.width}" stroke-opacity="{line.opacity}"'
    out = []
    if len(points) > 1:
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        out.append(f'<polyline class="{css}" points="{coords}" fill="none" {style} stroke-linejoin="round"/>')
    # A lone point has no line to show: dot it.
    if line.markers or len(points) == 1:
        out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.8" fill="{line.color}"/>' for x, y in points]
    return out


def _legend(lines: list[Line], right: float) -> list[str]:
    """Right-aligned on the title row: a swatch of each line's stroke, then its label.

    Text widths are only estimated, so each label starts right after its swatch
    (an estimation error changes the gaps between items, never which swatch is whose).
    """
    widths = [22 + len(line.label) * CHAR_W for line in lines]
    x = right - sum(widths) - 12 * (len(lines) - 1)
    out = []
    for line, w in zip(lines, widths):
        swatch = f'x1="{x:.1f}" y1="12" x2="{x + 16:.1f}" y2="12"'
        out.append(f'<line {swatch} stroke="{line.color}" stroke-width="2"/>')
        if line.markers:
            out.append(f'<circle cx="{x + 8:.1f}" cy="12" r="2.8" fill="{line.color}"/>')
        out.append(f'<text x="{x + 20:.1f}" y="16">{escape(line.label)}</text>')
        x += w + 12
    return out

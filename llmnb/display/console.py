"""Progress for terminals, scripts and CI logs, written to stderr.

stderr keeps stdout clean for the user's own output. On a terminal one line is
redrawn in place with '\\r'; in a log file (not a TTY) '\\r' would pile up into
one huge line, so plain lines are printed at every 10% of progress instead.
"""
from __future__ import annotations

import math
import sys
import time
from typing import Any, Callable, TextIO

from llmnb.core.events import Callback, TrainState
from llmnb.display.series import eval_metric_keys
from llmnb.display.text import (
    best_text,
    fmt_duration,
    fmt_num,
    metric_label,
    speed_text,
    status_text,
)

BAR_WIDTH = 20
UNKNOWN_LENGTH_INTERVAL = 30.0  # seconds between log lines when max_steps is unknown


class ConsoleDisplay(Callback):
    """A single-line progress bar, one line per evaluation and a final summary line."""

    def __init__(
        self,
        stream: TextIO | None = None,
        min_interval: float = 0.5,
        clock: Callable[[], float] = time.perf_counter,
    ):
        self._stream = stream  # None: look sys.stderr up at each write, so redirection works
        self.min_interval = min_interval
        self._clock = clock
        self._tty = False
        self._bar = ""  # the progress line currently on screen (TTY only)
        self._last_draw = -math.inf
        self._decile = 0  # last 10% mark reported (not a TTY)

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stderr

    def on_train_begin(self, state: TrainState) -> None:
        isatty = getattr(self.stream, "isatty", None)
        self._tty = bool(isatty and isatty())
        self._bar, self._last_draw, self._decile = "", -math.inf, 0
        length = f"{state.max_steps} steps" if state.max_steps else "unknown length"
        self._line(f"training {state.model_name or 'model'} ({state.task}), {length}")

    def on_log(self, state: TrainState, row: dict[str, Any]) -> None:
        self._progress(state)

    def on_evaluate(self, state: TrainState, metrics: dict[str, float]) -> None:
        values = " | ".join(f"{metric_label(k)} {fmt_num(metrics[k])}" for k in eval_metric_keys([metrics]))
        best = " (best so far)" if state.best_step == state.step else ""
        self._line(f"eval at step {state.step} (epoch {state.epoch:.2f}): {values}{best}")

    def on_train_end(self, state: TrainState) -> None:
        if self._tty:
            self._progress(state, force=True)
            self.stream.write("\n")  # leave the final bar on screen
            self._bar = ""
        parts = [status_text(state), f"{state.step} steps in {fmt_duration(state.elapsed)}", best_text(state)]
        self._line(" | ".join(p for p in parts if p))
        for note in state.notes:
            self._line(f"note: {note}")

    def _progress(self, state: TrainState, force: bool = False) -> None:
        now = self._clock()
        if self._tty:
            if force or now - self._last_draw >= self.min_interval:
                self._last_draw = now
                self._draw_bar(progress_line(state))
            return
        if state.max_steps:
            decile = min(10, state.step * 10 // state.max_steps)
            due = decile > self._decile
            self._decile = max(decile, self._decile)
        else:
            due = now - self._last_draw >= UNKNOWN_LENGTH_INTERVAL
        if due or force:
            self._last_draw = now
            self._line(progress_line(state))

    def _draw_bar(self, text: str) -> None:
        # Pad with spaces so a shorter line fully covers the previous one.
        self.stream.write("\r" + text.ljust(len(self._bar)))
        self.stream.flush()
        self._bar = text

    def _line(self, text: str) -> None:
        """Print a full line; on a TTY, above the progress bar, which is then redrawn."""
        bar = self._bar
        if bar:
            self.stream.write("\r" + " " * len(bar) + "\r")
        self.stream.write(text + "\n")
        if bar:
            self._bar = ""
            self._draw_bar(bar)
        self.stream.flush()


def progress_line(state: TrainState) -> str:
    """E.g. " 30% [######--------------] 60/200 | epoch 0.90 | loss 0.412 | ... | 1:05<2:31"."""
    if state.max_steps:
        fraction = min(1.0, state.step / state.max_steps)
        filled = round(fraction * BAR_WIDTH)
        head = f"{fraction:4.0%} [{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {state.step}/{state.max_steps}"
    else:
        head = f"step {state.step}"
    parts = [head, f"epoch {state.epoch:.2f}"]
    if state.train_loss is not None:
        parts.append(f"loss {fmt_num(state.train_loss)}")
    if state.lr:
        parts.append(f"lr {fmt_num(state.lr)}")
    eta = state.eta_seconds
    timing = fmt_duration(state.elapsed) + (f"<{fmt_duration(eta)}" if eta is not None else "")
    parts += [speed_text(state), timing]
    return " | ".join(p for p in parts if p)

"""A listener that writes a run's curves and hyper-parameters to TensorBoard event files.

    from llmnb.display.tensorboard import TensorBoardWriter
    ft = llmnb.finetune("tiny-bert", "reviews", callbacks=[TensorBoardWriter("tb/run-1", hparams={"lr": 2e-3})])
    # then, in a terminal:  tensorboard --logdir tb

What lands in `log_dir` (one TensorBoard run):
  train/<name>   every numeric value of each log row at its step: train/loss, train/lr,
                 train/epoch, train/tokens_per_second (a "train_" prefix is dropped)
  eval/<name>    every evaluation at its step: eval/loss, eval/accuracy... ("eval_" dropped)
  hparam/<name>  at the end: the metrics of the weights the run keeps (the best evaluation,
                 as `result.metrics`: hparam/eval_loss...) and hparam/train_loss, the last
                 training loss. The HParams tab shows them beside the hyper-parameters, which
                 are written as TensorBoard's hparams API writes them (experiment, session
                 start and session end summaries).

tensorboard is optional (`pip install tensorboard`, or the `llmnb[tensorboard]` extra): this
module imports it only when a writer is made, and says what to install when it is missing.
"""
from __future__ import annotations

import math
import numbers
import time
import warnings
from pathlib import Path
from typing import Any

from llmnb.core.events import (
    FAILED,
    FINISHED,
    INTERRUPTED,
    STOPPED_EARLY,
    Callback,
    TrainState,
)
from llmnb.errors import ConfigError, DiskWarning

TRAIN, EVAL, HPARAM = "train/", "eval/", "hparam/"
FLUSH_SECS = 10  # a TensorBoard watching the folder sees new points within this many seconds

_MISSING = (
    "Writing TensorBoard logs needs the tensorboard package, which is not installed in this "
    "Python environment. Install it with `pip install tensorboard` (or `pip install 'llmnb[tensorboard]'`), "
    "restart the kernel if you are in a notebook, and run again; or train without the TensorBoard "
    "writer (the live display and `result.history` hold the same numbers)."
)


def _summary_writer_class():
    """torch's SummaryWriter, or a ConfigError that says to install tensorboard."""
    try:
        import tensorboard  # noqa: F401  (torch's writer needs it; checked first for a clear error)
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError(_MISSING) from None
    return SummaryWriter


class TensorBoardWriter(Callback):
    """Writes the training curves, evaluations and hyper-parameters of a run to `log_dir`.

    log_dir:  the folder of this run's event files (made if missing); point
              `tensorboard --logdir` at it or at a folder above it to compare runs.
    hparams:  the settings to show in TensorBoard's HParams tab, e.g. `config.to_dict()`.
              Values that are not str, int, float or bool are written as text; None is left out.
              The model's name and the task are added unless given.

    Raises `llmnb.errors.ConfigError` when tensorboard is not installed.
    """

    def __init__(self, log_dir, hparams: dict | None = None):
        self._writer_class = _summary_writer_class()
        self.log_dir = Path(log_dir).expanduser()
        self.hparams = clean_hparams(hparams or {})
        self._writer = None
        self._started_at = time.time()

    # ------------------------------------------------------------------ events
    def on_train_begin(self, state: TrainState) -> None:
        self.close()  # a writer used for a second run starts a new event file
        self._started_at = time.time()
        # A resumed run (from a checkpoint of step N): TensorBoard drops the points that the
        # stopped run wrote after step N, since this run writes them again.
        purge = state.step + 1 if state.step > 0 else None
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self._writer = self._writer_class(log_dir=str(self.log_dir), purge_step=purge, flush_secs=FLUSH_SECS)
        except OSError as error:
            message = f"TensorBoard logs cannot be written to {self.log_dir} ({error}); training goes on without them."
            state.notes.append(message)
            warnings.warn(message, DiskWarning, stacklevel=2)
            self._writer = None

    def on_log(self, state: TrainState, row: dict[str, Any]) -> None:
        if self._writer is None:
            return
        step = int(row.get("step", state.step))
        for name, value in numeric_items(row):
            if name != "step":
                self._writer.add_scalar(TRAIN + short_name(name, "train_"), value, step)

    def on_evaluate(self, state: TrainState, metrics: dict[str, float]) -> None:
        if self._writer is None:
            return
        for name, value in numeric_items(metrics):
            if name not in ("step", "epoch"):
                self._writer.add_scalar(EVAL + short_name(name, "eval_"), value, state.step)
        self._writer.flush()  # evaluations are rare: a watching TensorBoard shows each at once

    def on_train_end(self, state: TrainState) -> None:
        if self._writer is None:
            return
        try:
            self._write_hparams(state)
        finally:
            self.close()

    def close(self) -> None:
        """Flush and close the event file (done at the end of each run)."""
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()

    # ------------------------------------------------------------------ the HParams tab
    def _write_hparams(self, state: TrainState) -> None:
        hparams = {"model": state.model_name or None, "task": state.task}
        hparams = {**clean_hparams(hparams), **self.hparams}
        metrics = final_metrics(state)
        for tag, value in metrics.items():
            self._writer.add_scalar(tag, value, state.step)
        file_writer = self._writer.file_writer
        for summary in hparams_summaries(hparams, list(metrics), state.status, self._started_at):
            file_writer.add_summary(summary, state.step)


# ---------------------------------------------------------------------- plain helpers
def numeric_items(row: dict[str, Any]) -> list[tuple[str, float]]:
    """The (name, value) pairs of `row` that are numbers (bools and text are left out)."""
    return [
        (str(name), float(value))
        for name, value in row.items()
        if isinstance(value, numbers.Real) and not isinstance(value, bool)
    ]


def short_name(name: str, prefix: str) -> str:
    """`name` without `prefix` ("eval_accuracy" -> "accuracy"), unless that leaves nothing."""
    return name[len(prefix):] if name.startswith(prefix) and len(name) > len(prefix) else name


def clean_hparams(hparams: dict) -> dict[str, str | int | float | bool]:
    """Hyper-parameters TensorBoard can show: str, int, float and bool as they are (numpy
    numbers too), anything else as its text; None is dropped."""
    if not isinstance(hparams, dict):
        raise ConfigError(f"hparams must be a dict of name -> value, not a {type(hparams).__name__}.")
    out: dict[str, str | int | float | bool] = {}
    for name, value in hparams.items():
        if value is None:
            continue
        if isinstance(value, (bool, str)):
            out[str(name)] = value
        elif isinstance(value, numbers.Integral):
            out[str(name)] = int(value)
        elif isinstance(value, numbers.Real):
            out[str(name)] = float(value)
        else:
            out[str(name)] = str(value)
    return out


def final_metrics(state: TrainState) -> dict[str, float]:
    """hparam/<name> -> value: the kept weights' evaluation (`state.best_metrics()`) and the last
    training loss; non-finite values are left out (the HParams tab cannot sort them)."""
    values = {HPARAM + k: v for k, v in state.best_metrics().items()}
    if state.train_loss is not None:
        values[HPARAM + "train_loss"] = state.train_loss
    return {
        tag: float(v)
        for tag, v in values.items()
        if isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
    }


# How a run's status reads in the HParams tab (its Status enum has no "interrupted").
_STATUS = {FINISHED: "STATUS_SUCCESS", STOPPED_EARLY: "STATUS_SUCCESS", FAILED: "STATUS_FAILURE", INTERRUPTED: "STATUS_UNKNOWN"}


def hparams_summaries(hparams: dict, metric_tags: list[str], status: str, started_at: float) -> list:
    """The three summaries the HParams plugin reads from a run: the experiment (which
    hyper-parameters and metrics there are), the session start (this run's values) and the
    session end (how it ended). Built from tensorboard's own protos."""
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    infos, start = [], plugin_data_pb2.SessionStartInfo(start_time_secs=started_at)
    for name, value in hparams.items():
        if isinstance(value, bool):
            start.hparams[name].bool_value = value
            kind = "DATA_TYPE_BOOL"
        elif isinstance(value, (int, float)):
            start.hparams[name].number_value = value
            kind = "DATA_TYPE_FLOAT64"
        else:
            start.hparams[name].string_value = value
            kind = "DATA_TYPE_STRING"
        infos.append(api_pb2.HParamInfo(name=name, type=api_pb2.DataType.Value(kind)))
    experiment = api_pb2.Experiment(
        hparam_infos=infos,
        metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag)) for tag in metric_tags],
        time_created_secs=started_at,
    )
    end = plugin_data_pb2.SessionEndInfo(
        status=api_pb2.Status.Value(_STATUS.get(status, "STATUS_UNKNOWN")), end_time_secs=time.time()
    )
    parts = [
        (metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment)),
        (metadata.SESSION_START_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_start_info=start)),
        (metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=end)),
    ]
    return [
        Summary(value=[Summary.Value(tag=tag, metadata=metadata.create_summary_metadata(data), tensor=metadata.NULL_TENSOR)])
        for tag, data in parts
    ]

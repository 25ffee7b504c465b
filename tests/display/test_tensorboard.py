"""TensorBoardWriter: a tiny fine-tune's curves and hyper-parameters, read back with TensorBoard's own
reader (EventAccumulator) and its HParams back end (what the HParams tab asks for)."""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from easy_data import make_easy_sentiment

import llmnb
from llmnb.core.events import FINISHED, INTERRUPTED, TrainState
from llmnb.display.tensorboard import TensorBoardWriter, clean_hparams
from llmnb.errors import ConfigError

pytest.importorskip("tensorboard", reason="tensorboard not installed: pip install -e '.[test]'")

HPARAMS = {"lr": 2e-3, "epochs": 2, "lora": False, "targets": ["query", "value"], "seed": np.int64(7), "out": None}


def read_scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing import event_accumulator as ea

    acc = ea.EventAccumulator(str(log_dir), size_guidance={ea.SCALARS: 0, ea.TENSORS: 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def hparams_tab(log_dir):
    """The session groups TensorBoard's HParams plugin serves for `log_dir` (all statuses)."""
    from tensorboard import context
    from tensorboard.backend.event_processing import (
        data_provider,
        plugin_event_multiplexer,
    )
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import (
        api_pb2,
        backend_context,
        list_session_groups,
    )

    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(log_dir))
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, str(log_dir))
    backend = backend_context.Context(base_plugin.TBContext(data_provider=provider, logdir=str(log_dir), multiplexer=multiplexer))
    request = api_pb2.ListSessionGroupsRequest(start_index=0, slice_size=10, allowed_statuses=[0, 1, 2, 3])
    return list(list_session_groups.Handler(context.RequestContext(), backend, "", request).run().session_groups)


def plain(value):
    """A google.protobuf Value as a Python value."""
    return getattr(value, value.WhichOneof("kind"))


def column(history: pd.DataFrame, name: str) -> list[tuple[int, float]]:
    rows = history[["step", name]].dropna()
    return [(int(s), float(v)) for s, v in zip(rows["step"], rows[name])]


def assert_same_points(written, expected, what):
    assert [s for s, _ in written] == [s for s, _ in expected], what
    # Event files hold float32: equal to about 7 significant digits.
    assert [v for _, v in written] == pytest.approx([v for _, v in expected], rel=1e-6), what


def test_a_fine_tune_reads_back_in_tensorboard(tmp_path):
    log_dir = tmp_path / "tb"
    writer = TensorBoardWriter(log_dir, hparams=HPARAMS)
    ft = llmnb.finetune(
        "tiny-bert", pd.DataFrame(make_easy_sentiment(48)), eval=make_easy_sentiment(16, seed=1),
        callbacks=[writer], epochs=2, batch_size=16, lr=2e-3, log_every=1, quiet=True, early_stopping=None,
    )  # fmt: skip
    history, scalars = ft.history, read_scalars(log_dir)

    # Every logged value at its step, as in ft.history (3 steps an epoch, a row each; every
    # evaluation step is also a logged step, so the history's step rows hold the log rows' values).
    train = {f"train/{k.removeprefix('train_')}": k for k in history.columns if k != "step" and not k.startswith("eval_")}
    evals = {f"eval/{k.removeprefix('eval_')}": k for k in history.columns if k.startswith("eval_")}
    assert {"train/loss", "train/lr", "train/epoch", "train/tokens_per_second"} <= set(train)
    assert {"eval/loss", "eval/accuracy"} <= set(evals)
    assert set(scalars) == set(train) | set(evals) | {"hparam/train_loss"} | {f"hparam/{k}" for k in ft.metrics}
    for tag, name in {**train, **evals}.items():
        assert_same_points(scalars[tag], column(history, name), tag)
    assert [s for s, _ in scalars["train/loss"]] == list(range(1, 7))
    assert [s for s, _ in scalars["eval/loss"]] == [3, 6]

    # The HParams tab: the given settings (None dropped, a list as text, types kept), the model
    # and task, and the kept weights' metrics beside them; the run finished.
    (group,) = hparams_tab(log_dir)
    shown = {k: plain(v) for k, v in group.hparams.items()}
    assert shown == {"lr": 2e-3, "epochs": 2, "lora": False, "targets": "['query', 'value']", "seed": 7,
                     "model": "tiny-bert", "task": "classification"}  # fmt: skip
    metrics = {m.name.tag: m.value for m in group.metric_values}
    expected = {f"hparam/{k}": v for k, v in ft.metrics.items()}
    expected["hparam/train_loss"] = history["train_loss"].dropna().iloc[-1]
    assert metrics == pytest.approx(expected, rel=1e-6)
    assert group.sessions[0].status == 1  # STATUS_SUCCESS
    assert ft.status == FINISHED


def test_direct_events_interrupted_run_and_purged_resume(tmp_path):
    """Driven by hand: non-numbers are skipped, an interrupted run is not a success, and a
    resumed run (state.step > 0) makes TensorBoard drop the points it will write again."""
    writer = TensorBoardWriter(tmp_path, hparams={"note": "first"})
    state = TrainState(model_name="m", task="classification", max_steps=10)
    writer.on_train_begin(state)
    for step in (1, 2, 3, 4):
        state.step, state.train_loss = step, 1.0 / step
        writer.on_log(state, {"step": step, "epoch": step / 4, "train_loss": 1.0 / step, "phase": "warm", "flag": True})
    state.step = 4
    writer.on_evaluate(state, {"eval_loss": 0.5, "eval_note": "text"})
    state.status = INTERRUPTED
    writer.on_train_end(state)
    (group,) = hparams_tab(tmp_path)
    assert group.sessions[0].status == 0  # STATUS_UNKNOWN: neither a success nor a failure
    assert {m.name.tag for m in group.metric_values} == {"hparam/train_loss"}  # no best evaluation marked

    resumed = TrainState(model_name="m", task="classification", max_steps=10, step=2)
    writer.on_train_begin(resumed)
    writer.on_log(resumed, {"step": 3, "epoch": 0.75, "train_loss": 9.0})
    resumed.status = FINISHED
    writer.on_train_end(resumed)
    scalars = read_scalars(tmp_path)
    assert set(scalars) >= {"train/loss", "train/epoch", "eval/loss"} and "train/phase" not in scalars
    assert "train/flag" not in scalars and "eval/note" not in scalars
    assert scalars["train/loss"] == [(1, 1.0), (2, 0.5), (3, 9.0)]


def test_clean_hparams_keeps_what_tensorboard_can_show():
    cleaned = clean_hparams({"a": None, "b": True, "c": np.float32(0.5), "d": np.int64(3), "e": (1, 2), "f": "x", 4: 1})
    assert cleaned == {"b": True, "c": 0.5, "d": 3, "e": "(1, 2)", "f": "x", "4": 1}
    assert type(cleaned["d"]) is int and type(cleaned["c"]) is float and type(cleaned["b"]) is bool
    with pytest.raises(ConfigError, match="hparams must be a dict"):
        TensorBoardWriter("x", hparams=[("lr", 1)])
    assert not math.isnan(cleaned["c"])


def test_without_tensorboard_it_says_what_to_install(monkeypatch):
    # Importing the module never imports tensorboard (nor torch's writer).
    code = "import sys, llmnb.display.tensorboard; print(sorted(m for m in sys.modules if 'tensorboard' in m and 'llmnb' not in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # what `import tensorboard` sees when it is absent
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ConfigError, match="pip install tensorboard") as error:
        TensorBoardWriter("unused")
    assert "\n" not in str(error.value)

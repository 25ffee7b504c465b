"""`report_to="tensorboard"` (`--report-to tensorboard`): every run can also write TensorBoard events."""
import pytest
from easy_data import TINY, make_easy_sentiment

import llmnb
from llmnb.errors import ConfigError


def test_report_to_tensorboard_writes_the_run_into_its_folder():
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ft = llmnb.finetune("tiny-bert", make_easy_sentiment(80), eval=make_easy_sentiment(40, seed=1),
                        report_to="tensorboard", **{**TINY, "epochs": 2})
    events = sorted((ft.run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    assert events, "no event file in the run folder"
    scalars = EventAccumulator(str(events[0].parent)).Reload().Tags()["scalars"]
    loss = EventAccumulator(str(events[0].parent)).Reload().Scalars("train/loss")
    assert [e.step for e in loss] == ft.history.dropna(subset=["train_loss"])["step"].tolist()
    assert any(tag.endswith("accuracy") for tag in scalars)


def test_report_to_takes_only_what_it_knows():
    with pytest.raises(ConfigError, match="report_to='wandb' is not allowed; choose one of: none, tensorboard"):
        llmnb.FineTuneConfig(report_to="wandb")
    assert llmnb.FineTuneConfig().report_to == "none" and llmnb.PretrainConfig().report_to == "none"


def test_a_missing_tensorboard_says_what_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    with pytest.raises(ConfigError, match="pip install tensorboard"):
        llmnb.FineTuneConfig(report_to="tensorboard")

"""`TrainConfig`: the loop's options are written and checked once, and every job's config inherits them."""
import pytest

from llmnb.core.config import GROUPS, TrainConfig
from llmnb.errors import ConfigError
from llmnb.finetuning.config import FineTuneConfig
from llmnb.pretraining.config import PROFILE_STEPS, PretrainConfig

LOOP = {"epochs", "max_steps", "batch_size", "grad_accum", "lr", "warmup", "schedule", "weight_decay", "grad_clip",
        "eval_every", "early_stopping", "on_nan", "seed", "device", "precision", "log_every", "plot", "quiet"}


def test_every_job_config_has_the_loop_options():
    for config_class in (FineTuneConfig, PretrainConfig):
        assert issubclass(config_class, TrainConfig)
        assert LOOP <= set(config_class.option_help())


@pytest.mark.parametrize("config_class", [FineTuneConfig, PretrainConfig])
@pytest.mark.parametrize("bad, match", [
    ({"grad_accum": 3, "batch_size": 16}, "not a multiple of grad_accum"),
    ({"schedule": "step"}, "schedule='step' is not allowed"),
    ({"on_nan": "ignore"}, "on_nan"),
    ({"precision": "int4"}, "precision"),
    ({"warmup": 1.5}, "warmup=1.5 is out of range"),
])
def test_loop_checks_are_shared(config_class, bad, match):
    with pytest.raises(ConfigError, match=match):
        config_class(**bad)


def test_options_are_listed_by_group_and_differ_only_where_declared():
    help_ = PretrainConfig.option_help()
    groups = [PretrainConfig.__dataclass_fields__[name].metadata["group"] for name in help_]
    assert groups == sorted(groups, key=GROUPS.index)
    assert help_["lr"][0] == 6e-3 and FineTuneConfig.option_help()["lr"][0] is None
    assert help_["grad_accum"] == FineTuneConfig.option_help()["grad_accum"]  # inherited, written once


def test_replace_suggests_the_close_name():
    with pytest.raises(ConfigError, match="did you mean 'max_steps'"):
        PretrainConfig().replace(max_step=3)


def test_steps_and_evaluations_each_job_plans(monkeypatch):
    assert FineTuneConfig(epochs=2).planned_steps(steps_per_epoch=5) == 10
    assert FineTuneConfig(max_steps=7).planned_steps(steps_per_epoch=5) == 7
    assert FineTuneConfig().evaluation_interval(100) is None  # at each epoch's end
    monkeypatch.setenv("LLMNB_PROFILE", "fast")
    assert PretrainConfig().planned_steps(steps_per_epoch=3) == PROFILE_STEPS["fast"]
    assert PretrainConfig(epochs=2).planned_steps(steps_per_epoch=3) == 6
    assert PretrainConfig().evaluation_interval(200) == 20 and PretrainConfig(eval_every=7).evaluation_interval(200) == 7


def test_magic_flags_come_from_the_fields():
    assert TrainConfig.magic_flag("max_steps") == "--max-steps"
    assert TrainConfig.magic_flag("plot") == "--no-plot"

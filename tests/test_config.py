import pytest

from llmnb.config import FineTuneConfig, option_help
from llmnb.errors import ConfigError, LlmnbError


def test_defaults_are_valid_and_documented():
    config = FineTuneConfig()
    assert config.task == "classification"
    help_by_name = option_help()
    assert set(help_by_name) == set(config.to_dict())
    assert all(text.strip() for _, text in help_by_name.values())


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("epochs", 0, "epochs=0"),
        ("lr", -1e-5, "lr=-1e-05"),
        ("batch_size", 2.5, "whole number"),
        ("batch_size", "16", "batch_size='16'"),
        ("task", "translate", "classification"),
        ("precision", "int4", "fp32"),
        ("warmup", 1.5, "warmup=1.5"),
        ("max_steps", 0, "max_steps=0"),
    ],
)
def test_bad_values_name_the_field_and_what_is_allowed(field, value, words):
    with pytest.raises(ConfigError) as info:
        FineTuneConfig(**{field: value})
    assert field in str(info.value) and words in str(info.value)
    assert isinstance(info.value, LlmnbError) and isinstance(info.value, ValueError)


def test_unknown_option_suggests_the_close_one():
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        FineTuneConfig().replace(epoch=3)


def test_batch_must_split_into_accumulation_steps():
    with pytest.raises(ConfigError, match="multiple of grad_accum"):
        FineTuneConfig(batch_size=10, grad_accum=4)


def test_llmnb_quiet_environment_forces_quiet(monkeypatch):
    monkeypatch.setenv("LLMNB_QUIET", "1")
    assert FineTuneConfig().quiet is True


def test_replace_returns_a_new_validated_config():
    base = FineTuneConfig()
    changed = base.replace(epochs=2, lr=3e-5)
    assert (changed.epochs, changed.lr) == (2, 3e-5) and base.epochs != 2

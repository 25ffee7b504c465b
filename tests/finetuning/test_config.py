import pytest

from llmnb.errors import ConfigError, LlmnbError
from llmnb.finetuning.config import FineTuneConfig


def test_defaults_are_valid_and_documented():
    config = FineTuneConfig()
    assert config.task == "classification"
    help_by_name = FineTuneConfig.option_help()
    # Every option of every task is documented, and listed once (a task's own ones too).
    from llmnb.core.task import task_names

    every = set().union(*(FineTuneConfig(task=name).to_dict() for name in task_names()))
    assert set(help_by_name) == every
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


@pytest.mark.parametrize("value, quiet", [("1", True), ("true", True), ("YES", True), ("on", True),
                                          ("0", False), ("false", False), ("no", False), ("", False)])
def test_llmnb_quiet_environment_is_read_one_way_everywhere(monkeypatch, value, quiet):
    """LLMNB_QUIET=false once made the config quiet while the display still drew."""
    from llmnb.display import make_display
    from llmnb.pretraining.config import PretrainConfig

    monkeypatch.setenv("LLMNB_QUIET", value)
    assert FineTuneConfig().quiet is quiet and PretrainConfig().quiet is quiet
    assert (make_display("console") is None) is quiet


def test_an_unknown_llmnb_quiet_value_warns(monkeypatch):
    monkeypatch.setenv("LLMNB_QUIET", "maybe")
    with pytest.warns(UserWarning, match="LLMNB_QUIET='maybe' is not understood"):
        assert FineTuneConfig().quiet is False


def test_lora_and_freeze_are_refused_by_the_config_itself():
    """Before any model loads (it used to be refused only after loading)."""
    with pytest.raises(ConfigError, match="not both"):
        FineTuneConfig(lora=True, freeze=1)
    with pytest.raises(ConfigError, match="not both"):
        FineTuneConfig(freeze=1).replace(lora=True)


def test_a_metric_the_task_does_not_compute_is_refused_before_loading(monkeypatch):
    """metric='acc' used to train, then stop early saying eval_acc did not improve."""
    import llmnb
    import llmnb.finetuning.run

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded before the metric was checked")

    monkeypatch.setattr(llmnb.finetuning.run, "_load", no_loading)
    rows = [{"text": "good", "label": "a"}, {"text": "bad", "label": "b"}] * 10
    with pytest.raises(ConfigError, match="metric='acc' is not computed for task='classification'.*Did you mean 'accuracy'"):
        llmnb.finetune("tiny-bert", rows, metric="acc", quiet=True)
    with pytest.raises(ConfigError, match="choose one of: mse, loss"):
        llmnb.finetune("tiny-bert", [{"text": "x", "label": 1.0}] * 20, task="regression", metric="accuracy", quiet=True)


def test_replace_returns_a_new_validated_config():
    base = FineTuneConfig()
    changed = base.replace(epochs=2, lr=3e-5)
    assert (changed.epochs, changed.lr) == (2, 3e-5) and base.epochs != 2

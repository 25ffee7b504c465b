"""The magics through a real IPython shell: help, binding, the cell form, and one-line errors."""
import pandas as pd
import pytest
from IPython.core.error import UsageError


@pytest.fixture
def ip(shell):
    return shell


def test_help_lists_every_option(ip):
    from llmnb.finetuning.config import FineTuneConfig

    help_text = ip.find_line_magic("finetune").__doc__
    assert "%finetune" in help_text and "--eval" in help_text and "--name" in help_text
    for name in FineTuneConfig.option_help():
        if name not in ("plot", "quiet"):
            assert "--" + name.replace("_", "-") in help_text or "--no-" + name.replace("_", "-") in help_text, name
    assert "Peak learning rate" in help_text  # help comes from the config's metadata


def test_pretrain_flags_and_help_come_from_its_config(ip, monkeypatch):
    from llmnb.pretraining.config import PretrainConfig

    help_text = ip.find_line_magic("pretrain").__doc__
    for name, (default, text) in PretrainConfig.option_help().items():
        if name in ("plot", "quiet", "prompts"):
            continue
        assert PretrainConfig.magic_flag(name) in help_text, name
    assert "Blocks per optimizer step" in help_text and "--steps" in help_text  # the short spelling stays

    import llmnb.pretraining.run as run

    seen = {}

    def record(corpus, **options):
        seen.update(options)
        raise run.DataError("stop here")

    monkeypatch.setattr(run, "pretrain", record)
    with pytest.raises(UsageError, match="stop here"):
        ip.run_line_magic("pretrain", "--steps 5 --grad-accum 2 --schedule linear --early-stopping none --quiet")
    assert seen == {"max_steps": 5, "grad_accum": 2, "schedule": "linear", "early_stopping": None, "quiet": True}
    monkeypatch.undo()  # the real pretrain: its config refuses a bad value before any corpus is read
    with pytest.raises(UsageError, match="schedule='step' is not allowed"):
        ip.run_line_magic("pretrain", "--schedule step --steps 2")


def test_line_magic_binds_the_result(ip, easy_rows, easy_eval_rows):
    ip.user_ns["train_df"] = pd.DataFrame(easy_rows)
    ip.user_ns["test_df"] = pd.DataFrame(easy_eval_rows)
    before = ip.user_ns["train_df"].copy()
    ip.run_line_magic("finetune", "tiny-bert train_df --eval test_df --epochs 3 --lr 2e-3 --quiet --name result")
    result = ip.user_ns["result"]
    assert result.state.status == "finished" and result.config.lr == 2e-3 and result.config.epochs == 3
    assert result.eval_size == len(easy_eval_rows)
    pd.testing.assert_frame_equal(ip.user_ns["train_df"], before)


def test_cell_magic_reads_key_value_lines(ip, easy_rows):
    ip.user_ns["rows"] = easy_rows
    ip.run_cell_magic("finetune", "tiny-bert rows", "max-steps: 4\nlr: 1e-3   # comment\nquiet: true\nname: cell_ft\n")
    assert ip.user_ns["cell_ft"].state.step == 4 and ip.user_ns["cell_ft"].config.lr == 1e-3


@pytest.mark.parametrize(
    "line, message",
    [
        ("tiny-bert no_such_var", "No variable, file or bundled data set called 'no_such_var'"),
        ("tiny-bert rows --epochs abc", "--epochs: invalid float value: 'abc'"),
        ("tiny-bert rows --epochs 0", "epochs=0 is out of range"),
        ("tiny-bert rows --bogus 3", "unrecognized arguments: --bogus"),
        ("tiny-bert rows --label stars", "No column 'stars'"),
        ("tiny-bert rows --name 1x", "not a valid Python variable name"),
        ("", "Say what to train on"),
    ],
)
def test_mistakes_are_one_line_usage_errors(ip, easy_rows, line, message):
    ip.user_ns["rows"] = easy_rows
    with pytest.raises(UsageError, match=message):
        ip.run_line_magic("finetune", line + " --quiet" if line else line)


def test_cell_magic_mistakes(ip, easy_rows):
    ip.user_ns["rows"] = easy_rows
    with pytest.raises(UsageError, match="did you mean 'epochs'"):
        ip.run_cell_magic("finetune", "tiny-bert rows", "epoch: 3")
    with pytest.raises(UsageError, match="is not 'key: value'"):
        ip.run_cell_magic("finetune", "tiny-bert rows", "epochs 3")


def test_usage_errors_show_no_traceback(ip, capsys):
    ip.run_cell("%finetune tiny-bert no_such_var")
    out = capsys.readouterr()
    text = out.out + out.err
    assert "UsageError: No variable" in text and "Traceback" not in text


def test_llm_load_binds_a_model(ip):
    ip.run_line_magic("llm_load", "tiny-bert --num-labels 3 --name tiny")
    assert ip.user_ns["tiny"].model.config.num_labels == 3
    with pytest.raises(UsageError, match="No model folder"):
        ip.run_line_magic("llm_load", "./not/a/folder")


def test_none_on_the_line_turns_an_option_off(ip, easy_rows):
    ip.user_ns["rows"] = easy_rows
    ip.run_line_magic("finetune", "tiny-bert rows --max-steps 2 --early-stopping none --grad-clip none --quiet --name off")
    config = ip.user_ns["off"].config
    assert config.early_stopping is None and config.grad_clip is None and config.max_steps == 2

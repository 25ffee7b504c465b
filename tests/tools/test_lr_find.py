"""`llmnb.lr_find`, `%lr_find` and `lr="find"`: the learning-rate range test."""
import math

import pandas as pd
import pytest
import torch
from easy_data import make_easy_sentiment
from IPython.core.error import UsageError

import llmnb
from llmnb.errors import ConfigError
from llmnb.tools.lr_find import suggest


def test_the_rule_is_a_tenth_of_the_lr_at_the_smoothed_minimum():
    lrs = [10 ** (-6 + i * 0.1) for i in range(50)]
    losses = [1.0 - 0.5 * math.exp(-((i - 30) / 8) ** 2) for i in range(50)]  # a valley at step 30
    finder = suggest(lrs, losses)
    at = min(range(50), key=finder.smoothed.__getitem__)
    assert 30 <= at <= 38 and finder.suggestion  # the running mean lags a few steps behind == pytest.approx(lrs[at] / 10)
    assert finder.steepest < lrs[at] and "÷ 10" in finder.rule
    assert suggest(lrs, [1.0 + i for i in range(50)]).suggestion is None  # never fell: no suggestion


def test_the_sweep_leaves_the_model_the_data_and_the_disk_as_they_were(runs_in_tmp):
    loaded = llmnb.load_model("tiny-bert")
    before = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    frame = pd.DataFrame(make_easy_sentiment(160))
    frame_before = frame.copy()
    finder = llmnb.lr_find(loaded, frame, num_steps=60, batch_size=16, quiet=True)
    assert all(torch.equal(before[k], v) for k, v in loaded.model.state_dict().items())
    assert all(p.grad is None for p in loaded.model.parameters())
    assert frame.equals(frame_before) and not runs_in_tmp.exists()
    assert 5 <= len(finder.lrs) <= 60 and finder.lrs == sorted(finder.lrs)
    assert finder.lrs[0] == pytest.approx(1e-7)
    assert finder.suggestion is not None and 1e-6 < finder.suggestion < 1.0
    assert "divided" in llmnb.lr_find.__doc__ or "suggest" in llmnb.lr_find.__doc__
    figure = finder.plot()
    assert any("suggested lr" in t.get_text() for t in figure.axes[0].get_legend().get_texts())


def test_a_diverging_sweep_stops_early():
    finder = llmnb.lr_find("tiny-bert", make_easy_sentiment(160), end_lr=100.0, num_steps=120, quiet=True)
    assert len(finder.lrs) < 120 and ("passed 4x" in finder.stopped or "infinite" in finder.stopped)


@pytest.fixture
def sweeps(monkeypatch):
    """Every sweep `lr="find"` runs, as it returned it."""
    import llmnb.tools.lr_find as module

    seen, real = [], module.lr_find

    def spy(*args, **kwargs):
        seen.append(real(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(module, "lr_find", spy)
    return seen


def test_lr_find_trains_with_the_suggestion_and_says_so(capsys, sweeps):
    rows = make_easy_sentiment(160)
    ft = llmnb.finetune("tiny-bert", rows, eval=make_easy_sentiment(60, seed=1), lr="find", epochs=1, plot=False,
                        save_checkpoints=False)
    out = capsys.readouterr().out
    assert "lr=find: training with lr" in out and "minimum of the smoothed loss" in out
    assert len(sweeps) == 1 and ft.config.lr == sweeps[0].suggestion
    assert len(sweeps[0].lrs) > 10 and ft.state.step == 10  # the sweep's steps are not the run's


def test_bad_sweeps_read_well():
    with pytest.raises(ConfigError, match="end_lr"):
        llmnb.lr_find("tiny-bert", make_easy_sentiment(40), start_lr=1e-2, end_lr=1e-3)
    with pytest.raises(ConfigError, match="num_steps"):
        llmnb.lr_find("tiny-bert", make_easy_sentiment(40), num_steps=2)


def test_the_magics(shell, sweeps):
    shell.user_ns["rows"] = make_easy_sentiment(160)
    shell.run_line_magic("lr_find", "tiny-bert rows --num-steps 30 --quiet --name sweep")
    assert shell.user_ns["sweep"].lrs and len(shell.user_ns["sweep"].lrs) <= 30
    with pytest.raises(UsageError, match="Say what to sweep on"):
        shell.run_line_magic("lr_find", "")
    shell.run_line_magic("finetune", "tiny-bert rows --lr find --epochs 1 --quiet --name tuned --no-save-checkpoints")
    assert shell.user_ns["tuned"].config.lr == sweeps[-1].suggestion

"""`llmnb.compare` and `%compare`: runs side by side, as curves and one table."""
import math

import pytest
from easy_data import TINY, make_easy_sentiment
from IPython.core.error import UsageError

import llmnb
from llmnb.errors import ConfigError


@pytest.fixture(scope="module")
def two_runs():
    rows, held_out = make_easy_sentiment(160), make_easy_sentiment(60, seed=1)
    fast = llmnb.finetune("tiny-bert", rows, eval=held_out, save_checkpoints=False, **TINY)
    slow = llmnb.finetune("tiny-bert", rows, eval=held_out, save_checkpoints=False, **{**TINY, "lr": 1e-5})
    return fast, slow


def test_the_table_has_best_and_final_metrics_costs_and_differences(two_runs):
    fast, slow = two_runs
    comparison = llmnb.compare(fast, slow)
    table = comparison.table
    assert table["run"].tolist() == ["tiny-bert", "lr=1e-05"]  # named by what differs
    assert table["best accuracy"].tolist() == [fast.metrics["eval_accuracy"], slow.metrics["eval_accuracy"]]
    final = [r["eval_accuracy"] for r in slow.state.history if "eval_accuracy" in r][-1]
    assert table["final accuracy"].iloc[1] == final
    assert table["best accuracy - first"].iloc[1] == pytest.approx(slow.metrics["eval_accuracy"] - fast.metrics["eval_accuracy"])
    assert table["wall x first"].iloc[1] == pytest.approx(slow.wall_seconds / fast.wall_seconds)
    assert table["peak MB"].gt(0).all() and table["trained share"].eq(1.0).all() and table["steps"].eq(40).all()
    assert fast.metrics["eval_accuracy"] > slow.metrics["eval_accuracy"]  # a real difference to show


def test_the_figure_overlays_loss_and_metric_against_step_and_wall_time(two_runs, tmp_path):
    fast, slow = two_runs
    comparison = llmnb.compare(fast, slow, names=["fast", "slow"], path=tmp_path / "curves.png")
    axes = comparison.figure.axes
    assert len(axes) == 4 and (tmp_path / "curves.png").stat().st_size > 10_000
    assert [a.get_xlabel() for a in axes] == ["optimizer step", "wall time (s)"] * 2
    loss_by_step, loss_by_time, metric_by_step, _ = axes
    assert [line.get_label() for line in loss_by_step.lines] == ["fast", "slow"]
    assert list(loss_by_step.lines[0].get_xdata()) == fast.history["step"].tolist()
    assert list(loss_by_time.lines[1].get_xdata()) == [r["seconds"] for r in slow.state.history if "train_loss" in r]
    assert list(metric_by_step.lines[0].get_ydata()) == [r["eval_accuracy"] for r in fast.state.history if "eval_accuracy" in r]
    assert "<img" in comparison._repr_html_() and "best accuracy" in repr(comparison)


def test_a_pretrained_gpt_compares_on_perplexity():
    a = llmnb.pretrain("stories", max_steps=6, layers=1, width=32, heads=2, block_size=32, corpus_chars=20_000, quiet=True, prompts=())
    b = llmnb.pretrain("stories", max_steps=6, layers=1, width=32, heads=2, block_size=32, corpus_chars=20_000, quiet=True,
                       prompts=(), lr=1e-5)
    table = llmnb.compare(a, b).table
    assert "best perplexity" in table and table["best perplexity"].iloc[0] < table["best perplexity"].iloc[1]
    assert not math.isnan(table["wall s"].iloc[0])


def test_mistakes_read_well(two_runs):
    fast, slow = two_runs
    with pytest.raises(ConfigError, match="2 names for 1 runs"):
        llmnb.compare(fast, names="a,b")
    with pytest.raises(ConfigError, match="run 2 is a int"):
        llmnb.compare(fast, 3)
    with pytest.raises(ConfigError, match="at least one run"):
        llmnb.compare()


def test_the_magic_binds_the_comparison_and_refuses_what_is_not_a_run(shell, two_runs):
    shell.user_ns.update(fast=two_runs[0], slow=two_runs[1], numbers=[1, 2])
    shell.run_line_magic("compare", "fast slow --names a,b --name cmp")
    assert shell.user_ns["cmp"].table["run"].tolist() == ["a", "b"]
    with pytest.raises(UsageError, match="`numbers` is a list, not a training result"):
        shell.run_line_magic("compare", "fast numbers")
    with pytest.raises(UsageError, match="No run at 'nothing-here'"):
        shell.run_line_magic("compare", "fast nothing-here")


def test_a_result_without_its_model_still_compares(two_runs):
    fast, slow = two_runs
    light = slow.without_model()
    assert light.model is None and slow.model is not None and light.metrics == slow.metrics
    assert light.parameter_counts() == slow.parameter_counts() == {"trainable": slow.num_parameters, "total": slow.num_parameters}
    assert llmnb.compare(fast, light).table.equals(llmnb.compare(fast, slow).table)

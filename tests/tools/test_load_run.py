"""`llmnb.load_run` reopens a run folder as its result; `llmnb.runs()` lists what each run recorded."""
import pytest
from easy_data import TINY, make_easy_sentiment

import llmnb
from llmnb.errors import DataError


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    import os

    root = tmp_path_factory.mktemp("runs")
    os.environ["LLMNB_RUNS_DIR"] = str(root)
    try:
        ft = llmnb.finetune("tiny-bert", make_easy_sentiment(160), eval=make_easy_sentiment(60, seed=1), **TINY)
    finally:
        del os.environ["LLMNB_RUNS_DIR"]
    return ft, root


def test_a_run_reopens_with_its_history_metrics_and_model(saved_run, monkeypatch):
    ft, root = saved_run
    monkeypatch.setenv("LLMNB_RUNS_DIR", str(root))
    again = llmnb.load_run(ft.run_dir.name)  # by name under runs/
    assert type(again) is type(ft) and again.metrics == ft.metrics and again.best_step == ft.best_step
    assert again.history.drop(columns="seconds").equals(ft.history.drop(columns="seconds"))
    assert again.config == ft.config.replace(quiet=True)
    assert again.data == ft.data and again.wall_seconds == pytest.approx(ft.wall_seconds)
    texts = ["wonderful staff", "awful room and rude service", "the food was superb"]
    assert again.predict(texts) == ft.predict(texts)
    assert llmnb.load_run(ft.run_dir).metrics == ft.metrics  # by path too


def test_without_the_model_it_is_instant_and_still_compares(saved_run):
    ft, _ = saved_run
    light = llmnb.load_run(ft.run_dir, model=False)
    assert light.model is None and light.metrics == ft.metrics
    table = llmnb.compare(ft, light).table
    assert table["trained share"].tolist() == [1.0, 1.0]


def test_an_unknown_run_names_the_ones_there(saved_run, monkeypatch):
    ft, root = saved_run
    monkeypatch.setenv("LLMNB_RUNS_DIR", str(root))
    with pytest.raises(DataError, match=ft.run_dir.name):
        llmnb.load_run("no-such-run")


def test_runs_lists_costs_and_the_data_fingerprint(saved_run):
    ft, root = saved_run
    table = llmnb.runs(root)
    row = table[table["name"] == ft.run_dir.name].iloc[0]
    assert row["wall_s"] == pytest.approx(ft.wall_seconds, abs=0.1) and row["peak_mb"] > 100
    assert row["data"] == ft.data["train"]["sha256"][:12] and row["best"] == ft.metrics["eval_accuracy"]

"""Checkpoints, resume and crash safety: nothing trained is lost."""
import json

import pytest
import torch

import llmnb
from llmnb import checkpoint as ckpt
from llmnb.events import Callback


class InterruptAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_log(self, state, row):
        if state.step == self.step:
            raise KeyboardInterrupt


def test_checkpoints_appear_at_each_evaluation(easy_rows, easy_eval_rows, tiny_options, runs_in_tmp):
    ft = llmnb.finetune("tiny-bert", easy_rows, eval=easy_eval_rows, **{**tiny_options, "epochs": 2})
    run = runs_in_tmp / "tiny-bert-001"
    assert ft.run_dir == run
    for folder in (run / "checkpoint-last", run / "checkpoint-best"):
        assert (folder / "model.safetensors").exists() and (folder / "training.pt").exists()
    saved = json.loads((run / "checkpoint-last" / "trainer_state.json").read_text())
    assert saved["state"]["step"] == 20 and saved["labels"] == ["negative", "positive"]
    assert [r["step"] for r in saved["state"]["history"] if "eval_loss" in r] == [10, 20]
    snapshot = torch.load(run / "checkpoint-last" / "training.pt", weights_only=True)
    assert {"optimizer", "scheduler", "torch_rng"} <= set(snapshot)
    assert (run / "model.safetensors").exists() and (run / "llmnb.json").exists()
    # The next run gets a new folder; nothing earlier is overwritten.
    llmnb.finetune("tiny-bert", easy_rows, **{**tiny_options, "max_steps": 2})
    assert (runs_in_tmp / "tiny-bert-002").is_dir()


def test_an_earlier_run_is_not_overwritten_unless_asked(tmp_path, easy_rows, tiny_options):
    out = str(tmp_path / "mine")
    llmnb.finetune("tiny-bert", easy_rows, **{**tiny_options, "max_steps": 2, "out": out})
    with pytest.raises(llmnb.ConfigError, match="holds an earlier run"):
        llmnb.finetune("tiny-bert", easy_rows, **{**tiny_options, "max_steps": 2, "out": out})
    llmnb.finetune("tiny-bert", easy_rows, **{**tiny_options, "max_steps": 2, "out": out, "overwrite": True})


def test_resume_repeats_the_uninterrupted_loss_curve(easy_rows, easy_eval_rows, tiny_options, tmp_path):
    options = {**tiny_options, "epochs": 3, "log_every": 1, "precision": "fp32"}
    whole = llmnb.finetune("tiny-bert", easy_rows, eval=easy_eval_rows, out=str(tmp_path / "a"), **options)
    cut = llmnb.finetune("tiny-bert", easy_rows, eval=easy_eval_rows, out=str(tmp_path / "b"), callbacks=[InterruptAt(15)], **options)
    assert cut.status == "interrupted" and cut.state.step == 15
    resumed = llmnb.finetune("tiny-bert", easy_rows, eval=easy_eval_rows, resume=str(tmp_path / "b"), quiet=True)
    assert resumed.status == "finished" and resumed.state.step == whole.state.step
    a, b = whole.history, resumed.history
    assert a["step"].tolist() == b["step"].tolist()
    assert b["train_loss"].tolist() == pytest.approx(a["train_loss"].tolist(), abs=1e-5)
    assert b["eval_loss"].dropna().tolist() == pytest.approx(a["eval_loss"].dropna().tolist(), abs=1e-5)


def test_a_crash_while_writing_leaves_the_previous_checkpoint(easy_rows, easy_eval_rows, tiny_options, tmp_path, monkeypatch):
    real_save, calls = torch.save, []

    def save_then_crash(obj, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:  # the second checkpoint: die half-way through writing it
            raise KeyboardInterrupt
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_then_crash)
    ft = llmnb.finetune("tiny-bert", easy_rows, eval=easy_eval_rows, out=str(tmp_path / "run"), **{**tiny_options, "epochs": 3})
    monkeypatch.setattr(torch, "save", real_save)
    assert ft.status == "interrupted" and ft.state.step == 20
    last = ckpt.find_checkpoint(tmp_path / "run")
    payload, snapshot, weights = ckpt.read_checkpoint(last)
    assert payload["state"]["step"] == 10 and "classifier.weight" in weights
    loaded = llmnb.load_model(str(last))
    assert loaded.model.config.num_labels == 2


def test_crash_between_the_two_renames_falls_back_to_old(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoint-last.old").mkdir(parents=True)
    (run / "checkpoint-last.old" / ckpt.STATE_FILE).write_text("{}")
    assert ckpt.find_checkpoint(run) == run / "checkpoint-last.old"


def test_resume_without_a_checkpoint_says_so(tmp_path, easy_rows):
    with pytest.raises(llmnb.ConfigError, match="No checkpoint to resume"):
        llmnb.finetune("tiny-bert", easy_rows, resume=str(tmp_path), quiet=True)

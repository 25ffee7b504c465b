"""Checkpoints, resume and crash safety: nothing trained is lost."""

import pytest
import torch

import llmnb
from llmnb.core import checkpoint as ckpt
from llmnb.core.events import Callback

from easy_data import interrupt_at


class LookAtTheFolder(Callback):
    """Lists the checkpoint's files at each evaluation (it runs after the Checkpointer)."""

    def __init__(self, run):
        self.run, self.seen = run, {}

    def on_evaluate(self, state, metrics):
        folder = self.run / ckpt.CHECKPOINT
        self.seen[state.step] = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_checkpoint_every_evaluation_then_only_the_final_model(easy_rows, easy_eval_rows, tiny_options, runs_in_tmp):
    run = runs_in_tmp / "tiny-bert-001"
    look = LookAtTheFolder(run)
    ft = llmnb.finetune("tiny-bert", easy_rows, eval=easy_eval_rows, callbacks=[look],
                        **{**tiny_options, "epochs": 2, "checkpoint_every": 0})
    assert ft.run_dir == run
    assert set(look.seen) == {10, 20}
    for files in look.seen.values():  # written during the run: resumable
        assert {"model.safetensors", "training.pt", "trainer_state.json"} <= set(files)
    # Finished: the final model stays at the top of the folder and the checkpoint is gone.
    assert (run / "model.safetensors").exists() and (run / "llmnb.json").exists()
    assert not (run / ckpt.CHECKPOINT).exists()
    # The next run gets a new folder; nothing earlier is overwritten.
    llmnb.finetune("tiny-bert", easy_rows, **{**tiny_options, "max_steps": 2})
    assert (runs_in_tmp / "tiny-bert-002").is_dir()


def test_checkpoint_holds_the_best_weights_when_they_are_not_the_last(easy_rows, easy_eval_rows, tiny_options, tmp_path):
    options = {**tiny_options, "epochs": 3, "checkpoint_every": 0}
    cut = llmnb.finetune("tiny-bert", easy_rows, eval=easy_eval_rows, out=str(tmp_path / "run"),
                         callbacks=[interrupt_at(25)], **options)
    folder = ckpt.find_checkpoint(tmp_path / "run")
    payload, _, weights = ckpt.read_checkpoint(folder)
    assert payload["state"]["step"] == 25  # Ctrl-C wrote the step it stopped at
    best = ckpt.read_best_weights(folder)
    assert payload["state"]["best_step"] in (10, 20)
    assert best is not None  # step 25 is not an evaluation, so the best weights are kept apart
    held = cut.model.state_dict()  # the result holds the best weights
    assert torch.equal(best["classifier.weight"], held["classifier.weight"])
    assert not torch.equal(weights["classifier.weight"], held["classifier.weight"])


def test_a_short_default_run_writes_no_checkpoint(easy_rows, easy_eval_rows, tiny_options, runs_in_tmp):
    look = LookAtTheFolder(runs_in_tmp / "tiny-bert-001")
    ft = llmnb.finetune("tiny-bert", easy_rows, eval=easy_eval_rows, callbacks=[look], **{**tiny_options, "epochs": 2})
    assert look.seen == {10: [], 20: []}  # checkpoint_every=10 minutes: none due in seconds
    assert sorted(p.name for p in ft.run_dir.iterdir() if p.is_dir()) == []
    assert (ft.run_dir / "model.safetensors").exists()


def test_checkpoints_follow_the_clock(tmp_path):
    """Due once `every_minutes` of training passed since the last write, at the next evaluation."""
    from llmnb.core.events import TrainState

    now = [0.0]
    writes = []
    checkpointer = ckpt.Checkpointer(tmp_path, engine=None, tokenizer=None, extra={}, every_minutes=10, clock=lambda: now[0])

    def write(state):  # what a real write records, without the files
        writes.append(state.step)
        checkpointer.saved_steps.append(state.step)
        checkpointer._last_write = now[0]

    checkpointer.write = write
    state = TrainState()
    checkpointer.on_train_begin(state)
    for minute, step in ((3, 100), (9.9, 200), (10, 300), (15, 400), (20.5, 500)):
        now[0], state.step = minute * 60, step
        checkpointer.on_evaluate(state, {})
    assert writes == [300, 500]
    state.step = 550
    checkpointer.on_interrupt(state)  # Ctrl-C always writes
    checkpointer.on_interrupt(state)  # ... once per step
    assert writes == [300, 500, 550]


def test_an_earlier_run_is_not_overwritten_unless_asked(tmp_path, easy_rows, tiny_options):
    out = str(tmp_path / "mine")
    llmnb.finetune("tiny-bert", easy_rows, **{**tiny_options, "max_steps": 2, "out": out})
    with pytest.raises(llmnb.ConfigError, match="holds an earlier run"):
        llmnb.finetune("tiny-bert", easy_rows, **{**tiny_options, "max_steps": 2, "out": out})
    llmnb.finetune("tiny-bert", easy_rows, **{**tiny_options, "max_steps": 2, "out": out, "overwrite": True})


def test_resume_repeats_the_uninterrupted_loss_curve(easy_rows, easy_eval_rows, tiny_options, tmp_path):
    options = {**tiny_options, "epochs": 3, "log_every": 1, "precision": "fp32"}
    whole = llmnb.finetune("tiny-bert", easy_rows, eval=easy_eval_rows, out=str(tmp_path / "a"), **options)
    cut = llmnb.finetune("tiny-bert", easy_rows, eval=easy_eval_rows, out=str(tmp_path / "b"), callbacks=[interrupt_at(15)], **options)
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
        if len(calls) >= 2:  # the second checkpoint, and the one Ctrl-C then tries: stop half-way
            raise KeyboardInterrupt
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_then_crash)
    ft = llmnb.finetune("tiny-bert", easy_rows, eval=easy_eval_rows, out=str(tmp_path / "run"),
                        **{**tiny_options, "epochs": 3, "checkpoint_every": 0})
    monkeypatch.setattr(torch, "save", real_save)
    assert ft.status == "interrupted" and ft.state.step == 20
    assert len(calls) == 3 and not (tmp_path / "run" / (ckpt.CHECKPOINT + ".tmp")).exists()
    last = ckpt.find_checkpoint(tmp_path / "run")
    payload, snapshot, weights = ckpt.read_checkpoint(last)
    assert payload["state"]["step"] == 10 and "classifier.weight" in weights
    loaded = llmnb.load_model(str(last))
    assert loaded.model.config.num_labels == 2


def test_crash_between_the_two_renames_falls_back_to_old(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoint.old").mkdir(parents=True)
    (run / "checkpoint.old" / ckpt.STATE_FILE).write_text("{}")
    assert ckpt.find_checkpoint(run) == run / "checkpoint.old"
    legacy = tmp_path / "legacy"  # a run written before the folder was renamed
    (legacy / "checkpoint-last").mkdir(parents=True)
    (legacy / "checkpoint-last" / ckpt.STATE_FILE).write_text("{}")
    assert ckpt.find_checkpoint(legacy) == legacy / "checkpoint-last" and ckpt.holds_a_run(legacy)


def test_resume_without_a_checkpoint_says_so(tmp_path, easy_rows):
    with pytest.raises(llmnb.ConfigError, match="No checkpoint to resume"):
        llmnb.finetune("tiny-bert", easy_rows, resume=str(tmp_path), quiet=True)

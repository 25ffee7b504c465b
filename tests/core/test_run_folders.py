"""Disk: what a run leaves behind, listing and cleaning run folders, and a full disk that loses nothing."""
import errno
import os
import shutil
import subprocess
import warnings

import pytest
import torch

import llmnb
from llmnb.core import checkpoint as ckpt
from llmnb.core import run_folders as runs_module

NO_SPACE = OSError(errno.ENOSPC, "No space left on device")


def test_a_default_run_leaves_only_the_final_model(easy_rows, easy_eval_rows, tiny_options, runs_in_tmp):
    ft = llmnb.finetune("tiny-bert", easy_rows, eval=easy_eval_rows, **{**tiny_options, "epochs": 2})
    names = sorted(p.name for p in ft.run_dir.iterdir())
    assert "model.safetensors" in names and "llmnb.json" in names
    assert not any(name.startswith("checkpoint") or name.startswith(".") for name in names)
    weights = (ft.run_dir / "model.safetensors").stat().st_size
    # The weights once, plus the tokenizer and small files: no optimizer state, no second copy.
    assert runs_module.folder_bytes(ft.run_dir) < weights * 1.2


def test_failed_checkpoint_write_warns_once_and_training_goes_on(easy_rows, easy_eval_rows, tiny_options, tmp_path, monkeypatch):
    def no_space(*args, **kwargs):
        raise NO_SPACE

    monkeypatch.setattr(torch, "save", no_space)  # the optimizer state is the checkpoint's torch.save
    with pytest.warns(ckpt.DiskWarning) as caught:
        ft = llmnb.finetune("tiny-bert", easy_rows, eval=easy_eval_rows, out=str(tmp_path / "run"),
                            **{**tiny_options, "epochs": 3, "checkpoint_every": 0})
    disk = [w for w in caught if issubclass(w.category, ckpt.DiskWarning)]
    assert len(disk) == 1  # once, not at each of the three evaluations
    message = str(disk[0].message)
    assert "No space left on device" in message and str(tmp_path / "run") in message and " MB" in message
    assert ft.status == "finished" and ft.state.step == 30  # training went on to the end
    assert ft.metrics["eval_accuracy"] > 0.9
    assert any("checkpoints were not written" in note for note in ft.state.notes)
    assert not (tmp_path / "run" / (ckpt.CHECKPOINT + ".tmp")).exists()  # no half-written copy
    assert (tmp_path / "run" / "model.safetensors").exists()  # the final save still worked


def test_failed_final_save_keeps_the_model_and_says_so(easy_rows, tiny_options, tmp_path, monkeypatch):
    from llmnb.finetuning.result import FineTuneResult

    def no_space(self, directory):
        raise NO_SPACE

    monkeypatch.setattr(FineTuneResult, "save", no_space)
    with pytest.warns(ckpt.DiskWarning, match="Could not write the final model"):
        ft = llmnb.finetune("tiny-bert", easy_rows, out=str(tmp_path / "run"), **{**tiny_options, "epochs": 2})
    assert ft.status == "finished" and ft.predict("the room was lovely") == "positive"
    assert any("final model was not saved" in note for note in ft.state.notes)
    monkeypatch.undo()
    ft.save(tmp_path / "elsewhere")  # the model in memory can still be saved once there is room
    assert (tmp_path / "elsewhere" / "model.safetensors").exists()


def test_the_display_says_checkpoints_were_not_written():
    from llmnb.core.events import FINISHED, TrainState
    from llmnb.display.notebook import render_html

    state = TrainState(status=FINISHED, step=3, max_steps=3)
    state.notes.append("checkpoints were not written: Could not write ...")
    assert "checkpoints were not written" in render_html(state, chart=False)


def _small_filesystem(path, size="2m"):
    """A real tmpfs of `size` at `path`, or None where this process may not mount one."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("mount"):
        return None
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    return path if done.returncode == 0 else None


def test_a_really_full_disk_loses_nothing(easy_rows, easy_eval_rows, tiny_options, tmp_path, shell):
    """tiny-bert's weights are 8 MB; the run folder sits on a 2 MB filesystem."""
    small = _small_filesystem(tmp_path / "small")
    if small is None:
        pytest.skip("cannot mount a small tmpfs here (needs root); the injected-error tests above cover the logic")
    try:
        shell.user_ns.pop("ft_full", None)
        shell.user_ns["easy"] = easy_rows
        shell.user_ns["easy_eval"] = easy_eval_rows
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            shell.run_line_magic(
                "finetune",
                f"tiny-bert easy --eval easy_eval --epochs 2 --lr 2e-3 --early-stopping none --checkpoint-every 0 --out {small}/run --quiet --name ft_full",
            )
        ft = shell.user_ns["ft_full"]  # bound: the trained model is not lost
        assert ft.status == "finished" and ft.state.step == 20 and "eval_accuracy" in ft.metrics
        disk = [str(w.message) for w in caught if issubclass(w.category, ckpt.DiskWarning)]
        assert len(disk) == 2 and "checkpoint" in disk[0] and "final model" in disk[1]
        assert "No space left on device" in disk[0]
        assert runs_module.folder_bytes(small) < 100_000  # nothing half-written holds the space
    finally:
        subprocess.run(["umount", str(small)], capture_output=True)


# ----------------------------------------------------------------------------- runs() and clean_runs()

def _fake_run(root, name, model="minilm", accuracy=0.8, mtime=0, size=1000):
    import json

    folder = root / name
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"\0" * size)
    meta = {"model_name": model, "task": "classification", "status": "finished", "metrics": {"eval_accuracy": accuracy, "eval_loss": 0.3}}
    (folder / "llmnb.json").write_text(json.dumps(meta))
    os.utime(folder, (mtime, mtime))
    return folder


def test_runs_lists_folders_with_size_model_and_best_metric(tmp_path):
    root = tmp_path / "runs"
    _fake_run(root, "minilm-002", accuracy=0.9, mtime=2_000_000_000, size=3_000_000)
    _fake_run(root, "minilm-001", accuracy=0.7, mtime=1_000_000_000, size=1_000_000)
    (root / "notes").mkdir()  # not a run: never listed, never removed
    table = llmnb.runs(root)
    assert table["name"].tolist() == ["minilm-001", "minilm-002"]  # oldest first
    assert table["best"].tolist() == [0.7, 0.9] and set(table["metric"]) == {"accuracy"}
    assert table["size_mb"].tolist() == [pytest.approx(1.0, abs=0.01), pytest.approx(3.0, abs=0.01)]
    assert set(table["model"]) == {"minilm"} and not table["resumable"].any()


def test_runs_of_real_training_and_a_resumable_one(easy_rows, easy_eval_rows, tiny_options, runs_in_tmp):
    from easy_data import interrupt_at

    done = llmnb.finetune("tiny-bert", easy_rows, eval=easy_eval_rows, **{**tiny_options, "epochs": 1})
    llmnb.finetune("tiny-bert", easy_rows, eval=easy_eval_rows, callbacks=[interrupt_at(5)], **{**tiny_options, "epochs": 1})
    table = llmnb.runs().set_index("name")
    assert table.loc["tiny-bert-001", "best"] == pytest.approx(done.metrics["eval_accuracy"])
    assert table.loc["tiny-bert-001", "status"] == "finished" and not table.loc["tiny-bert-001", "resumable"]
    assert table.loc["tiny-bert-002", "resumable"] and table.loc["tiny-bert-002", "model"] == "tiny-bert"


def test_clean_runs_keeps_the_newest_and_says_what_it_removed(tmp_path, capsys):
    root = tmp_path / "runs"
    old = [_fake_run(root, f"m-00{i}", mtime=1_000_000_000 + i, size=2_000_000) for i in range(1, 5)]
    (root / "notes").mkdir()
    removed = llmnb.clean_runs(keep=1, root=root)
    assert removed == old[:3]
    assert sorted(p.name for p in root.iterdir()) == ["m-004", "notes"]
    out = capsys.readouterr().out
    assert out.count("removed") == 3 and "m-001" in out and "freed 6 MB" in out
    assert llmnb.clean_runs(keep=5, root=root) == []  # fewer than keep: nothing goes
    with pytest.raises(llmnb.ConfigError, match="keep"):
        llmnb.clean_runs(keep=-1, root=root)


def test_plan_names_clean_runs_when_the_runs_folder_is_large(easy_rows, tiny_options, runs_in_tmp, monkeypatch, capsys):
    _fake_run(runs_in_tmp, "big-001", size=3000)
    monkeypatch.setattr(runs_module, "RUNS_WARN_BYTES", 2000)
    llmnb.finetune("tiny-bert", easy_rows, **{**tiny_options, "max_steps": 1, "quiet": False, "plot": False})
    out = capsys.readouterr().out
    assert "llmnb.clean_runs(keep=3)" in out
    monkeypatch.setattr(runs_module, "RUNS_WARN_BYTES", 10**12)
    llmnb.finetune("tiny-bert", easy_rows, **{**tiny_options, "max_steps": 1, "quiet": False, "plot": False})
    assert "clean_runs" not in capsys.readouterr().out

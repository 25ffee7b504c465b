"""llmnb.tools.export: a standalone DDP training script, run as 1 and as 2 processes (tiny BERT, 5 steps)."""
import ast
import csv
import json
import os
import subprocess
import sys

import pytest
import torch
from easy_data import make_easy_sentiment

import llmnb
from llmnb.finetuning.config import FineTuneConfig
from llmnb.tools.export import ExportError, LaunchError, export_script, launch

# 160 rows, 16 held out: 144 training rows = 18 full batches of 8, so no ragged last batch.
OPTIONS = dict(max_steps=5, batch_size=8, lr=2e-3, seed=7, warmup=0.2, quiet=True, save_checkpoints=False, early_stopping=None)


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    rows = make_easy_sentiment(160, seed=0)
    ft = llmnb.finetune("tiny-bert", rows, **OPTIONS)
    script = export_script(ft, tmp_path_factory.mktemp("job") / "train.py", data=rows, dropout=0.0)
    return ft, script


def test_script_config_and_data_are_written(job):
    ft, script = job
    folder = script.parent
    source = script.read_text()
    imported = {alias.name.split(".")[0] for node in ast.walk(ast.parse(source)) if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])}
    assert "llmnb" not in imported and {"torch", "accelerate", "transformers"} <= imported
    assert "Accelerator(" in source and "save_pretrained" in source
    cfg = json.loads((folder / "train_config.json").read_text())
    assert cfg["labels"] == ["negative", "positive"] and cfg["max_steps"] == 5 and cfg["batch_size"] == 8
    assert cfg["seed"] == 7 and cfg["dropout"] == 0.0 and cfg["from_config"] is True
    assert (folder / cfg["model"] / "config.json").exists() and (folder / cfg["model"] / "tokenizer.json").exists()
    train = list(csv.DictReader(open(folder / "train.csv")))
    held = list(csv.DictReader(open(folder / "eval.csv")))
    assert (len(train), len(held)) == (ft.train_size, ft.eval_size) == (144, 16)  # llmnb's own split
    assert {r["label"] for r in train} == {"negative", "positive"}


@pytest.mark.slow  # two training processes and one more, each in a fresh interpreter (about a minute)
def test_two_processes_match_one_and_load_with_llmnb(job):
    ft, script = job
    folder = script.parent
    single = subprocess.run([sys.executable, str(script), "--out", "one"], cwd=folder, capture_output=True, text=True, timeout=500)
    assert single.returncode == 0, single.stdout[-2000:] + single.stderr[-2000:]
    assert "1 process(es)" in single.stdout and "step 5/5" in single.stdout
    double = launch(script, num_processes=2, timeout=500, args=["--out", "two"], echo=False)
    assert "2 process(es)" in double.stdout and "4 per process" in double.stdout
    assert json.loads((folder / "two" / "train_summary.json").read_text())["processes"] == 2

    one, two = (llmnb.load_model(str(folder / name), device="cpu") for name in ("one", "two"))
    assert one.model.config.id2label == two.model.config.id2label == {0: "negative", 1: "positive"}
    assert (folder / "two" / "model.safetensors").exists()
    start = llmnb.load_model("tiny-bert", num_labels=2, seed=7, device="cpu").model.state_dict()
    a, b = one.model.state_dict(), two.model.state_dict()
    moved = max(float((a[k] - start[k]).abs().max()) for k in a)
    gap = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert moved > 1e-3, "training did not change the weights"
    assert gap < 1e-4, f"2-process weights differ from 1-process by {gap} (trained weights moved {moved})"
    batch = one.tokenizer(["the staff were wonderful"], return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(one.model(**batch).logits, two.model(**batch).logits, atol=1e-4)


def test_launch_failure_shows_the_tail(tmp_path):
    script = tmp_path / "broken.py"
    script.write_text("import sys\nprint('loading the data... marker-42', flush=True)\nsys.exit(3)\n")
    with pytest.raises(LaunchError, match="marker-42") as caught:
        launch(script, num_processes=1, timeout=300, echo=False)
    assert "broken.py failed" in str(caught.value)


def test_misuse_is_explained(tmp_path, job):
    ft, _ = job
    with pytest.raises(ExportError, match="training data"):
        export_script(ft, tmp_path / "train.py")
    with pytest.raises(ExportError, match=r"\.py"):
        export_script(ft, tmp_path / "train.txt", data=make_easy_sentiment(20))
    (tmp_path / "mine.py").write_text("print('my own work')\n")
    with pytest.raises(ExportError, match="not written by export_script"):
        export_script(ft, tmp_path / "mine.py", data=make_easy_sentiment(20))
    with pytest.raises(ExportError, match="labels"):
        export_script(ft, tmp_path / "t.py", data=[{"text": t, "label": l} for t, l in [("a b", "x"), ("c d", "y")] * 10])
    with pytest.raises(ExportError, match="No script"):
        launch(tmp_path / "missing.py")
    # A causal-LM or seq2seq run is refused before anything is written (it used to get a classification script).
    for task in ("causal-lm", "seq2seq"):
        with pytest.raises(ExportError, match=f"task is '{task}'.*Nothing was written"):
            export_script(FineTuneConfig(task=task), tmp_path / task / "train.py", data=make_easy_sentiment(20))
        assert not (tmp_path / task).exists()
    with pytest.raises(ExportError, match="num_processes"):
        launch(tmp_path / "mine.py", num_processes=0)


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _trained_tensors(folder, start):
    """Names of the weights that a saved model changed, against the starting weights `start`."""
    after = llmnb.load_model(str(folder), device="cpu").model.state_dict()
    assert set(after) == set(start), "the saved model should be a plain BERT classifier"
    return {k for k in start if not torch.equal(start[k], after[k])}


@pytest.mark.slow  # two processes started by the real torchrun command (20-90 s on 2 busy cores)
def test_torchrun_runs_an_exported_lora_job_whose_model_loads(tmp_path):
    from pathlib import Path

    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("no torchrun beside this Python")
    rows = make_easy_sentiment(160, seed=0)
    ft = llmnb.finetune("tiny-bert", rows, **{**OPTIONS, "lora": True, "lr": 1e-2})
    script = export_script(ft, tmp_path / "job" / "train.py", data=rows, dropout=0.0)
    cfg = json.loads((script.parent / "train_config.json").read_text())
    assert cfg["lora"] is True and cfg["lora_targets"] == "all-linear" and cfg["lr"] == 1e-2
    # The command of the issue, `torchrun --nproc_per_node=2 train.py`, on a free port (tests may run side by side).
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    run = subprocess.run([str(torchrun), f"--master_port={_free_port()}", "--nproc_per_node=2", "train.py"],
                         cwd=script.parent, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert "2 process(es)" in run.stdout and "(LoRA r=8)" in run.stdout and "step 5/5" in run.stdout
    assert "Writing model shards" not in run.stdout + run.stderr
    # Saved merged: a plain model for llmnb.load_model. The adapters moved the blocks' Linear weights
    # (not their biases, LayerNorms or the embeddings); the pooler and head trained whole.
    start = llmnb.load_model("tiny-bert", num_labels=2, seed=7, device="cpu").model.state_dict()
    changed = _trained_tensors(script.parent / "model", start)
    for name in ("query.weight", "key.weight", "value.weight", "intermediate.dense.weight"):
        assert any(k.endswith(name) for k in changed), name
    assert any(k.startswith("classifier.") for k in changed) and any(k.startswith("bert.pooler.") for k in changed)
    assert not any(k.startswith("bert.encoder.") and (k.endswith(".bias") or "LayerNorm" in k) for k in changed)
    assert not any(k.startswith("bert.embeddings.") for k in changed)
    assert json.loads((script.parent / "model" / "train_summary.json").read_text())["processes"] == 2


@pytest.mark.slow  # a training script in a fresh process (10 s quiet, minutes on 2 busy cores)
def test_exported_freeze_job_trains_only_the_top_layer(tmp_path):
    rows = make_easy_sentiment(160, seed=0)
    config = llmnb.FineTuneConfig(**{**OPTIONS, "freeze": 1})
    script = export_script(config, tmp_path / "train.py", data=rows, model="tiny-bert", dropout=0.0)
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=500)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "(top 1 layers + head)" in run.stdout
    start = llmnb.load_model("tiny-bert", num_labels=2, seed=7, device="cpu").model.state_dict()
    changed = _trained_tensors(tmp_path / "model", start)
    assert any(k.startswith("bert.encoder.layer.1.") for k in changed) and any(k.startswith("classifier.") for k in changed)
    assert not any(k.startswith(("bert.embeddings.", "bert.encoder.layer.0.")) for k in changed)


def test_finetune_magic_exports_the_run(shell, tmp_path):
    from IPython.core.error import UsageError

    shell.user_ns["export_rows"] = make_easy_sentiment(160, seed=0)
    target = tmp_path / "job" / "train.py"
    shell.run_line_magic("finetune", f"tiny-bert export_rows --max-steps 2 --batch-size 8 --quiet --no-save-checkpoints --name exp --export {target}")
    assert shell.user_ns["exp"].state.step == 2
    cfg = json.loads((target.parent / "train_config.json").read_text())
    assert target.exists() and cfg["max_steps"] == 2 and cfg["batch_size"] == 8
    with pytest.raises(UsageError, match=r"\.py"):
        shell.run_line_magic("finetune", f"tiny-bert export_rows --max-steps 1 --quiet --export {tmp_path / 'job.txt'}")

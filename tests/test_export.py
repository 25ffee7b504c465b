"""llmnb.export: a standalone DDP training script, run as 1 and as 2 processes (tiny BERT, 5 steps)."""
import ast
import csv
import json
import subprocess
import sys

import pytest
import torch

from easy_data import make_easy_sentiment

import llmnb
from llmnb.export import ExportError, LaunchError, export_script, launch

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
    with pytest.raises(ExportError, match="num_processes"):
        launch(tmp_path / "mine.py", num_processes=0)

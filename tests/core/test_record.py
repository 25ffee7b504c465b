"""Every run keeps a record (llmnb/core/record.py) in its llmnb.json, and saves a model card."""
import json

import pytest
from easy_data import TINY, make_easy_sentiment

import llmnb
from llmnb.core.record import MemoryPeak, data_fingerprint


def test_the_fingerprint_follows_the_rows_their_order_and_the_targets():
    base = data_fingerprint(["a b", "c d", "e"], ["x", "y", "x"])
    assert base["rows"] == 3 and base["labels"] == {"x": 2, "y": 1} and len(base["sha256"]) == 64
    assert data_fingerprint(["a b", "c d", "e"], ["x", "y", "x"]) == base
    assert data_fingerprint(["c d", "a b", "e"], ["y", "x", "x"])["sha256"] != base["sha256"]  # order
    assert data_fingerprint(["a b", "c d", "e"], ["x", "x", "x"])["sha256"] != base["sha256"]  # a target
    assert data_fingerprint(["a b", "c d", "e f"], ["x", "y", "x"])["sha256"] != base["sha256"]  # a text
    numbers = data_fingerprint(["a", "b"], [0.25, 1.5])
    assert "labels" not in numbers  # regression targets are not label counts


def test_the_memory_peak_sees_a_block_that_allocates():
    import numpy as np

    with MemoryPeak() as quiet_block:
        pass
    with MemoryPeak() as busy:
        block = np.ones(400 * 2**20 // 8)  # 400 MB, touched
        block += 1
        del block
    assert busy.mb >= quiet_block.mb + 300 or busy.mb > 400


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    import os

    os.environ["LLMNB_RUNS_DIR"] = str(tmp_path_factory.mktemp("runs"))
    try:
        return llmnb.finetune("tiny-bert", make_easy_sentiment(160), eval=make_easy_sentiment(60, seed=1), **TINY)
    finally:
        del os.environ["LLMNB_RUNS_DIR"]


def test_the_run_folder_records_config_data_environment_and_costs(run):
    record = json.loads((run.run_dir / "llmnb.json").read_text())
    assert record["config"]["lr"] == TINY["lr"] and record["config"]["epochs"] == TINY["epochs"]
    train, validation = record["data"]["train"], record["data"]["validation"]
    assert train["rows"] == 160 and train["labels"] == {"negative": 80, "positive": 80}
    assert validation["rows"] == 60 and train["sha256"] != validation["sha256"]
    texts = [r["text"] for r in make_easy_sentiment(160)]
    assert train["sha256"] == data_fingerprint(texts, [r["label"] for r in make_easy_sentiment(160)])["sha256"]
    env = record["environment"]
    import torch
    import transformers

    assert env["torch"] == torch.__version__ and env["transformers"] == transformers.__version__
    assert env["llmnb"] == llmnb.__version__ and env["device"] == "cpu" and env["threads"] >= 1 and env["python"]
    assert record["metrics"] == run.metrics and record["best_step"] == run.best_step == 40
    assert 0 < record["wall_seconds"] < 600 and record["peak_memory_mb"] > 100
    assert record["parameters"]["total"] == record["parameters"]["trainable"] == run.num_parameters
    rows = record["state"]["history"]
    assert [r["step"] for r in rows if "train_loss" in r] == list(range(1, 41))
    seconds = [r["seconds"] for r in rows]
    assert seconds == sorted(seconds) and 0 < seconds[-1] <= record["wall_seconds"]


def test_the_saved_model_has_a_card_the_hub_reads(run, tmp_path):
    from huggingface_hub import ModelCard

    folder = run.save(tmp_path / "model")
    card = ModelCard.load(folder / "README.md")
    data = card.data.to_dict()
    assert data["library_name"] == "transformers" and data["pipeline_tag"] == "text-classification"
    assert "llmnb" in data["tags"] and "accuracy" in data["metrics"]
    results = data["model-index"][0]["results"][0]["metrics"]
    assert {m["type"]: m["value"] for m in results}["accuracy"] == pytest.approx(run.metrics["eval_accuracy"])
    text = card.text
    for section in ("## Intended use", "## Data", "## Training", "## Evaluation", "## Limitations"):
        assert section in text
    assert run.data["train"]["sha256"][:16] in text and "negative: 80, positive: 80" in text
    assert "lr=0.002" in text and "lora_r" not in text  # the options this run used, not LoRA's
    assert run.card() == (folder / "README.md").read_text()


def test_the_card_of_a_minilm_run_names_its_hub_base_model():
    from llmnb.core.card import model_card

    card = model_card({"model_name": "minilm", "task": "classification", "metrics": {"eval_accuracy": 0.9}})
    assert "base_model: sentence-transformers/all-MiniLM-L6-v2" in card
    assert "base_model" not in model_card({"model_name": "./my-folder", "task": "sft"})


def test_a_pretrained_gpt_keeps_its_record_too(tmp_path):
    gpt = llmnb.pretrain("stories", max_steps=6, layers=1, width=32, heads=2, block_size=32, corpus_chars=20_000,
                         quiet=True, prompts=())
    assert gpt.data["train"]["rows"] > 0 and "labels" not in gpt.data["train"]
    assert gpt.wall_seconds > 0 and gpt.environment["torch"]
    folder = gpt.save(tmp_path / "gpt")
    record = json.loads((folder / "llmnb.json").read_text())
    assert record["result"] == "PretrainResult" and record["data"] == gpt.data
    assert "pipeline_tag: text-generation" in (folder / "README.md").read_text()

"""`llmnb.finetune` end to end on a tiny BERT: labels, regression, saving, and errors."""
import json

import pandas as pd
import pytest

import llmnb
from llmnb.errors import ConfigError, DataError, LlmnbError


def test_predict_returns_the_datas_own_labels(easy_rows, easy_eval_rows, tiny_options):
    ft = llmnb.finetune("tiny-bert", easy_rows, eval=easy_eval_rows, **tiny_options)
    texts = [r["text"] for r in easy_eval_rows]
    predicted = ft.predict(texts)
    accuracy = sum(p == r["label"] for p, r in zip(predicted, easy_eval_rows)) / len(texts)
    assert accuracy == pytest.approx(ft.metrics["eval_accuracy"])
    assert ft.predict("the staff were wonderful") == "positive"
    label, scores = ft.predict("the food was awful", return_scores=True)
    assert label == "negative" and scores["negative"] > 0.5
    assert set(scores) == {"negative", "positive"} and abs(sum(scores.values()) - 1) < 1e-5
    assert "<table>" in ft._repr_html_() and "accuracy" in ft._repr_html_()


def test_integer_labels_come_back_as_integers(easy_rows, tiny_options):
    rows = [{"sentence": r["text"], "y": int(r["label"] == "positive")} for r in easy_rows]
    ft = llmnb.finetune("tiny-bert", rows, **{**tiny_options, "max_steps": 5})
    assert ft.text_column == "sentence" and ft.label_column == "y"
    assert all(isinstance(v, int) for v in ft.predict(["great", "awful"]))


def test_regression_reports_mse(easy_rows, easy_eval_rows, tiny_options):
    def scored(rows):
        return [{"text": r["text"], "score": 4.5 if r["label"] == "positive" else 1.0} for r in rows]

    ft = llmnb.finetune("tiny-bert", scored(easy_rows), eval=scored(easy_eval_rows), **{**tiny_options, "task": "regression", "epochs": 12})
    # Always predicting the mean (2.75) gives an MSE of 1.75**2 = 3.06: the model must beat that clearly.
    assert "eval_mse" in ft.metrics and ft.metrics["eval_mse"] < 1.5, ft.metrics
    assert isinstance(ft.predict("wonderful"), float)


def test_save_reloads_with_transformers_and_llmnb(tmp_path, easy_rows, tiny_options):
    from transformers import AutoModelForSequenceClassification

    ft = llmnb.finetune("tiny-bert", easy_rows, **{**tiny_options, "max_steps": 5, "out": str(tmp_path / "run")})
    folder = tmp_path / "run"
    assert (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists()
    assert not list(folder.glob("*.bin")) and not list(folder.glob("*.pt"))
    meta = json.loads((folder / "llmnb.json").read_text())
    assert meta["labels"] == ["negative", "positive"] and meta["task"] == "classification"
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    assert model.config.id2label == {0: "negative", 1: "positive"}
    loaded = llmnb.load_model(str(folder))
    import torch

    batch = ft.tokenizer(["the film was superb"], return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(loaded.model(**batch).logits, ft.model(**batch).logits, atol=1e-5)


def test_the_folder_save_returns_trains_again(tmp_path, easy_rows, tiny_options):
    # result.save() returns a Path; passing it on as the model was refused ("not a PosixPath").
    # Trained well away from the start that a new run from "tiny-bert" (same seed) gets.
    ft = llmnb.finetune("tiny-bert", easy_rows, **{**tiny_options, "max_steps": 20})
    folder = ft.save(tmp_path / "saved")
    assert not isinstance(folder, str) and (folder / "config.json").exists()
    again = llmnb.finetune(folder, easy_rows, **{**tiny_options, "max_steps": 1})
    fresh = llmnb.finetune("tiny-bert", easy_rows, **{**tiny_options, "max_steps": 1})
    assert again.model_name == str(folder)
    saved = ft.model.state_dict()

    def distance(result):
        return max(float((p - saved[name]).abs().max()) for name, p in result.model.state_dict().items())

    # One step from the saved weights stays near them; one step from a new start does not.
    assert 0 < distance(again) < distance(fresh) / 3, (distance(again), distance(fresh))


def test_a_loaded_model_can_be_passed_in(easy_rows, tiny_options):
    lm = llmnb.load_model("tiny-bert", num_labels=2)
    ft = llmnb.finetune(lm, easy_rows, **{**tiny_options, "max_steps": 2})
    assert ft.model is lm.model
    with pytest.raises(DataError, match="has 3 outputs"):
        llmnb.finetune(llmnb.load_model("tiny-bert", num_labels=3), easy_rows, **tiny_options)


@pytest.mark.parametrize(
    "data, options, message",
    [
        ([{"text": "a", "label": "x"}, {"text": "b", "label": "x"}], {}, "single class"),
        ("reviews", {"label": "stars"}, "No column 'stars'"),
        ("reviews", {"epochs": -1}, "epochs=-1"),
        ("missing-file.csv", {}, "No file 'missing-file.csv'"),
        ([], {}, "empty list"),
        (42, {}, "Cannot use a int"),
    ],
)
def test_mistakes_fail_before_training_with_a_clear_message(data, options, message):
    with pytest.raises(LlmnbError, match=message):
        llmnb.finetune("tiny-bert", data, quiet=True, **options)


def test_eval_labels_unseen_in_training(easy_rows):
    frame = pd.DataFrame(easy_rows)
    evaluation = frame.head(4).assign(label=["positive", "negative", "angry", "positive"])
    before = evaluation.copy()
    with pytest.raises(DataError, match="never seen in training: angry"):
        llmnb.finetune("tiny-bert", frame, eval=evaluation, quiet=True)
    pd.testing.assert_frame_equal(evaluation, before)


def test_unwritable_out_fails_before_training(tmp_path, easy_rows):
    blocker = tmp_path / "a-file"
    blocker.write_text("keep me")
    with pytest.raises(ConfigError, match="is a file"):
        llmnb.finetune("tiny-bert", easy_rows, out=str(blocker / "model"), quiet=True)
    assert blocker.read_text() == "keep me"


def test_unknown_model_offline_says_what_to_do(easy_rows):
    with pytest.raises(llmnb.ModelNotFoundError, match="not in the local cache"):
        llmnb.finetune("no-such-org/no-such-model", easy_rows, quiet=True)


def test_the_plan_is_printed_in_short_lines(easy_rows, tiny_options, capsys):
    # A notebook wraps a long output line wherever the width ends, even inside a number.
    llmnb.finetune("tiny-bert", easy_rows, **{**tiny_options, "quiet": False, "plot": False, "max_steps": 2})
    plan = [line for line in capsys.readouterr().out.splitlines() if line.startswith("llmnb: ") and ("fine-tuning" in line or " steps (" in line)]
    assert len(plan) == 2, plan
    assert "fine-tuning tiny-bert" in plan[0] and "2 steps (" in plan[1] and "lr " in plan[1]
    assert all(len(line) <= 100 for line in plan), plan

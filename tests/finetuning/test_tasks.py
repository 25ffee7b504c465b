"""Causal language modelling and seq2seq through the same engine (chapters 3, 4.3 and 6)."""
import pytest

import llmnb
from llmnb.metrics import compute

FAST = dict(quiet=True, save_checkpoints=False, lr=3e-3, early_stopping=None)


def test_bleu_module():
    assert compute(["bleu"], ["the cat sat on the mat"], ["the cat sat on the mat"])["bleu"] == pytest.approx(100)
    partial = compute(["bleu"], ["the cat sat on a mat today"], ["the cat sat on the mat"])["bleu"]
    assert 0 < partial < 100
    assert compute(["bleu"], ["completely different words here"], ["the cat sat on the mat"])["bleu"] == 0


def test_causal_lm_perplexity_falls_and_it_generates(easy_rows):
    texts = [{"text": r["text"]} for r in easy_rows]
    ft = llmnb.finetune("tiny-gpt2", texts, task="causal-lm", max_steps=40, eval_every=10, **FAST)
    perplexity = ft.history["eval_perplexity"].dropna().tolist()
    assert perplexity[-1] < perplexity[0] / 2, perplexity
    assert ft.state.metric_name == "eval_perplexity" and ft.state.greater_is_better is False


def test_causal_lm_predict_continues_what_it_learned():
    # One sentence over and over: the continuation of its start is the rest of it.
    texts = [{"text": "one two three four five six"}] * 64
    ft = llmnb.finetune("tiny-gpt2", texts, task="causal-lm", max_steps=30, eval_fraction=0, **FAST)
    assert ft.predict("one two") == "three four five six"  # greedy, and it stops at the end of the text


def test_seq2seq_learns_and_reports_bleu(easy_rows):
    pairs = [{"source": r["text"], "target": r["label"]} for r in easy_rows]  # a tiny "translation": text -> verdict
    ft = llmnb.finetune("tiny-t5", pairs, task="seq2seq", max_steps=60, eval_every=20, **{**FAST, "lr": 1e-2})
    assert ft.text_column == "source" and ft.label_column == "target"
    losses = ft.history["train_loss"].dropna().tolist()
    assert losses[-1] < 0.5 * losses[0], losses
    assert "eval_bleu" in ft.metrics
    answers = ft.predict([p["source"] for p in pairs[:40]])
    right = sum(a == p["target"] for a, p in zip(answers, pairs[:40]))
    majority = max(sum(p["target"] == v for p in pairs[:40]) for v in ("positive", "negative"))
    assert right > majority, (right, majority, answers)  # it reads the text, beyond always writing one verdict


def test_tiny_models_refuse_the_wrong_task():
    with pytest.raises(llmnb.ModelNotFoundError, match="task='causal-lm'"):
        llmnb.load_model("tiny-gpt2", task="classification")

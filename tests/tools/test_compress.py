"""llmnb.tools.compress: int8 quantization, pruning and ensembles on a tiny BERT trained once."""
import dataclasses

import pytest
import torch
from easy_data import TINY, make_easy_sentiment

import llmnb
from llmnb.errors import LlmnbError
from llmnb.finetuning.data import LabelMap
from llmnb.tools.compress import CompressError, ensemble, prune, quantize


@pytest.fixture(scope="module")
def trained():
    """One short run shared by the module (training is the slow part on a CPU)."""
    options = {**TINY, "epochs": 3, "save_checkpoints": False}
    return llmnb.finetune("tiny-bert", make_easy_sentiment(160, seed=0), eval=make_easy_sentiment(60, seed=1), **options)


@pytest.fixture(scope="module")
def eval_rows():
    return make_easy_sentiment(60, seed=1)


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_weights(model, saved):
    now = model.state_dict()
    return set(now) == set(saved) and all(torch.equal(now[k], saved[k]) for k in saved)


def test_quantize_makes_an_int8_copy_and_measures_it(trained, eval_rows):
    before = snapshot(trained.model)
    report = quantize(trained, eval_data=eval_rows)
    # The original is untouched; the copy's Linear layers are int8 dynamic ones.
    assert same_weights(trained.model, before)
    assert all(type(m) is torch.nn.Linear for m in trained.model.modules() if "Linear" in type(m).__name__)
    kinds = {type(m).__module__ for m in report.model.modules() if "Linear" in type(m).__name__}
    assert kinds and all("quantized" in k for k in kinds), kinds
    assert report.result.model is report.model
    # Int8 weights are smaller when serialized; both speeds were measured.
    assert report.size_mb[1] < report.size_mb[0]
    assert report.size_mb[0] == pytest.approx(len(_serialized(trained.model)) / 2**20, rel=1e-6)
    assert all(s > 0 for s in report.speed)
    # Accuracy before is the result's own; after is the int8 copy's, measured on the same data.
    assert report.accuracy_before == pytest.approx(trained.evaluate(eval_rows)["eval_accuracy"])
    assert report.accuracy_after == pytest.approx(report.result.evaluate(eval_rows)["eval_accuracy"])
    agree = [a == b for a, b in zip(trained.predict([r["text"] for r in eval_rows]), report.result.predict([r["text"] for r in eval_rows]))]
    assert sum(agree) / len(agree) >= 0.9
    page = report._repr_html_()
    assert "<table>" in page and "size (MB)" in page and "speed" in page and "accuracy" in page
    assert "accuracy" in repr(report) and "->" in repr(report)


def test_prune_zeroes_the_smallest_weights_across_layers(trained):
    before = snapshot(trained.model)
    trained.model.train()  # timed in eval mode without a copy: the mode must come back
    try:
        report = prune(trained, amount=0.4)
        assert all(m.training for m in trained.model.modules()), "prune left the model in eval mode"
    finally:
        trained.model.eval()
    assert same_weights(trained.model, before)
    linears = [m for m in report.model.modules() if isinstance(m, torch.nn.Linear)]
    zeros = sum(int((m.weight == 0).sum()) for m in linears)
    total = sum(m.weight.numel() for m in linears)
    assert zeros / total == pytest.approx(0.4, abs=1e-3) and report.sparsity == pytest.approx(zeros / total)
    # Global ranking: layers end up with different sparsities (per-layer pruning gives 0.4 each).
    per_layer = [float((m.weight == 0).float().mean()) for m in linears]
    assert max(per_layer) - min(per_layer) > 0.05
    # Every surviving weight is at least as large as every removed one (magnitude pruning).
    kept = torch.cat([m.weight[m.weight != 0].abs() for m in linears])
    removed = torch.cat([before[name + ".weight"][report.model.get_submodule(name).weight == 0].abs() for name, m in report.model.named_modules() if isinstance(m, torch.nn.Linear)])
    assert kept.min() >= removed.max()
    # Permanent: no masks or hooks left behind, plain weights to save.
    assert not any(k.endswith(("_orig", "_mask")) for k in report.model.state_dict())
    assert not any(m._forward_pre_hooks for m in linears)
    assert report.result.predict("the staff were wonderful") == "positive"
    assert "zero weights" in report._repr_html_()


def test_compression_misuse_is_explained(trained, eval_rows):
    lm = llmnb.load_model("tiny-bert", device="cpu")
    with pytest.raises(CompressError, match="amount"):
        prune(trained, amount=1.5)
    with pytest.raises(CompressError, match="FineTuneResult"):
        quantize(lm, eval_data=eval_rows)
    with pytest.raises(LlmnbError, match="not a str"):
        quantize("tiny-bert")
    report = quantize(lm)  # a LoadedModel works without eval data: size and speed only
    assert report.metrics == ({}, {}) and report.accuracy_after is None and report.size_mb[1] < report.size_mb[0]


def test_ensemble_averages_member_probabilities(trained, eval_rows):
    other = dataclasses.replace(trained, model=prune(trained, amount=0.5).model)
    both = ensemble([trained, other])
    texts = [r["text"] for r in eval_rows[:10]]
    _, scores_a = trained.predict(texts, return_scores=True)
    _, scores_b = other.predict(texts, return_scores=True)
    labels, scores = both.predict(texts, return_scores=True)
    for a, b, mean, label in zip(scores_a, scores_b, scores, labels):
        for name in ("negative", "positive"):
            assert mean[name] == pytest.approx((a[name] + b[name]) / 2, abs=1e-6)
        assert label == max(mean, key=mean.get)
    assert both.predict("the room was dreadful") in ("negative", "positive")
    metrics = both.evaluate(eval_rows)
    predicted = both.predict([r["text"] for r in eval_rows])
    assert metrics["eval_accuracy"] == pytest.approx(sum(p == r["label"] for p, r in zip(predicted, eval_rows)) / len(eval_rows))
    assert "eval_f1" in metrics


def test_ensemble_refuses_members_with_other_labels(trained):
    other = dataclasses.replace(trained, labels=LabelMap(["bad", "good"]))
    with pytest.raises(CompressError, match="same labels"):
        ensemble([trained, other])
    with pytest.raises(CompressError, match="none"):
        ensemble([])
    with pytest.raises(CompressError, match="item 1"):
        ensemble([trained, "tiny-bert"])


def _serialized(model):
    import io

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getvalue()

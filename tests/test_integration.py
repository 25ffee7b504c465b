"""The real thing: the bundled MiniLM fine-tuned on the bundled reviews with default options."""
import pytest

import llmnb


@pytest.mark.slow
def test_minilm_learns_sentiment_with_the_defaults():
    train, test = llmnb.datasets.load("reviews"), llmnb.datasets.load("reviews", "test")
    ft = llmnb.finetune("minilm", train, eval=test, quiet=True)
    losses = ft.history["train_loss"].dropna().tolist()
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5, losses
    predicted = ft.predict(test["text"].tolist())
    accuracy = sum(p == y for p, y in zip(predicted, test["label"])) / len(test)
    assert accuracy >= 0.78, accuracy  # chance is 0.5; the defaults reach about 0.83 here
    assert accuracy == pytest.approx(ft.metrics["eval_accuracy"])
    assert ft.predict("Absolutely loved it, would go back tomorrow.") == "positive"
    assert ft.predict("It arrived broken and support never answered.") == "negative"

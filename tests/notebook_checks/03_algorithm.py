"""03_algorithm: perplexity at least halves, the hand-written and %finetune runs agree, costs and bias are measured.
Its "your turn" exercises pass with their solutions in place."""
import re

from notebook_checks import assert_exercises_correct
from test_notebooks import number, numbers, outputs


def check(nb, workdir, values):
    all_outputs = outputs(nb)
    text = "\n".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in all_outputs)
    stderr = [o["text"] for o in all_outputs if o.get("name") == "stderr"]
    assert not stderr, stderr  # no warnings for the learner to wade through

    # Part 1: pretraining from scratch; perplexity starts near the vocabulary size and at least halves.
    vocab = number(r"vocabulary: (\d+) tokens", text)
    start, end = numbers(r"validation perplexity: start ([\d.]+) -> end ([\d.]+)", text)
    assert 0.5 * vocab < start < 2 * vocab, (start, vocab)
    assert end <= start / 2, (start, end)
    assert "before training" in text or any("before training" in o.get("data", {}).get("text/html", "") for o in all_outputs)

    # Part 2: the hand-written loop evaluated on validation and kept the best weights; both runs learned,
    # and their test accuracies are close.
    assert len(re.findall(r"step +\d+: train loss [\d.]+, validation accuracy [\d.]+", text)) >= 2
    assert re.search(r"kept the weights of step \d+", text)
    hand, one_cell = numbers(r"test accuracy: hand-written ([\d.]+), %finetune ([\d.]+)", text)
    assert hand > 0.65 and one_cell > 0.65, (hand, one_cell)
    assert abs(hand - one_cell) <= 0.1, (hand, one_cell)
    images = [o for o in all_outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2, len(images)  # the final curves of %pretrain and %finetune (plt.show draws nothing under Agg)

    # Part 3: measured, not asserted.
    median, largest = numbers(r"transformer layers: median change ([\d.]+)%, largest ([\d.]+)%", text)
    assert 0 < median <= largest < 20
    assert number(r"training holds ([\d.]+)x the memory of the weights", text) >= 3.9  # + gradients + 2 AdamW moments
    few, full = numbers(r"labels ([\d.]+) \| \d+ labels ([\d.]+) \(the %finetune run", text)
    assert few > 0.5 and full > 0.5
    for name in ("hand-written", "%finetune"):
        control, gender, nationality, names, manners = numbers(
            name + r": shirt-colour control ([\d.]+) \| gender ([\d.]+), nationality ([\d.]+), "
            r"first name ([\d.]+) \| manners reference ([\d.]+)", text)
        assert manners > control, (name, manners, control)  # a sentiment word moves p(positive) more than noise
    assert "6 exercises registered for chapter 03" in text
    assert_exercises_correct(nb, "03.e1", "03.e2", "03.e3")

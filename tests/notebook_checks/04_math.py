"""04_math: cross-entropy by hand = F.cross_entropy, the chain rule on a real GPT, seq2seq beats copying,
and the 4.4 table shows the trade-offs the text describes."""
import re

from test_notebooks import number, outputs

from notebook_checks import assert_exercises_correct


def _text(nb):
    return "\n".join(o.get("text", "") for o in outputs(nb) if o.output_type == "stream")


def check(nb, workdir):
    text = _text(nb)
    # 4.2: the hand-written loss equals PyTorch's, to float rounding
    by_hand = number(r"cross-entropy by hand:\s+([\d.]+)", text)
    torch_ce = number(r"F\.cross_entropy:\s+([\d.]+)", text)
    assert abs(by_hand - torch_ce) < 1e-6
    assert "naive softmax:  [[nan" in text  # the overflow the text explains
    # 4.1: pretraining starts near the vocabulary size (uniform guess) and falls
    start, end = (float(x) for x in re.search(r"validation perplexity ([\d.]+) -> ([\d.]+)", text).groups())
    assert 500 < start < 2000 and end < start / 5, (start, end)
    # the chain rule: sum of per-token log-probs = -(loss x tokens)
    total = number(r"sum of log p\(x_t \| x_<t\) over \d+ tokens:\s+(-[\d.]+)", text)
    from_loss = number(r"-\(model's loss\) x \d+ tokens:\s+(-[\d.]+)", text)
    assert abs(total - from_loss) < 1e-3 * max(1.0, abs(total))
    real = number(r"log p\('Lily went[^']*'\) = (-[\d.]+)", text)
    shuffled = number(r"= (-[\d.]+)  \(same words, shuffled\)", text)
    assert real > shuffled, (real, shuffled)
    # case 1: the untrained head is a coin flip, the trained one is not
    assert abs(number(r"the model's own loss ([\d.]+) \(log 2", text) - 0.6931) < 0.05
    before, after = (float(x) for x in re.search(r"before ([\d.]+), after ([\d.]+) \(by hand\)", text).groups())
    assert after < before
    full_accuracy = number(r"test accuracy after \d+ steps: ([\d.]+)", text)
    assert full_accuracy > 0.7
    # case 2: the seq2seq model beats copying the source
    copy_bleu = number(r"test BLEU, copying the source:\s+([\d.]+)", text)
    model_bleu = number(r"test BLEU, the trained model:\s+([\d.]+)", text)
    assert 30 < copy_bleu < 65 and model_bleu > copy_bleu, (copy_bleu, model_bleu)
    s2s_total = number(r"sum of log p\(y_t \| y_<t, source\):\s+(-[\d.]+)", text)
    s2s_loss = number(r"-\(loss\) x \d+ target tokens:\s+(-[\d.]+)", text)
    assert abs(s2s_total - s2s_loss) < 1e-3 * max(1.0, abs(s2s_total))
    assert "Offline: skipped" in text  # the online-only cell stays quiet in the tests
    # 4.4: fewer weights trained with freeze, fewest with LoRA; lr_find's sweep and llmnb.compare shown
    runs = {m.group(1).strip(): (float(m.group(2)), float(m.group(3)), int(m.group(4).replace(",", "")))
            for m in re.finditer(r"^(.+?)\s+lr ([\d.e+-]+), test accuracy ([\d.]+), ([\d,]+) weights trained", text, re.M)}
    freeze = runs["top layer + head (freeze=1)"]
    lora_found, lora_default = runs["LoRA + head, lr_find's lr"], runs["LoRA + head, default lr"]
    assert lora_default[2] == lora_found[2] < freeze[2] < 22_713_986
    assert freeze[1] > 0.6 and lora_default[1] > 0.6, runs
    found = number(r"lr_find suggested ([\d.e+-]+) for LoRA", text)
    assert 1e-5 < found < 1 and lora_found[0] == float(f"{found:.1e}"), (found, runs)
    assert "lr_find: suggested lr" in text  # the sweep's own line, with its rule
    images = [o for o in outputs(nb) if "image/png" in o.get("data", {})]
    html = "\n".join(o.get("data", {}).get("text/html", "") for o in outputs(nb))
    assert 'alt="lr range test"' in html and 'alt="curves of the compared runs"' in html
    assert "best accuracy" in html and "wall x first" in html and "full fine-tuning" in html
    assert images or "data:image/png" in html
    assert_exercises_correct(nb, "04.e1")
    assert "6 exercises registered for chapter 04" in text

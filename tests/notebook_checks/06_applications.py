"""06_applications: each of the four applications beats its baseline, with the numbers it prints.
Its "your turn" exercises pass with their solutions in place."""

from notebook_checks import assert_exercises_correct
from test_notebooks import number, numbers, outputs


def _text(nb):
    return "\n".join(o.get("text", "") for o in outputs(nb) if o.output_type == "stream") + "\n" + "\n".join(
        o.get("data", {}).get("text/plain", "") for o in outputs(nb) if o.output_type in ("execute_result", "display_data"))


def check(nb, workdir, values):
    text = _text(nb)
    images = [o for o in outputs(nb) if "image/png" in o.get("data", {})]
    assert len(images) >= 5, "expected the static curves of %pretrain and four %finetune runs"
    # 1 sentiment: fine-tuning beats the zero-shot prompt, and the prompt beats chance
    zero_shot, fine_tuned = numbers(r"zero-shot prompt: ([\d.]+)\s+fine-tuned \(\d+ steps\): ([\d.]+)", text)
    assert 0.5 < zero_shot < fine_tuned and fine_tuned > 0.7, (zero_shot, fine_tuned)
    # 2 generation: fine-tuning lowers the test perplexity; pretraining gives a head start
    before, after, _ = numbers(r"test perplexity: ([\d.]+) before fine-tuning, ([\d.]+) after; divided by ([\d.]+)", text)
    assert before > 2 * after, (before, after)
    pretrained, scratch = numbers(r"after \d+ steps: pretrained start ([\d.]+), random start ([\d.]+)", text)
    assert pretrained < scratch, (pretrained, scratch)
    assert (workdir / "runs" / "ch06-gpt" / "model.safetensors").exists()
    # 3 extraction: the fine-tuned extractor beats the rule over all fields
    rule, model = numbers(r"all fields\s+([\d.]+)\s+([\d.]+)", text)
    assert model > rule and model > 0.85, (rule, model)
    # 4 ratings: the regression is far below the always-the-average MSE
    average = number(r"always the average\s+([\d.]+)\n", text)
    regression = number(r"fine-tuned regression \(\d+ steps\)\s+([\d.]+)", text)
    assert regression < 0.6 * average, (average, regression)
    assert "4 of 4 applications beat their baseline" in text
    assert "5 exercises registered for chapter 06" in text
    assert_exercises_correct(nb, "06.e1", "06.e2", "06.e3")

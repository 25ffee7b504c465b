"""08_trends_challenges: a learning curve that rises, costs measured for size/length/precision, probes against baselines.
Its "your turn" exercises pass with their solutions in place."""
import re

from notebook_checks import assert_exercises_correct
from test_notebooks import number, outputs


def check(nb, workdir, values):
    all_outputs = outputs(nb)
    text = "".join(o.get("text", "") for o in all_outputs if o.get("output_type") == "stream")
    images = sum("image/png" in o.get("data", {}) for o in all_outputs)
    assert images >= 2, f"only {images} figures"

    # 1: more labels, more accuracy; flipped labels cost accuracy
    assert number(r"labels \([\d.]+ doublings\): test accuracy [\d.]+ -> [\d.]+ \(([+-][\d.]+)\)", text) > 0.05
    assert number(r"([+-][\d.]+) accuracy per doubling", text) > 0
    assert number(r"flipped ([\d.]+) \(", text) < number(r"with clean labels ([\d.]+)", text)

    # 2: bigger models and longer texts take longer; the bf16 line names the hardware
    assert number(r"grows like \(non-embedding parameters\) \^ ([\d.-]+)", text) > 0.2
    slower = re.search(r"times the non-embedding weights, ([\d.,]+) times the time", text)
    assert slower and float(slower.group(1).replace(",", "")) > 2, "the biggest model was not slower"
    assert re.search(r"fast bf16 instructions \(AVX512-BF16 or AMX\) (present|absent)|GPU .*bf16", text)
    assert number(r"bf16 autocast: ([\d.]+) times the speed", text) > 0

    # 3 and 4: the probes ran and printed their baselines
    assert "saliency / random" in text
    assert "mean p(positive) of all" in text
    assert_exercises_correct(nb, "08.e1", "08.e2", "08.e3")

"""09_faq: overfitting visible and cured, a faithful saliency, a 2-process run, int8 and ensembles measured.
Its "your turn" exercises pass with their solutions in place."""
import re

from notebook_checks import assert_exercises_correct
from test_notebooks import number, outputs


def check(nb, workdir, values):
    all_outputs = outputs(nb)
    text = "".join(o.get("text", "") for o in all_outputs if o.get("output_type") == "stream")
    html = " ".join(o.get("data", {}).get("text/html", "") for o in all_outputs)
    images = sum("image/png" in o.get("data", {}) for o in all_outputs) + html.count("data:image/png;base64,")
    assert images >= 3, f"only {images} figures"  # live curve, the comparison of 1.8, the explanation

    # 1: the baseline memorises (training loss near 0) while validation loss climbs well above its lowest point
    assert number(r"training loss:\s+[\d.]+ at step 1 -> ([\d.]+)", text) < 0.1
    assert number(r"at the end \(([\d.]+) times the lowest\)", text) > 1.3
    cured = re.search(r"below the baseline's: (.*)", text).group(1)
    assert any(name in cured for name in ("augmentation", "dropout")), cured
    assert number(r"multiplied by ([\d.]+)", text) > 0.99  # weight decay is a near no-op here, as the text says
    stopped, planned = re.search(r"stopped at step (\d+) of (\d+)", text).groups()
    assert int(stopped) < int(planned)
    assert number(r"test accuracy ([\d.]+)\n", text) > 0.7  # the 'more data' model used in sections 2 and 3
    # 1.6: the ensemble costs about one prediction per member; then the 64-review runs' weights are freed
    assert number(r"the ensemble took ([\d.]+) times as long", text) > 2
    held, now = (float(n.replace(",", "")) for n in re.search(r"held ([\d,]+) MB and now holds ([\d,]+) MB", text).groups())
    assert held - now > 200, f"freeing the 64-review runs' weights gave back only {held - now:.0f} MB"

    # 2: saliency beats random deletions; the explanation was rendered
    assert number(r"saliency: ([\d.]+) times the fall of random", text) > 1.0
    assert "saliency for" in html or "data:image/png;base64," in html

    # 3: DDP arithmetic, the 2-process run and its model, int8
    assert number(r"averaged halves ([\d.e+-]+)", text) < 1e-5
    assert "2 process(es) on" in text and "eval_accuracy" in text
    assert (workdir / "job" / "model-2proc" / "model.safetensors").exists()
    ratio = number(r"\(([\d.]+) times smaller\)", text)
    predicted = number(r"the file shrinks ([\d.]+) times", text)
    assert ratio > 1.3 and abs(ratio - predicted) < 0.1
    assert_exercises_correct(nb, "09.e1", "09.e2", "09.e3")

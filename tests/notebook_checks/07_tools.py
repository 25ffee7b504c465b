"""07_tools: each library used for real, the Trainer's live curve, and no network in the fast profile.
Its "your turn" exercises pass with their solutions in place."""
import re

from notebook_checks import assert_exercises_correct
from test_notebooks import outputs


def check(nb, workdir, values):
    text = "\n".join(o.get("text", "") for o in outputs(nb) if o.output_type == "stream")
    assert any("image/png" in o.get("data", {}) for o in outputs(nb)), "no static curve of the Trainer run"
    # peft: a small share of the weights trains
    share = float(re.search(r"peft, query\+value adapters: [\d,]+ trainable weights \(([\d.]+)%\)", text).group(1))
    assert 0 < share < 1, share
    # accelerate: the exported script ran and saved its model
    assert "1 process(es) on" in text and (workdir / "runs" / "ch07-job" / "model" / "config.json").exists()
    # Trainer + LiveCallback: llmnb's view holds exactly the Trainer's numbers, and the run learned
    assert "identical: True" in text
    best = float(re.search(r"best accuracy ([\d.]+) at step", text).group(1))
    assert best > 0.6, best
    # benchmarks: the fast profile never tries the Hub
    assert "source: the bundled 'reviews' (test split) instead of glue/sst2: offline=True" in text
    assert "5 exercises registered for chapter 07" in text
    assert_exercises_correct(nb, "07.e1", "07.e2", "07.e3")

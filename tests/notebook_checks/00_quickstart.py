"""00_quickstart: the curve image, the finished display, accuracy > 0.7, the saved model, and the three
"your turn" exercises pass with their solutions."""
from notebook_checks import assert_exercises_correct
from test_notebooks import outputs


def check(nb, workdir, values):
    all_outputs = outputs(nb)
    assert any("image/png" in o.get("data", {}) for o in all_outputs), "no static curve image"
    html = " ".join(o.get("data", {}).get("text/html", "") for o in all_outputs)
    assert "finished" in html and "accuracy" in html
    metrics_cell = next(c for c in nb.cells if "metrics" in c.metadata.get("tags", []))
    text = "".join(o.get("text", "") for o in metrics_cell.outputs)
    accuracy = float(text.split("'eval_accuracy': ")[1].split(",")[0])
    assert accuracy > 0.7, text
    assert (workdir / "runs" / "quickstart-minilm" / "model.safetensors").exists()
    # The run folder holds the final model once (no optimizer state, no checkpoint), and llmnb.runs() lists it.
    run = workdir / "runs" / "minilm-001"
    assert sorted(p.name for p in run.iterdir() if p.is_dir()) == []
    assert sum(p.stat().st_size for p in run.iterdir()) < 120e6
    assert "minilm-001" in html and "quickstart-minilm" in html
    assert_exercises_correct(nb, "00.e1", "00.e2", "00.e3")

"""00_quickstart: the curve image, the finished display, accuracy > 0.7, the saved model, the run folder with
the final weights once, the three "your turn" exercises pass with their solutions, and self-check 00.2 follows
the learner's own model. Numbers are read from the notebook's own objects (VALUES), not from its printed text."""
from test_notebooks import outputs

from notebook_checks import assert_exercises_correct

VALUES = {
    "metrics": "ft.metrics",
    "eval_accuracies": "ft.history['eval_accuracy'].dropna().tolist()",
    "parameters": "ft.num_parameters",
    "run_dir": "str(ft.run_dir)",
    "saved": "str(folder)",
    "runs_listed": "llmnb.runs()['name'].tolist()",
    "exercises": "sorted(i for i in llmnb.check.EXERCISES if i.startswith('00.'))",
    # 00.2 asks what the learner's own model says: the check accepts that letter and not the other.
    "own_label": "ft.predict([SURPRISE])[0]",
    "00.2 accepts": "[llmnb.check.EXERCISES['00.2'].checker(x) for x in ('a', 'b', 'positive', 'negative')]",
}
TENSOR_FILES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")


def check(nb, workdir, values):
    v = values
    all_outputs = outputs(nb)
    assert any("image/png" in o.get("data", {}) for o in all_outputs), "no static curve image"
    html = " ".join(o.get("data", {}).get("text/html", "") for o in all_outputs)
    assert "finished" in html and "accuracy" in html
    # The run learned (the chapter's promise), and ft.metrics are those of its best evaluation, the weights it holds.
    accuracy = v["metrics"]["eval_accuracy"]
    assert accuracy > 0.7, v["metrics"]
    assert accuracy == max(v["eval_accuracies"]), (accuracy, v["eval_accuracies"])
    runs = (workdir / "runs").resolve()
    saved, run = (workdir / v["saved"]).resolve(), (workdir / v["run_dir"]).resolve()  # relative to the kernel's folder
    assert saved == runs / "quickstart-minilm" and (saved / "model.safetensors").exists(), saved
    # The run folder holds the final model once: every weight once in fp32 (plus the file's header), no other
    # tensor file (no optimizer state, no checkpoint), no subfolder; llmnb.runs() lists it and the saved copy.
    assert run.parent == runs, run
    files = sorted(run.iterdir())
    assert [p.name for p in files if p.is_dir()] == [], files
    weights = (run / "model.safetensors").stat().st_size
    assert 4 * v["parameters"] <= weights < 4 * v["parameters"] + 2**20, (weights, v["parameters"])
    assert [p.name for p in files if p.suffix in TENSOR_FILES] == ["model.safetensors"], files
    assert sum(p.stat().st_size for p in files) < 2 * weights, [(p.name, p.stat().st_size) for p in files]
    assert {run.name, saved.name} <= set(v["runs_listed"]), v["runs_listed"]
    assert run.name in html and saved.name in html  # the table the learner sees
    assert v["exercises"] == ["00.1", "00.2", "00.3", "00.4", "00.e1", "00.e2", "00.e3"], v["exercises"]
    accepts = v["00.2 accepts"]
    assert accepts == ([True, False, True, False] if v["own_label"] == "positive" else [False, True, False, True]), v
    assert_exercises_correct(nb, "00.e1", "00.e2", "00.e3")

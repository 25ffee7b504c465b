"""Tutorial notebooks run top to bottom, offline, in the fast profile, with no error output."""
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))


def execute(path: Path, workdir: Path):
    nb = nbformat.read(path, as_version=4)
    env_before = os.environ.get("LLMNB_PROFILE")
    os.environ["LLMNB_PROFILE"] = "fast"  # the kernel inherits the environment
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}).execute()
    finally:
        if env_before is None:
            os.environ.pop("LLMNB_PROFILE")
        else:
            os.environ["LLMNB_PROFILE"] = env_before
    return nb


def outputs(nb):
    return [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]


def test_notebooks_are_stored_without_outputs():
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
        assert not dirty, f"{path.name}: cells {dirty} have stored outputs; clear them before committing"


def check_quickstart(nb, workdir):
    all_outputs = outputs(nb)
    assert any("image/png" in o.get("data", {}) for o in all_outputs), "no static curve image"
    html = " ".join(o.get("data", {}).get("text/html", "") for o in all_outputs)
    assert "finished" in html and "accuracy" in html
    metrics_cell = next(c for c in nb.cells if "metrics" in c.metadata.get("tags", []))
    text = "".join(o.get("text", "") for o in metrics_cell.outputs)
    accuracy = float(text.split("'eval_accuracy': ")[1].split(",")[0])
    assert accuracy > 0.7, text
    assert (workdir / "runs" / "quickstart-minilm" / "model.safetensors").exists()


# Checks of what a notebook must show, beyond running without errors.
CHECKS = {"00_quickstart": check_quickstart}


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_clean(path, tmp_path):
    nb = execute(path, tmp_path)
    errors = [o for o in outputs(nb) if o.output_type == "error"]
    assert not errors, errors
    stderr = [o["text"] for o in outputs(nb) if o.get("name") == "stderr" and "Traceback" in o.get("text", "")]
    assert not stderr, stderr
    if path.stem in CHECKS:
        CHECKS[path.stem](nb, tmp_path)

"""Tutorial notebooks run top to bottom, offline, in the fast profile, with no error output."""
import importlib.util
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))


def execute(path: Path, workdir: Path):
    nb = nbformat.read(path, as_version=4)
    # The kernel inherits this process's environment: the fast profile, and no MPLBACKEND=Agg
    # (which conftest sets for the tests) so that plots render inline as in a learner's kernel.
    saved = {key: os.environ.get(key) for key in ("LLMNB_PROFILE", "MPLBACKEND")}
    os.environ["LLMNB_PROFILE"] = "fast"
    os.environ.pop("MPLBACKEND", None)
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}).execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return nb


def outputs(nb):
    return [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]


def test_notebooks_are_stored_without_outputs():
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
        assert not dirty, f"{path.name}: cells {dirty} have stored outputs; clear them before committing"


def notebook_check(stem):
    """`check(nb, workdir)` from tests/notebook_checks/<stem>.py, or None when the notebook has none."""
    file = Path(__file__).parent / "notebook_checks" / f"{stem}.py"
    if not file.exists():
        return None
    spec = importlib.util.spec_from_file_location(f"notebook_checks_{stem}", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.check


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_clean(path, tmp_path):
    nb = execute(path, tmp_path)
    errors = [o for o in outputs(nb) if o.output_type == "error"]
    assert not errors, errors
    stderr = [o["text"] for o in outputs(nb) if o.get("name") == "stderr" and "Traceback" in o.get("text", "")]
    assert not stderr, stderr
    check = notebook_check(path.stem)
    if check is not None:
        check(nb, tmp_path)

"""Running one submitted notebook (llmnb.classroom.execute): keep going past an error, a kernel
that dies, an unreadable file, and the small pieces around them."""
import json
import os

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from llmnb.classroom.execute import describe, kernel_env, read_log, run_notebook


def test_keep_going_runs_past_an_error_until_the_kernel_dies(tmp_path):
    cells = [
        new_markdown_cell("# a notebook that goes wrong twice"),
        new_code_cell('from llmnb.check import Exercise, check, number, register\n'
                      'register(Exercise("98.1", "One", number(1), "one"))'),
        new_code_cell('raise ValueError("first problem\\nsecond line")'),
        new_code_cell('check("98.1", 1)'),
        new_code_cell("import os\nos._exit(3)"),
        new_code_cell('check("98.1", 2)'),
    ]
    path = tmp_path / "nb.ipynb"
    nbformat.write(new_notebook(cells=cells), path)
    before = path.read_bytes()
    outcome = run_notebook(path, timeout=60, keep_going=True)
    assert outcome.failed == {3: "ValueError: first problem"}
    assert [(c["id"], c["ok"]) for c in outcome.checks] == [("98.1", True)]
    assert (outcome.stop, outcome.cell) == ("died", 5) and "kernel died" in outcome.error
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["nb.ipynb"]


def test_an_unreadable_notebook_is_an_outcome_not_an_exception(tmp_path):
    (tmp_path / "bad.ipynb").write_text("{not json")
    outcome = run_notebook(tmp_path / "bad.ipynb")
    assert outcome.stop == "unreadable" and outcome.error.startswith("NotJSONError") and outcome.checks == []


def test_describe_read_log_and_the_kernels_environment(tmp_path, monkeypatch):
    assert describe("NameError", "name 'x' is not defined\nmore") == "NameError: name 'x' is not defined"
    assert describe("KeyboardInterrupt", "") == "KeyboardInterrupt"
    assert len(describe("E", "x" * 500)) == len("E: ") + 100
    log = tmp_path / "log.jsonl"
    log.write_text('{"id": "01.1", "ok": true}\n{"id": "01.2", "o\n[1]\n{"id": "01.3", "ok": false}\n')
    assert read_log(log) == [{"id": "01.1", "ok": True}, {"id": "01.3", "ok": False}]
    assert read_log(tmp_path / "none.jsonl") == []
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("LLMNB_PROFILE", "full")
    env = kernel_env(tmp_path, log)
    assert {k: env[k] for k in ("LLMNB_PROFILE", "LLMNB_QUIET", "HF_HUB_OFFLINE", "LLMNB_GRADE_LOG", "LLMNB_RUNS_DIR")} == {
        "LLMNB_PROFILE": "fast", "LLMNB_QUIET": "1", "HF_HUB_OFFLINE": "1", "LLMNB_GRADE_LOG": str(log),
        "LLMNB_RUNS_DIR": str(tmp_path / "runs")}
    assert "MPLBACKEND" not in env and env["PATH"] == os.environ["PATH"]
    json.dumps(env)  # plain strings only

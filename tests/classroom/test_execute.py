"""Running one submitted notebook (llmnb.classroom.execute): keep going past an error, a kernel
that dies, an unreadable file, values read out of the kernel afterwards, the clean environment,
and the same run confined by bubblewrap (llmnb.classroom.sandbox)."""
import json
from pathlib import Path
import os

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from llmnb.classroom.execute import describe, run_notebook
from llmnb.classroom.sandbox import Sandbox, bwrap_works, clean_environment

needs_bwrap = pytest.mark.skipif(not bwrap_works(), reason="bubblewrap is not installed: scripts/install_bubblewrap.sh")


@pytest.fixture
def precious():
    """A file of the instructor's outside /tmp (which a confined kernel sees as an empty tmpfs), so
    a confined kernel can see it but must not be able to change it."""
    import uuid
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "build" / f"precious-{uuid.uuid4().hex[:8]}.txt"
    path.parent.mkdir(exist_ok=True)
    path.write_text("the instructor's")
    yield path
    assert path.read_text() == "the instructor's", "student code changed a file outside its scratch folder"
    path.unlink()


def write(tmp_path, *sources, name="nb.ipynb"):
    path = tmp_path / name
    nbformat.write(new_notebook(cells=[new_markdown_cell("# a notebook"), *map(new_code_cell, sources)]), path)
    return path


def test_keep_going_runs_past_an_error_until_the_kernel_dies(tmp_path):
    path = write(tmp_path, "answer = 1", 'raise ValueError("first problem\\nsecond line")', "answer = 2",
                 "import os\nos._exit(3)", "answer = 3")
    before = path.read_bytes()
    outcome = run_notebook(path, timeout=60, keep_going=True, read={"answer": "answer"})
    assert outcome.failed == {3: "ValueError: first problem"}
    assert (outcome.stop, outcome.cell) == ("died", 5) and "kernel died" in outcome.error
    assert outcome.values == {}  # nobody left to ask
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["nb.ipynb"]


def test_values_are_read_after_the_cells_and_after_a_cell_that_raises(tmp_path):
    path = write(tmp_path, "answer_1 = 4\nname = 'ana'", "import math\nroot = math.sqrt(2)", "raise KeyError('stop')",
                 "answer_2 = 9")
    read = {"a1": "answer_1", "a2": "answer_2", "both": "[answer_1, name, round(root, 3)]", "checked": "g.gradable('00.1', 22.7)"}
    outcome = run_notebook(path, timeout=60, read=read, read_setup="import llmnb.check as g; g.register(g.Exercise('00.1', 'q', g.number(22.7, tol=0.5), 'h'))")
    assert (outcome.stop, outcome.cell, outcome.error) == ("error", 4, "KeyError: 'stop'")
    assert outcome.values == {"a1": 4, "a2": {"error": "NameError: name 'answer_2' is not defined"},
                              "both": [4, "ana", 1.414], "checked": 22.7}


def test_a_notebook_out_of_time_is_interrupted_and_what_came_before_is_still_read(tmp_path):
    path = write(tmp_path, "answer_1 = 4", "import time\ntime.sleep(120)", "answer_2 = 9")
    outcome = run_notebook(path, timeout=4, read={"a1": "answer_1", "a2": "answer_2"})
    assert (outcome.stop, outcome.cell) == ("timeout", 3)
    assert outcome.values == {"a1": 4, "a2": {"error": "NameError: name 'answer_2' is not defined"}}


def test_a_notebook_past_its_memory_limit_is_stopped(tmp_path):
    path = write(tmp_path, "answer_1 = 4", "hog = bytearray(3 * 1024**3)", "answer_2 = 9")
    outcome = run_notebook(path, timeout=120, memory_mb=500, read={"a1": "answer_1"})
    assert (outcome.stop, outcome.cell) == ("memory", 3) and "500 MB" in outcome.error
    assert outcome.values == {}


def test_an_unreadable_notebook_is_an_outcome_not_an_exception(tmp_path):
    (tmp_path / "bad.ipynb").write_text("{not json")
    outcome = run_notebook(tmp_path / "bad.ipynb")
    assert outcome.stop == "unreadable" and outcome.error.startswith("NotJSONError") and outcome.values == {}


def test_describe_and_the_kernels_clean_environment(tmp_path, monkeypatch):
    assert describe("NameError", "name 'x' is not defined\nmore") == "NameError: name 'x' is not defined"
    assert describe("KeyboardInterrupt", "") == "KeyboardInterrupt"
    assert len(describe("E", "x" * 500)) == len("E: ") + 100
    for secret in ("HF_TOKEN", "OPENAI_API_KEY", "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN"):
        monkeypatch.setenv(secret, "s3cr3t")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    env = clean_environment(tmp_path, {"LLMNB_PROFILE": "fast"})
    assert "s3cr3t" not in json.dumps(env) and "MPLBACKEND" not in env
    assert env["HOME"] == str(tmp_path) and env["HF_HOME"].startswith(str(tmp_path)) and env["PATH"] == os.environ["PATH"]
    assert env["LLMNB_PROFILE"] == "fast"


def test_the_kernel_sees_only_the_clean_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "s3cr3t")
    path = write(tmp_path, "import os\nenviron = dict(os.environ)\nhere = os.getcwd()")
    outcome = run_notebook(path, timeout=60, read={"env": "environ", "cwd": "here"})
    env = outcome.values["env"]
    assert "HF_TOKEN" not in env and env["LLMNB_PROFILE"] == "fast" and env["LLMNB_QUIET"] == "1" and env["HF_HUB_OFFLINE"] == "1"
    assert outcome.values["cwd"].startswith(env["HOME"]) and str(tmp_path) not in outcome.values["cwd"]


@needs_bwrap
def test_confined_a_kernel_cannot_write_outside_its_scratch_folder_nor_reach_the_network(tmp_path, precious):
    path = write(tmp_path,
                 f"import pathlib\nseen = pathlib.Path({str(precious)!r}).read_text()\ntry:\n    pathlib.Path({str(precious)!r}).unlink()\n"
                 "    deleted = 'yes'\nexcept OSError as e:\n    deleted = type(e).__name__",
                 "import socket\ntry:\n    socket.create_connection(('127.0.0.1', 22), timeout=2)\n    reached = 'yes'\n"
                 "except OSError as e:\n    reached = type(e).__name__",
                 "import os\nopen('mine.txt', 'w').write('ok')\nwrote = os.path.exists('mine.txt')")
    outcome = run_notebook(path, timeout=60, sandbox=Sandbox.choose("bwrap"),
                           read={"seen": "seen", "deleted": "deleted", "reached": "reached", "wrote": "wrote"})
    assert outcome.stop == "" and outcome.values == {"seen": "the instructor's", "deleted": "OSError",  # read-only
                                                     "reached": "ConnectionRefusedError", "wrote": True}
    assert precious.read_text() == "the instructor's"


def test_the_sandbox_is_chosen_or_refused_clearly(monkeypatch):
    import llmnb.classroom.sandbox as sandbox
    from llmnb.errors import LlmnbError

    assert Sandbox.choose("none").mode == "none" and Sandbox.choose("none").prefix(None, None) in ([], ["prlimit", "--cpu=None", "--"])
    monkeypatch.setattr(sandbox, "bwrap_works", lambda: False)
    assert Sandbox.choose("auto") == Sandbox("none")
    with pytest.raises(LlmnbError, match="bubblewrap is not installed"):
        Sandbox.choose("bwrap")
    with pytest.raises(LlmnbError, match="not one of auto, bwrap, none"):
        Sandbox.choose("docker")


def test_a_python_under_tmp_is_bound_back_into_the_sandbox(monkeypatch, tmp_path):
    """A clone or virtualenv under /tmp vanished under the sandbox's empty /tmp: every kernel died
    before replying (a fresh clone in /tmp graded nothing)."""
    import sys

    from llmnb.classroom import sandbox

    venv = Path("/tmp") / f"llmnb-venv-{os.getpid()}"
    (venv / "lib").mkdir(parents=True, exist_ok=True)
    try:
        monkeypatch.setattr(sys, "prefix", str(venv))
        monkeypatch.setattr(sys, "path", [*sys.path, str(venv / "lib")])
        args = sandbox.Sandbox("bwrap").prefix(tmp_path / "scratch", None)
        bound = [args[i + 1] for i, a in enumerate(args) if a == "--ro-bind"]
        assert str(venv.resolve()) in bound and str(venv / "lib") not in bound  # the outer folder, once
        assert args.index("--tmpfs") < args.index(str(venv.resolve()))  # on top of the empty /tmp, not under it
    finally:
        import shutil

        shutil.rmtree(venv, ignore_errors=True)

"""The package's shape: areas without import cycles, small documented modules, and a public API
that the tutorials keep to (so moving an internal module never breaks a chapter)."""
import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import llmnb

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "llmnb"
PUBLIC_SUBPACKAGES = ("check", "datasets", "metrics")
MAX_LINES = 400


def modules() -> dict[str, Path]:
    """Dotted name -> file, for every module of llmnb (the metric folders stand alone for `evaluate`)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[:2] == ("llmnb", "metrics") and len(parts) > 3:
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imported_modules(path: Path, known) -> set[str]:
    """The llmnb modules a file imports, at the top or inside functions."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.split(".")[0] == "llmnb":
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in known)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "llmnb")
    return out & set(known)


def test_no_module_imports_the_package_root_or_itself_relatively():
    # The root imports everything lazily; a module that imports the root closes a cycle through it.
    for name, path in modules().items():
        if name == "llmnb":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{name} uses a relative import; llmnb imports by full name"
                assert node.module != "llmnb", f"{name} imports from the package root; import the module that defines the name"


def test_no_import_cycles():
    known = modules()
    graph = {name: imported_modules(path, known) - {name} for name, path in known.items() if name != "llmnb"}
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_cycle_check_finds_a_cycle(tmp_path, monkeypatch):
    # The check above must be able to fail: two modules that import each other are a cycle.
    (tmp_path / "a.py").write_text("from llmnb.core.engine import Engine\n")
    known = {"llmnb.core.engine": PACKAGE / "core" / "engine.py", "llmnb.x": tmp_path / "a.py"}
    assert imported_modules(tmp_path / "a.py", known) == {"llmnb.core.engine"}


def test_every_module_is_small_and_says_what_it_is_for():
    for name, path in modules().items():
        lines = len(path.read_text().splitlines())
        assert lines <= MAX_LINES, f"{name} has {lines} lines (at most {MAX_LINES}): split it by idea"
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc and len(doc.split()) >= 5, f"{name} has no docstring saying what it is for"


def test_about_a_dozen_names_at_the_top():
    top = sorted(p.stem for p in PACKAGE.iterdir() if (p.suffix == ".py" or (p / "__init__.py").exists()) and p.stem != "__init__")
    assert len(top) <= 15, top  # the 15th: tasks/, one file per task
    for area in ("core", "finetuning", "instruct", "tasks", "pretraining", "display", "notebook", "tools", "course", "datasets", "metrics"):
        assert (PACKAGE / area / "__init__.py").exists()


def test_the_version_is_written_once():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^version = "([^"]+)"', pyproject, re.M).group(1) == llmnb.__version__


# ---------------------------------------------------------------------- the public API
def public_names() -> set[str]:
    return set(llmnb.__all__) | set(PUBLIC_SUBPACKAGES)


def code_of(notebook: Path) -> str:
    """The notebook's code cells as plain Python (magics and shell lines turned into calls)."""
    from IPython.core.inputtransformer2 import TransformerManager

    cells = json.loads(notebook.read_text())["cells"]
    return "\n".join(TransformerManager().transform_cell("".join(c["source"])) for c in cells if c["cell_type"] == "code")


def internal_uses(source: str) -> list[str]:
    """Every way `source` reaches llmnb beyond the public API."""
    public, bad = public_names(), []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "llmnb":
            parts = node.module.split(".")
            if len(parts) == 1:
                bad += [f"from llmnb import {a.name}" for a in node.names if a.name not in public]
            elif parts[1] not in PUBLIC_SUBPACKAGES:
                bad.append(f"from {node.module} import ...")
        elif isinstance(node, ast.Import):
            bad += [f"import {a.name}" for a in node.names
                    if a.name.startswith("llmnb.") and a.name.split(".")[1] not in PUBLIC_SUBPACKAGES]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "llmnb":
            if node.attr not in public and not node.attr.startswith("__"):
                bad.append(f"llmnb.{node.attr}")
    return bad


def test_the_public_api_check_catches_internal_names():
    assert internal_uses("import llmnb\nllmnb.core.engine.make_optimizer") == ["llmnb.core"]
    assert internal_uses("from llmnb.core.models import resolve_device") == ["from llmnb.core.models import ..."]
    assert internal_uses("from llmnb import finetune, datasets\nfrom llmnb.datasets.synthetic import ASPECTS") == []


@pytest.mark.parametrize("notebook", sorted((ROOT / "tutorials").glob("*.ipynb")), ids=lambda p: p.stem)
def test_tutorials_use_only_the_public_api(notebook):
    assert internal_uses(code_of(notebook)) == [], (
        f"{notebook.name} reaches inside llmnb; export the name from llmnb/__init__.py (documented, with its chapter)"
    )


@pytest.mark.slow  # imports every module in a fresh process (30 s on 2 busy cores)
def test_public_names_survive_submodule_imports():
    """Importing a submodule binds its name on the package: no module may share a public name."""
    code = (
        "import importlib, pkgutil, types, llmnb\n"
        "for m in pkgutil.walk_packages(llmnb.__path__, 'llmnb.'): importlib.import_module(m.name)\n"
        "bad = [n for n in llmnb._LAZY if isinstance(getattr(llmnb, n), types.ModuleType)]\n"
        "print(bad); raise SystemExit(bool(bad))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_public_names_resolve_and_say_which_chapter_teaches_them():
    for name in sorted(llmnb._LAZY):
        obj = getattr(llmnb, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            continue  # errors say what went wrong, not a lesson
        doc = obj.__doc__ or ""
        assert re.search(r"[Cc]hapters? \d", doc), f"llmnb.{name}'s docstring does not name the chapter that teaches it"


def test_mistakes_anywhere_in_the_package_are_llmnb_errors_that_name_the_culprit():
    # Each of these raised a bare ValueError before; a notebook shows an LlmnbError as one line.
    from llmnb.check import check
    from llmnb.datasets.benchmarks import load_benchmark
    from llmnb.datasets.synthetic import rated_reviews
    from llmnb.datasets.tense import build_pairs
    from llmnb.display import make_display

    mistakes = [
        (lambda: rated_reviews(split="dev"), "split='dev'"),
        (lambda: load_benchmark("glue", "sst2", split="dev", offline=True), "split='dev'"),
        (lambda: build_pairs(0), "n=0"),
        (lambda: llmnb.measure(interval=0), "interval=0"),
        (lambda: check("0.99", 1), "No exercise '0.99'"),
        (lambda: make_display("fancy"), "'fancy'"),
    ]
    for call, culprit in mistakes:
        with pytest.raises(llmnb.LlmnbError) as error:
            call()
        assert culprit in str(error.value)

"""The package's layers hold, and tasks are known only to the registry.

Layers: the training core knows no job, task or display; sibling jobs do not import each other;
a task is one file of llmnb/tasks/, and its name appears as a string nowhere else.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "llmnb"

# package -> the packages it must not import (directly, at the top or inside a function)
FORBIDDEN = {
    "core": {"display", "finetuning", "instruct", "pretraining", "tasks", "tools", "notebook", "classroom", "course"},
    "finetuning": {"instruct", "pretraining", "tasks", "notebook", "classroom"},
    "pretraining": {"finetuning", "instruct", "tasks", "notebook", "classroom"},
    "instruct": {"pretraining", "tasks", "notebook", "classroom"},
    "display": {"finetuning", "instruct", "pretraining", "tasks", "tools", "notebook", "classroom"},
    "tasks": {"notebook", "tools", "classroom", "pretraining"},
}
# (module, imported package): why it may. A result's own presentation hands off to the display.
ALLOWED = {("llmnb.core.result", "display"): "TrainResult.plot() draws the result it belongs to"}

# String constants equal to a task's name, outside that task's file: why each may stay.
NAME_ALLOWED = {
    ("llmnb/core/task.py", "classification"): "DEFAULT_TASK, what finetune does when no task is named",
    ("llmnb/instruct/masking.py", "sft"): "show_masking's default task (chapter 10)",
    ("llmnb/datasets/tense.py", "seq2seq"): "word_t5 returns a LoadedModel that names the head it was built with",
    ("llmnb/tools/train_script_template.py", "regression"): "a standalone script: it cannot import llmnb",
    ("llmnb/tools/train_chat_script_template.py", "sft"): "a standalone script: it cannot import llmnb",
    ("llmnb/tools/train_chat_script_template.py", "dpo"): "a standalone script: it cannot import llmnb",
    ("llmnb/instruct/policy_loss.py", "grpo"): "the loss_type TRL calls grpo (one of three averages), not the task",
}


def package_imports(path: Path) -> set[str]:
    """The llmnb subpackages a file imports (llmnb.core.x -> core)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else (
            [a.name for a in node.names] if isinstance(node, ast.Import) else [])
        found.update(name.split(".")[1] for name in names if name.startswith("llmnb.") and name.count(".") >= 1)
    return found


def layer_violations(root: Path) -> list[str]:
    bad = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if len(parts) < 3 or parts[1] not in FORBIDDEN:
            continue
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        for imported in sorted(package_imports(path) & FORBIDDEN[parts[1]]):
            if (module, imported) not in ALLOWED:
                bad.append(f"{module} imports llmnb.{imported}")
    return bad


def task_name_literals(root: Path) -> list[str]:
    from llmnb.core.task import _REGISTRY, task_classes

    task_classes()  # fills the registry
    owners = {key: Path(*cls.__module__.split(".")).with_suffix(".py").as_posix() for key, cls in _REGISTRY.items()}
    bad = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root.parent).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in owners:
                if relative != owners[node.value] and (relative, node.value) not in NAME_ALLOWED:
                    bad.append(f"{relative}:{node.lineno} names task {node.value!r}")
    return bad


def test_layers_hold():
    assert layer_violations(PACKAGE) == []


def test_task_names_live_only_in_their_own_files():
    assert task_name_literals(PACKAGE) == [], "ask the registry (llmnb.core.task) instead of naming a task"


def test_every_exception_is_still_needed():
    # An exception whose reason is gone hides the next real one.
    for module, imported in ALLOWED:
        path = PACKAGE.parent / Path(*module.split(".")).with_suffix(".py")
        assert imported in package_imports(path), (module, imported)
    for file, name in NAME_ALLOWED:
        tree = ast.parse((ROOT / file).read_text())
        assert any(isinstance(n, ast.Constant) and n.value == name for n in ast.walk(tree)), (file, name)


@pytest.mark.parametrize("where, line, finds", [
    ("core/engine.py", "from llmnb.display import make_display\n", "llmnb.core.engine imports llmnb.display"),
    ("finetuning/run.py", "from llmnb.instruct import chat\n", "llmnb.finetuning.run imports llmnb.instruct"),
    ("pretraining/run.py", "import llmnb.finetuning.data\n", "llmnb.pretraining.run imports llmnb.finetuning"),
    ("tools/export.py", 'DEFAULT = "dpo"\n', "llmnb/tools/export.py:"),
])
def test_the_checks_see_a_forbidden_import_and_a_stray_task_name(tmp_path, where, line, finds):
    copy = tmp_path / "llmnb"
    for path in PACKAGE.rglob("*.py"):
        target = copy / path.relative_to(PACKAGE)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    (copy / where).write_text(line + (copy / where).read_text())
    found = layer_violations(copy) + task_name_literals(copy)
    assert any(finds in problem for problem in found), found


def test_every_task_declares_what_the_rest_of_llmnb_reads():
    from dataclasses import fields

    from llmnb.core.task import get_task, task_classes

    for cls in task_classes():
        assert cls.__module__ == f"llmnb.tasks.{cls.name.replace('-', '_')}" or cls.__module__.startswith("llmnb.tasks."), cls
        assert cls.auto_class.startswith("AutoModel") and cls.result_class is not None, cls.name
        assert cls.pipeline_tag and cls.does and cls.tuned_as, f"{cls.name}: the model card's words"
        assert cls.headline in (*cls.metrics, "loss", "perplexity", "mse"), cls.name
        for f in fields(cls.Options):
            assert f.metadata.get("help"), f"{cls.name}.{f.name} has no help for %finetune?"
        for alias in cls.aliases:
            assert get_task(alias) is cls

"""The model picker, driven without a browser: set the fields, click, read the status."""
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("ipywidgets")

import ipywidgets  # noqa: E402

import llmnb  # noqa: E402
from llmnb.core import models  # noqa: E402
from llmnb.notebook.widgets import ModelPicker  # noqa: E402


def fake_shell():
    return SimpleNamespace(user_ns={})


def test_picker_builds_container_with_aliases_text_and_button():
    picker = llmnb.ModelPicker(shell=fake_shell())
    assert isinstance(picker.widget, ipywidgets.Box)
    descendants = _descendants(picker.widget)
    for part in (picker.alias, picker.path, picker.button, picker.status, picker.task, picker.num_labels, picker.var_name):
        assert part in descendants
    assert isinstance(picker.alias, ipywidgets.Dropdown)
    values = [value for _label, value in picker.alias.options]
    assert "minilm" in values and "tiny-bert" in values
    # Descriptions are shown next to the alias names.
    labels = dict((value, label) for label, value in picker.alias.options)
    assert models.ALIASES["tiny-bert"] in labels["tiny-bert"]
    assert picker.var_name.value == "lm" and picker.task.value == "classification" and picker.num_labels.value == 2
    assert not picker.num_labels.disabled


def test_click_loads_tiny_bert_into_namespace(monkeypatch):
    shell = fake_shell()
    picker = ModelPicker(shell=shell)
    picker.alias.value = "tiny-bert"
    picker.task.value = "classification"
    picker.num_labels.value = 3
    picker.var_name.value = "picked"

    real_load, calls = models.load_model, []

    def spy(*args, **kwargs):  # the real loader, noting what the UI showed while it ran
        calls.append((args, kwargs, picker.button.disabled, picker.status.value))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(models, "load_model", spy)
    picker.button.click()

    assert len(calls) == 1
    args, kwargs, disabled_while_loading, status_while_loading = calls[0]
    assert args == ("tiny-bert",) and kwargs["num_labels"] == 3
    assert disabled_while_loading and "Loading" in status_while_loading
    loaded = shell.user_ns["picked"]
    assert isinstance(loaded, models.LoadedModel)
    assert loaded.model.config.num_labels == 3
    assert picker.loaded is loaded
    assert "M parameters" in picker.status.value and str(loaded.device) in picker.status.value
    assert "cpu" in picker.status.value or str(loaded.device) != "cpu"
    assert "llmnb-error" not in picker.status.value
    assert not picker.button.disabled


def test_missing_folder_shows_llmnb_error_and_binds_nothing():
    shell = fake_shell()
    picker = ModelPicker(name="broken", shell=shell)
    picker.alias.value = "tiny-bert"  # would load fine: the typed path must win
    picker.path.value = "./no/such/folder"

    assert picker.load() is None

    assert shell.user_ns == {} and picker.loaded is None
    assert "llmnb-error" in picker.status.value
    assert "No model folder at" in picker.status.value and "./no/such/folder" in picker.status.value
    assert "Traceback" not in picker.status.value
    assert not picker.button.disabled


def test_invalid_variable_name_shows_error_without_loading(monkeypatch):
    shell = fake_shell()
    picker = ModelPicker(shell=shell)
    picker.alias.value = "tiny-bert"
    picker.var_name.value = "1abc"
    calls = []
    monkeypatch.setattr(models, "load_model", lambda *a, **k: calls.append(a))

    picker.button.click()

    assert calls == [] and shell.user_ns == {} and picker.loaded is None
    assert "llmnb-error" in picker.status.value and "1abc" in picker.status.value
    assert "not a valid Python variable name" in picker.status.value
    assert not picker.button.disabled


def test_unexpected_error_keeps_traceback_and_reenables_button(monkeypatch):
    picker = ModelPicker(shell=fake_shell())

    def broken(*args, **kwargs):
        raise RuntimeError("bug in the loader")

    monkeypatch.setattr(models, "load_model", broken)
    with pytest.raises(RuntimeError, match="bug in the loader"):
        picker.load()
    assert "llmnb-error" in picker.status.value and "RuntimeError: bug in the loader" in picker.status.value
    assert not picker.button.disabled


def test_num_labels_only_enabled_for_classification():
    picker = ModelPicker(shell=fake_shell())
    picker.task.value = "encoder"
    assert picker.num_labels.disabled
    picker.task.value = "regression"
    assert picker.num_labels.disabled
    picker.task.value = "classification"
    assert not picker.num_labels.disabled
    assert ModelPicker(task="encoder", shell=fake_shell()).num_labels.disabled


def test_picker_displays_its_container(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append(obj))
    picker = ModelPicker(shell=fake_shell())
    picker._ipython_display_()
    assert shown == [picker.widget]


def test_unknown_task_is_an_llmnb_error():
    with pytest.raises(llmnb.LlmnbError, match="task='ner'"):
        ModelPicker(task="ner", shell=fake_shell())


def test_importing_llmnb_does_not_import_ipywidgets():
    code = "import sys, llmnb; llmnb.load_model; print('ipywidgets' in sys.modules)"
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root, env=env)
    assert out.stdout.strip() == "False"


def _descendants(box):
    found = []
    for child in box.children:
        found.append(child)
        if isinstance(child, ipywidgets.Box):
            found.extend(_descendants(child))
    return found


def test_picker_offers_only_model_and_head_pairs_that_load():
    """tiny-gpt2 and tiny-t5 were offered, and failed to load with every head the picker has."""
    from llmnb.core.models import head_for
    from llmnb.notebook.widgets import heads as picker_heads

    picker = llmnb.ModelPicker(shell=fake_shell())
    offered = [value for _label, value in picker.alias.options]
    assert "tiny-gpt2" not in offered and "tiny-t5" not in offered and "tiny-bert" in offered
    heads = [value for _label, value in picker.task.options]
    assert heads == picker_heads() and heads[-1] == "encoder" and "classification" in heads
    for alias in offered:
        if alias == "minilm":
            continue  # the real model: loading it with each head is covered by test_models
        for head in heads:
            picker.alias.value, picker.task.value = alias, head
            loaded = picker.load()
            assert loaded is not None, (alias, head, picker.status.value)
            # the head asked for (AutoModelForSequenceClassification -> ...ForSequenceClassification), bound by name
            wanted = head_for(head)[0].removeprefix("AutoModel")
            assert type(loaded.model).__name__.endswith(wanted) and ("For" in type(loaded.model).__name__) == bool(wanted)
            assert (loaded.name, loaded.task) == (alias, head) and picker.shell.user_ns[picker.var_name.value] is loaded
    with pytest.raises(llmnb.ConfigError, match="not a head the picker loads"):
        llmnb.ModelPicker(task="causal-lm", shell=fake_shell())


"""A model picker for notebooks: choose a model and head, click Load, get a variable.

    import llmnb
    llmnb.ModelPicker()            # last expression in a cell: the picker shows itself

Pick an alias from the list (or type a Hub id or a local folder, which wins when not
empty), the task head and the number of labels, and the variable name (default `lm`).
Load calls `llmnb.load_model` and binds the result in the notebook, so the next cell can
use `lm` (or `model, tokenizer = lm`). Without a browser, set the fields and call
`picker.load()`; the result is also kept in `picker.loaded`.

Only core ipywidgets are used, so the picker renders in Jupyter, Colab and VS Code with
nothing more to install. This module is imported on first use of `llmnb.ModelPicker`,
so `import llmnb` does not pull in ipywidgets.
"""
from __future__ import annotations

import keyword
from html import escape

import ipywidgets as w

from llmnb.core import (
    models,  # looked up at call time (models.load_model), so there is one loader
)
from llmnb.core.task import DEFAULT_TASK, get_task, task_classes
from llmnb.errors import ConfigError, LlmnbError

# JupyterLab's theme variable adapts to light/dark themes; the fallback red reads on both.
_ERROR_STYLE = (
    "color:var(--jp-error-color1,#e0484b);border-left:3px solid currentColor;"
    "padding:2px 0 2px 8px;white-space:pre-wrap"
)
_WIDE = {"width": "640px"}
_LABEL = {"description_width": "110px"}


class ModelPicker:
    """Choose a model, its task head and a variable name, then load it with one click.

    `name`, `task` and `num_labels` are the initial values of the fields. `shell` is the
    IPython shell whose namespace receives the model (default: the running one); tests
    pass any object with a `user_ns` dict.

    Taught in chapter 0 (tutorials/00_quickstart.ipynb).
    """

    def __init__(self, name: str = "lm", task: str = DEFAULT_TASK, num_labels: int = 2, shell=None):
        if task not in heads():
            raise ConfigError(f"task={task!r} is not a head the picker loads; choose one of: {', '.join(heads())}.")
        self.shell = shell
        self.loaded = None
        # The description sits in the label; the value stays the bare alias.
        # Only aliases that load with every head offered here: tiny-gpt2 and tiny-t5 would fail on each.
        aliases = {a: about for a, about in models.ALIASES.items() if all(models.alias_loads_with(a, t) for t in heads())}
        self.alias = w.Dropdown(
            options=[(f"{alias} \N{EM DASH} {about}", alias) for alias, about in aliases.items()],
            value="minilm" if "minilm" in models.ALIASES else next(iter(models.ALIASES)),
            description="Model",
            layout=_WIDE,
            style=_LABEL,
        )
        self.path = w.Text(
            placeholder="or a Hub id (bert-base-uncased) or a folder (./my-model): used when not empty",
            description="Hub id / folder",
            layout=_WIDE,
            style=_LABEL,
        )
        self.task = w.ToggleButtons(
            options=[(HEAD_LABELS.get(head, head), head) for head in heads()],
            value=task,
            description="Task",
            style=_LABEL,
        )
        # A head needs at least two classes; the bounds stop typos before loading.
        self.num_labels = w.BoundedIntText(value=num_labels, min=2, max=100_000, description="Labels", style=_LABEL)
        self.var_name = w.Text(value=name, description="Variable", style=_LABEL)
        self.button = w.Button(description="Load", button_style="primary", icon="download")
        self.status = w.HTML()
        self.widget = w.VBox(
            [self.alias, self.path, self.task, self.num_labels, w.HBox([self.var_name, self.button]), self.status]
        )
        self.task.observe(self._sync_num_labels, names="value")
        self._sync_num_labels()
        self.button.on_click(lambda _button: self.load())

    @property
    def source(self) -> str:
        """What will be loaded: the typed Hub id/folder when given, else the chosen alias."""
        return self.path.value.strip() or self.alias.value

    def load(self):
        """Load the chosen model, bind it to the variable, and report in the status area.

        Returns the `LoadedModel`, or None when the choice cannot be loaded (the status
        area then says why).
        """
        name, source = self.var_name.value.strip(), self.source
        self.button.disabled = True
        self.status.value = f"Loading <b>{escape(source)}</b> \N{HORIZONTAL ELLIPSIS}"
        try:
            # Checked before loading so a typo does not cost a model load.
            if not name.isidentifier() or keyword.iskeyword(name):
                raise ConfigError(f"{name!r} is not a valid Python variable name: use letters, digits and _, not starting with a digit.")
            loaded = models.load_model(source, task=self.task.value, num_labels=self.num_labels.value)
        except LlmnbError as e:
            # A user mistake: the message says what to do, a traceback would only hide it.
            self._show_error(str(e))
            return None
        except BaseException as e:
            # A bug (or Ctrl-C): leave a note here, keep the traceback in the log.
            self._show_error(f"Loading failed ({type(e).__name__}: {e}); see the traceback in the log.")
            raise
        finally:
            self.button.disabled = False
        self.loaded = loaded
        shell = self.shell if self.shell is not None else _current_shell()
        if shell is not None:
            shell.user_ns[name] = loaded
            where = f"in <code>{escape(name)}</code> (unpack with <code>model, tokenizer = {escape(name)}</code>)"
        else:
            where = "in <code>picker.loaded</code> (no IPython shell to bind a variable in)"
        self.status.value = f"\N{CHECK MARK} {escape(loaded.summary())}<br>{where}"
        return loaded

    def _show_error(self, message: str) -> None:
        self.status.value = f'<div class="llmnb-error" style="{_ERROR_STYLE}">{escape(message)}</div>'

    def _sync_num_labels(self, _change=None) -> None:
        # Regression has one output and the encoder no head: the count matters only for tasks with labels.
        self.num_labels.disabled = self.task.value == models.ENCODER or not get_task(self.task.value).uses_labels

    def _ipython_display_(self):
        # Delegating to display() lets ipywidgets 7 (Colab) and 8 each render the container their own way.
        from IPython.display import display

        display(self.widget)

    def __repr__(self):
        return f"ModelPicker(source={self.source!r}, task={self.task.value!r}, name={self.var_name.value!r})"


def heads() -> list[str]:
    """The heads the picker loads: every task whose model is not a generator (those come from
    `llmnb.pretrain` or a Hub name), and the encoder without a head."""
    return [t.name for t in task_classes() if not t.generative] + [models.ENCODER]


HEAD_LABELS = {"encoder": "encoder (no head)"}


def _current_shell():
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()

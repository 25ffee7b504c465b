"""llmnb in a real JupyterLab, in headless Chromium: what a student sees, asserted on the DOM.

Each test opens its own notebook (the quickstart, or a small one written to the server
root here) in its own workspace. The quickstart runs twice, in JupyterLab and in Jupyter
Notebook 7 (the `jupyter` fixture); the rest run in JupyterLab. Training runs use tiny-bert
or a step limit to stay short; the waits are long because the CI machine has two loaded cores.
"""
from __future__ import annotations

import json
import re
import shutil
import time

import pytest

pytestmark = pytest.mark.browser

STEP = re.compile(r"step (\d+)/(\d+)")
RUN = ".llmnb-run"  # the live display's root element (llmnb/display/notebook.py)
STATUS = ".llmnb-status"  # its status badge


def _text(locator) -> str:
    """Text of the live display; "" while an update swaps the element out."""
    try:
        return locator.first.text_content(timeout=2_000) or ""
    except Exception:
        return ""


def watch_run(lab, until, timeout_s: float, every_s: float = 0.3, on_new=None) -> list[str]:
    """Poll the live display's text until `until(text)` holds; returns the distinct
    "step N/M" states seen, in order. `on_new(seen)` is called at each new state."""
    run = lab.page.locator(RUN)
    run.first.wait_for(timeout=timeout_s * 1000)  # appears once the model is loaded
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while True:
        text = _text(run)
        match = STEP.search(text)
        if match and (not seen or seen[-1] != match.group(0)):
            seen.append(match.group(0))
            if on_new is not None:
                on_new(seen)
        if until(text):
            return seen
        assert time.monotonic() < deadline, f"display never got there in {timeout_s} s; last: {text!r}"
        time.sleep(every_s)


def badge(lab) -> str:
    return (_text(lab.page.locator(STATUS)) or "").strip()


def test_quickstart_live_display(jupyter):
    """Run All on the quickstart, in JupyterLab and in Notebook 7: the display updates live, ends
    finished, leaves a PNG (still there once the cell is done) and an evaluation table, and no
    cell shows a traceback."""
    page = jupyter.page
    shutil.copy(jupyter.repo / "tutorials" / "00_quickstart.ipynb", jupyter.server.root / "quickstart.ipynb")
    assert "quickstart.ipynb" in jupyter.file_names()  # the file browser (Notebook 7: /tree)
    jupyter.open("quickstart.ipynb")  # Notebook 7: /notebooks/quickstart.ipynb
    jupyter.menu("Run", "Run All Cells")
    # The %finetune cell, input line and output: the README's two pictures (scripts/screenshots.py).
    cell = page.locator(".jp-CodeCell", has=page.locator(RUN))
    mid_run = []

    def snapshot(seen: list[str]) -> None:
        step, total = map(int, STEP.match(seen[-1]).groups())
        if not mid_run and step * 5 >= total * 3:  # 60 %: past an evaluation or two, curve well drawn
            mid_run.append(step)
            jupyter.shot("live", cell)  # the SVG chart, progress and table mid-run

    ended = lambda _text: badge(jupyter) not in ("", "running")  # noqa: E731
    seen = watch_run(jupyter, ended, timeout_s=1200, on_new=snapshot)  # ~1 min idle, 10 min on 2 loaded cores
    jupyter.wait_done(timeout_s=300)

    assert len(set(seen)) >= 3, f"the display did not update while training; states seen: {seen}"
    steps = [int(STEP.match(s).group(1)) for s in seen]
    assert steps == sorted(steps), f"steps went backwards: {seen}"
    assert badge(jupyter) == "finished", f"status badge: {badge(jupyter)!r}"
    assert jupyter.tracebacks() == []
    prompts = jupyter.cells_state()["prompts"]
    assert all(re.fullmatch(r"\[\d+\]:", p) for p in prompts), f"not every cell ran: {prompts}"

    widths = jupyter.image_widths(cell)
    assert widths and all(w > 0 for w in widths), f"final curve image missing or broken: {widths}"
    table = page.locator(f"{RUN} table")
    assert table.is_visible()
    header = table.locator("thead").text_content()
    assert "accuracy" in header and "loss" in header, header
    assert table.locator("tbody tr").count() >= 2  # one row per epoch
    # ft.history's evaluation rows, shown by the tagged "metrics" cell.
    assert "eval_accuracy" in jupyter.outputs().filter(has_text="eval_loss").first.text_content()
    # The final image stays: nothing that runs after the cell (later cells, a last redraw) takes it away.
    time.sleep(2)
    assert jupyter.image_widths(cell) == widths and badge(jupyter) == "finished"
    jupyter.shot("final", cell)


def test_model_picker_binds_variable(lab):
    """Pick tiny-bert, click Load: the status names parameters and device, and the
    next cell sees the bound variable."""
    lab.notebook(
        "picker.ipynb",
        'import llmnb\np = llmnb.ModelPicker(name="picked")\np',
        "print(type(picked).__name__)",
    )
    lab.open("picker.ipynb")
    lab.run_cell(0)
    picker = lab.code_cell(0).locator(".jupyter-widgets.widget-vbox").first
    select = picker.locator("select").first
    select.wait_for()
    labels = select.locator("option").all_text_contents()
    tiny = next(label for label in labels if label.startswith("tiny-bert"))
    select.select_option(label=tiny)
    picker.locator("button", has_text="Load").click()
    status = picker.locator(".widget-html").last
    lab.page.wait_for_function(
        "el => /parameters/.test(el.textContent) || /llmnb-error|failed/.test(el.innerHTML)",
        arg=status.element_handle(),
        timeout=180_000,
    )
    text = status.text_content()
    assert "M parameters" in text and "cpu" in text and "tiny-bert" in text, text
    assert "picked" in text, text
    lab.shot("widget", picker)

    lab.run_cell(1)
    assert lab.outputs(1).first.text_content().strip() == "LoadedModel"
    assert lab.tracebacks() == []


def test_bad_finetune_line_is_one_usage_error(lab):
    lab.notebook("bad.ipynb", "%load_ext llmnb\n%finetune minilm no_such_variable")
    lab.open("bad.ipynb")
    lab.run_cell(0)
    outputs = lab.outputs(0)
    texts = [t.strip() for t in outputs.all_text_contents()]
    lab.shot("error", lab.code_cell(0))
    assert len(texts) == 1, texts
    assert texts[0].startswith("UsageError: No variable"), texts[0]
    assert "no_such_variable" in texts[0] and "\n" not in texts[0], texts[0]
    assert "Traceback" not in texts[0]


def test_interrupt_keeps_best_weights(lab):
    """The toolbar's stop button ends a long run cleanly: `ft` is bound, with its best step."""
    lab.notebook(
        "interrupt.ipynb",
        "%load_ext llmnb\n%finetune tiny-bert reviews --eval reviews_test --epochs 200 --eval-every 10 --early-stopping none",
        "print(ft.status, ft.state.best_step)",
    )
    lab.open("interrupt.ipynb")
    lab.run_cell(0, wait=False)

    def past_first_eval(text: str) -> bool:
        match = STEP.search(text)
        return bool(match) and int(match.group(1)) >= 12

    watch_run(lab, past_first_eval, timeout_s=240)
    lab.shot("before-stop", lab.page.locator(RUN).first)
    lab.page.locator('.jp-NotebookPanel-toolbar [data-command="notebook:interrupt-kernel"]').click()
    lab.wait_done(timeout_s=120, cell=0)
    lab.page.wait_for_function(  # the forced last redraw
        f"() => /interrupted/.test(document.querySelector('{STATUS}')?.textContent || '')", timeout=30_000
    )
    assert "interrupted" in badge(lab)
    assert "interrupted at step" in _text(lab.page.locator(RUN))
    assert lab.tracebacks() == []

    lab.run_cell(1)
    printed = lab.outputs(1).first.text_content().strip()
    assert re.fullmatch(r"interrupted \d+", printed), printed
    lab.shot("after-stop", lab.code_cell(0).locator(".jp-OutputArea"))


def test_reopened_notebook_keeps_final_curve(lab):
    """Save, reload the page: the final PNG (and the last HTML state) come back from the file."""
    path = lab.notebook(
        "reopen.ipynb",
        "%load_ext llmnb\n%finetune tiny-bert reviews --eval reviews_test --max-steps 20 --eval-every 10",
    )
    lab.open("reopen.ipynb")
    lab.run_all(timeout_s=300)
    assert [w for w in lab.image_widths() if w > 0], "no curve image after the run"

    lab.code_cell(0).locator(".jp-InputPrompt").click()  # focus the notebook (command mode)
    lab.page.keyboard.press("Control+s")
    deadline = time.monotonic() + 60
    while "image/png" not in path.read_text():
        assert time.monotonic() < deadline, "Ctrl+S did not save the outputs"
        time.sleep(0.5)
    saved = json.loads(path.read_text())
    assert any("image/png" in o.get("data", {}) for o in saved["cells"][0]["outputs"])

    lab.page.reload(wait_until="domcontentloaded")
    lab.wait_for_notebook()
    image = lab.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output img").first
    image.wait_for()
    lab.page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    assert "finished" in badge(lab)
    lab.shot("reopened", lab.code_cell(0).locator(".jp-OutputArea"))

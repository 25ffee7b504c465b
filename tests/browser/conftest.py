"""A real JupyterLab and a real Jupyter Notebook 7, driven by Debian's headless Chromium through playwright.

Fixtures:
  jupyter_servers (session)  starts, once each and only when asked for, `python -m jupyterlab` or
                             `python -m notebook` on 127.0.0.1, a free port, a token and a temporary
                             root, settings and workspaces dir; all killed at the end.
  lab_server, notebook_server (session)  the two servers.
  browser     (session)  Chromium from PATH (`scripts/install_browser.sh` installs it).
  lab         (test)     a fresh page on the JupyterLab server (in its own workspace), wrapped in
                         `Jupyter` (open a notebook, run it, read outputs); a screenshot of the page
                         goes to build/browser-artifacts/<test>.png when the test ends, pass or
                         fail, and the test's kernels are shut down.
  jupyter     (test)     the same on each app in turn: a test that takes `jupyter` runs once on
                         JupyterLab and once on Notebook 7 (test ids [lab] and [notebook]).

Notebook 7 is built from JupyterLab's components: the notebook panel, cells, outputs, menus and
toolbar have the same classes, so one helper drives both. What differs: the URLs (/tree and
/notebooks/<path> instead of /lab/workspaces/<w>/tree/<path>), the settings flags, and Notebook 7
has no status bar, so "the kernel is idle" is read from the toolbar and the server instead.

Set LLMNB_BROWSER_THEME=dark to run everything in the JupyterLab Dark theme (to look
at the screenshots), LLMNB_BROWSER_HEADED=1 to watch a visible browser,
LLMNB_BROWSER_ARTIFACTS=<dir> to write the screenshots there instead of build/browser-artifacts,
LLMNB_BROWSER_PROFILE=full to run the tutorials with their full profile (what `make demo` and a
user get) instead of the short one (scripts/screenshots.py sets the last two for the README images).
Every wait is long (60 s a step, minutes for training): the CI machine has two cores.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("LLMNB_BROWSER_ARTIFACTS") or REPO / "build" / "browser-artifacts")
STEP_MS = 60_000  # one UI step (open, click, render) on a loaded two-core machine
SERVER_START_S = 120
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}
PROFILES = ("fast", "full")  # LLMNB_PROFILE of the tutorials: fast (2 epochs) or full (their defaults)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Lets the page fixtures (`lab`, `jupyter`) know in their teardown whether the test failed.
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


# --------------------------------------------------------------------------- server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(settings: Path, theme: str) -> None:
    def put(plugin: str, values: dict) -> None:
        path = settings / plugin
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))

    put("@jupyterlab/apputils-extension/notification.jupyterlab-settings", {"fetchNews": "false"})
    put("@jupyterlab/apputils-extension/themes.jupyterlab-settings", {"theme": THEMES[theme]})
    # Every cell in the DOM (no virtual scrolling), so selectors see the whole notebook.
    put("@jupyterlab/notebook-extension/tracker.jupyterlab-settings", {"windowingMode": "none"})


APPS = ("lab", "notebook")


def _app_command(app: str, settings: Path, workspaces: Path) -> list[str]:
    """How each app is started, beyond what they share (address, token, root)."""
    if app == "lab":
        return [
            sys.executable, "-m", "jupyterlab",
            f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={workspaces}",
            "--LabApp.extension_manager=readonly", "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]  # fmt: skip
    if app == "notebook":  # Notebook 7 reads JupyterLab's plugin settings from its own dirs
        return [
            sys.executable, "-m", "notebook",
            f"--JupyterNotebookApp.user_settings_dir={settings}", f"--JupyterNotebookApp.workspaces_dir={workspaces}",
        ]  # fmt: skip
    raise ValueError(f"unknown Jupyter app {app!r}; one of {APPS}")


class JupyterServer:
    def __init__(self, app: str, url: str, token: str, root: Path, process: subprocess.Popen, log: Path, theme: str):
        self.app, self.url, self.token, self.root, self.process, self.log = app, url, token, root, process, log
        self.theme = theme

    def api(self, method: str, path: str) -> object:
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


@pytest.fixture(scope="session")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("chromium not found: run scripts/install_browser.sh (apt-get install -y chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright not installed: pip install -e '.[test]'")
    return path


def _start_server(app: str, base: Path) -> JupyterServer:
    root, settings, workspaces = base / "root", base / "settings", base / "workspaces"
    for folder in (root, settings, workspaces):
        folder.mkdir()
    theme = os.environ.get("LLMNB_BROWSER_THEME", "light").strip().lower()
    if theme not in THEMES:
        raise pytest.UsageError(f"LLMNB_BROWSER_THEME={theme!r}: use one of {', '.join(THEMES)}")
    _write_settings(settings, theme)
    profile = os.environ.get("LLMNB_BROWSER_PROFILE", "fast").strip().lower()
    if profile not in PROFILES:
        raise pytest.UsageError(f"LLMNB_BROWSER_PROFILE={profile!r}: use one of {', '.join(PROFILES)}")
    port, token = _free_port(), os.urandom(16).hex()
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # the kernel should look like a user's kernel
    env.update(
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        LLMNB_PROFILE=profile,  # fast: the quickstart trains 2 epochs (full: 4)
        JUPYTER_CONFIG_DIR=str(base / "config"),  # nobody's own Jupyter/IPython config
        JUPYTER_DATA_DIR=str(base / "data"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        IPYTHONDIR=str(base / "ipython"),
        JUPYTER_PLATFORM_DIRS="1",
    )
    env.setdefault("HF_HOME", str(REPO / ".cache" / "huggingface"))
    command = [
        *_app_command(app, settings, workspaces), "--no-browser", "--allow-root",
        "--ip=127.0.0.1", f"--port={port}", f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}",
    ]  # fmt: skip
    log = base / "server.log"
    with open(log, "wb") as sink:
        # Own process group: the teardown ends the server and the kernels it started, nothing else.
        process = subprocess.Popen(
            command, cwd=root, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = JupyterServer(app, f"http://127.0.0.1:{port}", token, root, process, log, theme)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"{app} server exited with {process.returncode}:\n{server.log_tail()}")
            try:
                server.api("GET", "/api/status")
                return server
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"{app} server did not answer in {SERVER_START_S} s:\n{server.log_tail()}")
                time.sleep(0.5)
    except BaseException:
        _stop(process)
        raise


@pytest.fixture(scope="session")
def jupyter_servers(tmp_path_factory, chromium):
    """`jupyter_servers(app)`: the session's server of that app, started on first use."""
    started: dict[str, JupyterServer] = {}

    def get(app: str) -> JupyterServer:
        if app not in started:
            started[app] = _start_server(app, tmp_path_factory.mktemp(app))
        return started[app]

    try:
        yield get
    finally:
        for server in started.values():
            _stop(server.process)


@pytest.fixture(scope="session")
def lab_server(jupyter_servers) -> JupyterServer:
    return jupyter_servers("lab")


@pytest.fixture(scope="session")
def notebook_server(jupyter_servers) -> JupyterServer:
    return jupyter_servers("notebook")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)  # the server stops its kernels on SIGTERM
            process.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:  # anything of ours still alive in the group (a stuck kernel)
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if process.poll() is None:
        process.wait(timeout=10)


# --------------------------------------------------------------------------- browser
@pytest.fixture(scope="session")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            headless=not os.environ.get("LLMNB_BROWSER_HEADED"),
            args=CHROMIUM_ARGS,
        )
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def _page_on(request, browser, server: JupyterServer):
    """A fresh page on `server` wrapped in `Jupyter`; screenshot, logs on failure and kernel
    shutdown when the test ends."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, device_scale_factor=1)
    context.set_default_timeout(STEP_MS)
    page = context.new_page()
    console: list[str] = []
    page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    # test_x[notebook] -> workspace and file stem test_x-notebook
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name).strip("-")
    # build/browser-artifacts/<test>.png (light theme) or <test>-dark.png
    stem = name + ("" if server.theme == "light" else f"-{server.theme}")
    helper = Jupyter(page, server, name, ARTIFACTS / stem)
    try:
        yield helper
    finally:
        try:
            page.screenshot(path=str(ARTIFACTS / f"{stem}.png"))
        except Exception as e:  # a crashed page must not hide the test's own error
            print(f"screenshot failed: {e}")
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            print("---- browser page errors:", *console, sep="\n")
            print(f"---- {server.app} server log (tail):\n" + server.log_tail())
        context.close()
        helper.shutdown_kernels()


@pytest.fixture
def lab(request, browser, lab_server):
    with _page_on(request, browser, lab_server) as helper:
        yield helper


@pytest.fixture(params=APPS)
def jupyter(request, browser, jupyter_servers):
    """A page on the app named by the test's parameter: "lab" (JupyterLab) or "notebook" (Notebook 7)."""
    with _page_on(request, browser, jupyter_servers(request.param)) as helper:
        yield helper


# --------------------------------------------------------------------------- helpers
# JS: the state of the open notebook's code cells and kernel, read in one go. `idle`: the
# trap is that the execution indicator says idle before the kernel exists (Run All then does
# nothing), so idle also needs a kernel named in the toolbar and, where there is a status bar
# (JupyterLab), "| Idle" in it; Notebook 7 has none but shows "Kernel Connecting" meanwhile.
_CELLS_JS = """() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  if (!panel) return null;
  const cells = [...panel.querySelectorAll('.jp-Notebook .jp-CodeCell')];
  const bar = document.querySelector('#jp-main-statusbar');
  const status = bar ? bar.textContent || '' : null;
  const indicator = panel.querySelector('.jp-Notebook-ExecutionIndicator')?.getAttribute('data-status') || null;
  const kernel = (panel.querySelector('.jp-Toolbar-kernelName')?.textContent || '').trim();
  const notice = document.querySelector('.jp-NotebookKernelStatus')?.textContent || '';
  return {
    prompts: cells.map(c => (c.querySelector('.jp-InputPrompt')?.textContent || '').trim()),
    status, indicator, kernel,
    idle: indicator === 'idle' && kernel !== '' && !/No Kernel/i.test(kernel) && !/Connecting|Starting/i.test(notice)
      && (status === null || /\\|\\s*Idle/.test(status)),
  };
}"""


class Jupyter:
    """One browser page on a Jupyter server: JupyterLab (in its own workspace) or Notebook 7."""

    def __init__(self, page, server: JupyterServer, workspace: str, artifact_stem: Path):
        self.page, self.server, self.workspace, self.artifact_stem = page, server, workspace, artifact_stem
        self.current: str | None = None  # the notebook open in the page

    repo = REPO

    @property
    def app(self) -> str:
        return self.server.app

    def notebook(self, name: str, *cells: str) -> Path:
        """Write a notebook of code cells to the server root (kernelspec set: no kernel dialog)."""
        import nbformat

        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
        nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
        path = self.server.root / name
        nbformat.write(nb, str(path))
        return path

    # -- navigation
    def url(self, name: str | None = None) -> str:
        """The app's page for notebook `name` (relative to the server root), or its file browser."""
        if self.app == "notebook":  # Notebook 7: one document a page, files at /tree
            path = f"/notebooks/{name}" if name else "/tree"
        else:
            path = f"/lab/workspaces/{self.workspace}" + (f"/tree/{name}" if name else "")
        return f"{self.server.url}{path}?token={self.server.token}"

    def file_names(self) -> list[str]:
        """The names the app's file browser lists at the server root (Notebook 7: the /tree page)."""
        self.page.goto(self.url(), wait_until="domcontentloaded")
        items = self.page.locator(".jp-DirListing-content .jp-DirListing-itemText")
        items.first.wait_for()
        return [text.strip() for text in items.all_text_contents()]

    def open(self, name: str) -> None:
        """Open notebook `name` (relative to the server root) and wait for its kernel to be idle."""
        self.current = name
        self.page.goto(self.url(name), wait_until="domcontentloaded")
        self.wait_for_notebook()

    def wait_for_notebook(self) -> None:
        self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").first.wait_for(
            state="visible"
        )
        self.wait_kernel_idle()

    def wait_kernel_idle(self, timeout_ms: int = 2 * STEP_MS) -> None:
        """The trap: the execution indicator says idle before the kernel exists, and Run All
        then does nothing. Idle means the page says so (`idle` in _CELLS_JS) AND the server sees
        this page connected to the notebook's kernel."""
        self.page.wait_for_function(
            f"() => {{ const s = ({_CELLS_JS})(); return s && s.idle; }}", timeout=timeout_ms, polling=250
        )
        deadline = time.monotonic() + timeout_ms / 1000
        while not self._kernel_connected():
            assert time.monotonic() < deadline, f"no kernel connected to {self.current}: {self.server.api('GET', '/api/sessions')}"
            time.sleep(0.25)

    def _kernel_connected(self) -> bool:
        if self.current is None:
            return True
        for session in self.server.api("GET", "/api/sessions"):
            kernel = session.get("kernel") or {}
            if session.get("path") == self.current and kernel.get("connections", 0) >= 1:
                return kernel.get("execution_state") == "idle"
        return False

    # -- running
    def cells_state(self) -> dict:
        return self.page.evaluate(_CELLS_JS)

    def run_all(self, timeout_s: float = 300) -> None:
        """Run > Run All Cells, then wait until no cell is queued or running."""
        self.menu("Run", "Run All Cells")
        self.wait_done(timeout_s)

    def run_cell(self, index: int, timeout_s: float = 120, wait: bool = True) -> None:
        """Run the index-th code cell alone (click into it, Ctrl+Enter)."""
        cell = self.code_cell(index)
        cell.locator(".jp-InputArea-editor").click()
        self.page.keyboard.press("Control+Enter")  # run in place (no new cell)
        if wait:
            self.wait_done(timeout_s, cell=index)

    def wait_done(self, timeout_s: float, cell: int | None = None) -> None:
        """Until some code cell (or `cell`) has an execution count, none shows [*], and the kernel is idle."""
        which = "s.prompts" if cell is None else f"[s.prompts[{cell}]]"
        self.page.wait_for_function(
            f"""() => {{
              const s = ({_CELLS_JS})();
              if (!s) return false;
              const prompts = {which};
              return !s.prompts.some(p => p.includes('*')) && prompts.some(p => /\\[\\d+\\]/.test(p)) && s.idle;
            }}""",
            timeout=timeout_s * 1000,
            polling=500,
        )

    def menu(self, top: str, item: str) -> None:
        self.page.locator("#jp-MainMenu").get_by_text(top, exact=True).click()
        self.page.locator(".lm-Menu-content .lm-Menu-itemLabel").get_by_text(item, exact=True).click()

    # -- reading
    def code_cell(self, index: int):
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-CodeCell").nth(index)

    def outputs(self, index: int | None = None):
        scope = self.code_cell(index) if index is not None else self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
        return scope.locator(".jp-OutputArea-output")

    def stderr_texts(self) -> list[str]:
        selector = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
        return self.page.locator(selector).all_text_contents()

    def tracebacks(self) -> list[str]:
        return [text for text in self.stderr_texts() if "Traceback" in text]

    def image_widths(self, scope=None, timeout_ms: int = 30_000) -> list[int]:
        """naturalWidth of every output image (0: it did not decode), once they have all
        loaded (a just-inserted image reports 0 until the browser has decoded it)."""
        scope = scope or self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
        images = scope.locator(".jp-OutputArea-output img")
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            state = images.evaluate_all("imgs => imgs.map(i => [i.complete, i.naturalWidth])")
            if (state and all(done and width > 0 for done, width in state)) or time.monotonic() > deadline:
                return [width for _done, width in state]
            time.sleep(0.25)

    def shot(self, what: str, locator=None) -> Path:
        """Screenshot (of the page, or of one element) to build/browser-artifacts/<test>-<what>.png."""
        name, theme = self.artifact_stem.name, self.server.theme
        if name.endswith(f"-{theme}"):  # <test>-<what>-dark.png sorts next to <test>-<what>.png
            name = f"{name[: -len(theme) - 1]}-{what}-{theme}"
        else:
            name = f"{name}-{what}"
        path = self.artifact_stem.with_name(f"{name}.png")
        try:
            if locator is None:
                self.page.screenshot(path=str(path))
            else:
                locator.scroll_into_view_if_needed()
                locator.screenshot(path=str(path))
        except Exception as e:  # an artefact, never the reason a test fails
            print(f"screenshot {what} failed: {e}")
        return path

    # -- cleanup
    def shutdown_kernels(self) -> None:
        """Shut down every session, so idle kernels (about 1 GB each) do not pile up."""
        try:
            for session in self.server.api("GET", "/api/sessions"):
                self.server.api("DELETE", f"/api/sessions/{session['id']}")
        except Exception as e:
            print(f"shutting down kernels failed: {e}")

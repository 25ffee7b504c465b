"""Make (or update) the project's environment in .venv: idempotent, fast where it can be.

Run by `make setup` (and so by `make demo`, `make test`, `make lab`) with any Python >= 3.9.
Standard library only: it runs before anything is installed.

- torch: an existing torch is never replaced. If the Python that makes the venv already has
  torch (a GPU box, a conda env), the venv sees it through --system-site-packages. Otherwise,
  if pip is configured with a local folder holding a torch wheel (as on the course machines),
  that exact version is pinned; failing that, a machine without an NVIDIA GPU gets the CPU
  build (a bare `torch` would pull several GB of CUDA libraries), one with a GPU the default.
- uv installs in seconds; it ignores pip's configuration, so pip's find-links, constraint and
  index settings are read here and passed on. Without uv, or if it fails, pip does the work.
- The venv's packages are compiled to bytecode here: uv writes no .pyc files, and where
  PYTHONDONTWRITEBYTECODE is set (as on the course machines) every process, kernel and test run
  would otherwise recompile transformers & co. on import (~8 s each). Once: ~90 s; then ~10 s.
- A stamp file records what was installed; when pyproject.toml and this script are
  unchanged, set-up takes well under a second.
"""
from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
PY = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
# The extras `make test` needs: notebook 7 (lab, test) for the browser tests, tensorboard for
# report_to="tensorboard". Keep in step with pyproject.toml and binder/requirements.txt.
EXTRAS = "lab,test,peft,tensorboard"
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"


def say(message: str) -> None:
    print(f"[setup] {message}", flush=True)


def run(cmd: list[str], check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, text=True)


def has_torch(python) -> bool:
    return subprocess.run([str(python), "-c", "import torch"], capture_output=True).returncode == 0


def pip_settings() -> dict[str, list[str]]:
    """pip's find-links, constraint, index-url and extra-index-url, from its config and environment."""
    settings: dict[str, list[str]] = {"find-links": [], "constraint": [], "index-url": [], "extra-index-url": []}
    listing = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    for line in listing.splitlines():
        match = re.match(r"^[\w:.-]*?\.?([\w-]+)='(.*)'$", line.strip())
        if match and match.group(1) in settings:
            settings[match.group(1)] += match.group(2).split()
    for key in settings:
        settings[key] += os.environ.get("PIP_" + key.upper().replace("-", "_"), "").split()
    return {k: list(dict.fromkeys(v)) for k, v in settings.items()}


def local_torch_version(find_links: list[str]) -> str | None:
    """The version of a torch wheel for this Python in a local find-links folder, if any."""
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    for folder in find_links:
        folder = folder.removeprefix("file://")
        for wheel in sorted(glob.glob(os.path.join(folder, f"torch-*-{tag}-*.whl"))):
            return Path(wheel).name.split("-")[1]
    return None


def torch_requirement(settings) -> tuple[list[str], list[str]]:
    """(requirements, extra pip arguments) for torch, or nothing when torch is present."""
    if has_torch(PY):
        return [], []
    version = local_torch_version(settings["find-links"])
    if version:
        return [f"torch=={version}"], []
    if sys.platform.startswith("linux") and shutil.which("nvidia-smi") is None:
        return ["torch"], ["--extra-index-url", CPU_TORCH_INDEX]
    return ["torch"], []


def install(requirements: list[str], extra: list[str], settings) -> None:
    pip_args = list(extra)
    for link in settings["find-links"]:
        pip_args += ["--find-links", link]
    for constraint in settings["constraint"]:
        if Path(constraint).exists():
            pip_args += ["-c", constraint]
    for url in settings["index-url"]:
        pip_args += ["--index-url", url]
    for url in settings["extra-index-url"]:
        pip_args += ["--extra-index-url", url]
    uv = shutil.which("uv") or _uv_in_venv()
    if uv:
        say("installing with uv")
        result = run([uv, "pip", "install", "--python", str(PY), *pip_args, *requirements], check=False)
        if result.returncode == 0:
            return
        say("uv failed; falling back to pip")
    # pip reads its own configuration; only the arguments we added are passed on.
    run([str(PY), "-m", "pip", "install", "--quiet", *extra, *requirements])


def compile_bytecode() -> None:
    """Write the .pyc files of everything in the venv's site-packages (up-to-date ones are kept).
    Some files there are never imported and do not compile (torch's tests for newer Pythons):
    compileall reports them and goes on, so its exit status and output are ignored."""
    site = subprocess.run(
        [str(PY), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True
    ).stdout.strip()
    if site:
        say("compiling the installed packages to bytecode")
        subprocess.run([str(PY), "-m", "compileall", "-q", "-j", "0", site], capture_output=True)


def _uv_in_venv() -> str | None:
    candidate = VENV / "bin" / "uv"
    if not candidate.exists():
        if run([str(PY), "-m", "pip", "install", "--quiet", "uv"], check=False).returncode != 0:
            return None
    return str(candidate) if candidate.exists() else None


def main() -> int:
    if sys.version_info < (3, 9):
        say(f"Python {sys.version.split()[0]} is too old: llmnb needs 3.9 or newer.")
        return 1
    if not PY.exists():
        share = has_torch(sys.executable)
        say(f"creating .venv{' (sharing the torch already installed)' if share else ''}")
        venv.EnvBuilder(with_pip=True, system_site_packages=share).create(VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + Path(__file__).read_bytes()).hexdigest()[:16]
    stamp = VENV / f".llmnb-setup-{digest}"
    if stamp.exists():
        say("environment up to date")
        return 0
    settings = pip_settings()
    torch_reqs, torch_args = torch_requirement(settings)
    install([*torch_reqs, "-e", f"{ROOT}[{EXTRAS}]"], torch_args, settings)
    compile_bytecode()
    check = subprocess.run([str(PY), "-c", "import torch, transformers, llmnb; print(torch.__version__)"], capture_output=True, text=True)
    if check.returncode != 0:
        say("the environment does not import llmnb:\n" + check.stderr)
        return 1
    for old in VENV.glob(".llmnb-setup-*"):
        old.unlink()
    stamp.touch()
    say(f"ready: torch {check.stdout.strip()} in {VENV}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

# The README's commands. Each one sets up .venv first (idempotent; seconds when up to date).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# Offline by default: the bundled model and data need no network. Unset to reach the Hub.
export HF_HUB_OFFLINE ?= 1
export HF_HOME ?= $(CURDIR)/.cache/huggingface
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup demo lab test test-fast test-browser clean

setup:
	@$(PYTHON) scripts/setup_env.py

demo: setup
	@$(PY) scripts/demo.py

lab: setup
	$(VENV)/bin/jupyter lab tutorials/

# -n auto: one pytest-xdist worker per core, as many as the memory holds (tests/conftest.py);
# the browser tests share one worker and one JupyterLab. --durations: the next slow test is visible.
test: setup
	@sh scripts/install_browser.sh
	@sh scripts/install_bubblewrap.sh
	MPLBACKEND=Agg $(PY) -m pytest -q -n auto --dist loadgroup --durations=20

# Only the JupyterLab-in-Chromium tests (tests/browser).
test-browser: setup
	@sh scripts/install_browser.sh
	$(PY) -m pytest -q tests/browser

# Everything but the slow tests (over ~20 s each: MiniLM fine-tunes, subprocess jobs), notebooks and browser:
# under 5 minutes on 2 cores.
test-fast: setup
	@sh scripts/install_bubblewrap.sh
	MPLBACKEND=Agg $(PY) -m pytest -q -n auto -m "not slow and not notebook and not browser" --durations=10

clean:
	rm -rf build .cache .pytest_cache

"""Every tutorial keeps the course's rules (../shared/COURSE.md), checked without running it:
a bilingual title, its own Colab badge, an install cell that acts only on Colab, a `parameters`
cell reading LLMNB_PROFILE, and closing self-checks. tests/test_notebooks.py runs them."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "tutorials").glob("*.ipynb"))
CHAPTERS = ["00_quickstart", "01_background", "02_core_concepts", "03_algorithm", "04_math", "05_project",
            "06_applications", "07_tools", "08_trends_challenges", "09_faq", "10_assistant"]


def cells(path):
    return [(c["cell_type"], "".join(c["source"]), c.get("metadata", {})) for c in json.loads(path.read_text())["cells"]]


def test_binder_environment_is_complete():
    binder = ROOT / "binder"
    requirements = (binder / "requirements.txt").read_text()
    assert re.search(r"^torch==[\d.]+\+cpu$", requirements, re.M), "Binder must get the CPU build of torch"
    assert re.match(r"python-3\.\d+$", (binder / "runtime.txt").read_text().strip())
    post_build = (binder / "postBuild").read_text()
    assert "set -e" in post_build and "pip install" in post_build
    assert (binder / "postBuild").stat().st_mode & 0o111, "postBuild must be executable"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_tutorial_follows_the_course_rules(path):
    content = cells(path)
    first_markdown = next(text for kind, text, _ in content if kind == "markdown")
    title = first_markdown.splitlines()[0]
    assert title.startswith("# Chapter ") and re.search(r"[\u4e00-\u9fff]", title), f"bilingual title: {title}"
    assert f"colab.research.google.com/github/llmnb/llmnb/blob/main/tutorials/{path.name})" in first_markdown
    code = [text for kind, text, _ in content if kind == "code"]
    assert 'if "google.colab" in sys.modules' in code[0], "the first code cell installs llmnb on Colab only"
    parameters = [text for kind, text, meta in content if "parameters" in meta.get("tags", [])]
    assert parameters and "LLMNB_PROFILE" in parameters[0], "a `parameters` cell reads LLMNB_PROFILE"
    checks = sum(len(re.findall(r"^check\(", text, re.M)) for text in code)
    assert 3 <= checks <= 6, f"{checks} self-check calls; the course asks for 3 to 6"
    assert any("progress(" in text for text in code[-2:])


def test_every_chapter_of_the_course_has_a_notebook():
    assert [p.stem for p in NOTEBOOKS] == CHAPTERS

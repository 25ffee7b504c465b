"""The docs say what the code does."""
import importlib.util
import re
from pathlib import Path

from llmnb.config import options_markdown

ROOT = Path(__file__).resolve().parent.parent


def readme_table(name):
    readme = (ROOT / "README.md").read_text()
    return re.search(rf"<!-- {name} -->\n(.*?)\n<!-- /{name} -->", readme, re.S).group(1)


def test_readme_options_table_matches_the_config():
    assert readme_table("options-table") == options_markdown(), "run: .venv/bin/python scripts/update_readme.py"


def test_readme_tutorials_table_lists_every_notebook_with_a_colab_badge():
    spec = importlib.util.spec_from_file_location("update_readme", ROOT / "scripts" / "update_readme.py")
    update_readme = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(update_readme)
    table = readme_table("tutorials-table")
    assert table == update_readme.tutorials_markdown(), "run: .venv/bin/python scripts/update_readme.py"
    for path in (ROOT / "tutorials").glob("*.ipynb"):
        assert f"blob/main/tutorials/{path.name})" in table
    assert "mybinder.org/badge_logo.svg" in (ROOT / "README.md").read_text()


def test_readme_opens_with_the_two_commands():
    head = (ROOT / "README.md").read_text().split("\n## ")[0]
    assert "make demo" in head and "make test" in head
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo: setup", makefile, re.M) and re.search(r"^test: setup", makefile, re.M)

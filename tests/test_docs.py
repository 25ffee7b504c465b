"""The docs say what the code does."""
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def update_readme():
    spec = importlib.util.spec_from_file_location("update_readme", ROOT / "scripts" / "update_readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def readme_table(name):
    readme = (ROOT / "README.md").read_text()
    return re.search(rf"<!-- {name} -->\n(.*?)\n<!-- /{name} -->", readme, re.S).group(1)


@pytest.mark.parametrize("table", ["options-table", "pretrain-options-table", "layout-table"])
def test_readme_generated_tables_are_current(table):
    assert readme_table(table) == update_readme().TABLES[table](), "run: .venv/bin/python scripts/update_readme.py"


def test_layout_table_names_every_module():
    table = readme_table("layout-table")
    for path in (ROOT / "llmnb").rglob("*.py"):
        relative = path.relative_to(ROOT).as_posix()
        if "/metrics/" in relative or path.name == "__init__.py" and path.parent.name != "llmnb":
            continue
        assert f"`{relative}`" in table, relative


def test_readme_tutorials_table_lists_every_notebook_with_a_colab_badge():
    table = readme_table("tutorials-table")
    assert table == update_readme().tutorials_markdown(), "run: .venv/bin/python scripts/update_readme.py"
    for path in (ROOT / "tutorials").glob("*.ipynb"):
        assert f"blob/main/tutorials/{path.name})" in table
    assert "mybinder.org/badge_logo.svg" in (ROOT / "README.md").read_text()


def test_readme_opens_with_the_two_commands():
    head = (ROOT / "README.md").read_text().split("\n## ")[0]
    assert "make demo" in head and "make test" in head
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo: setup", makefile, re.M) and re.search(r"^test: setup", makefile, re.M)

"""The docs say what the code does."""
import re
from pathlib import Path

from llmnb.config import options_markdown

ROOT = Path(__file__).resolve().parent.parent


def test_readme_options_table_matches_the_config():
    readme = (ROOT / "README.md").read_text()
    table = re.search(r"<!-- options-table -->\n(.*?)\n<!-- /options-table -->", readme, re.S).group(1)
    assert table == options_markdown(), "run: .venv/bin/python scripts/update_readme.py"


def test_readme_opens_with_the_two_commands():
    head = (ROOT / "README.md").read_text().split("\n## ")[0]
    assert "make demo" in head and "make test" in head
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo: setup", makefile, re.M) and re.search(r"^test: setup", makefile, re.M)

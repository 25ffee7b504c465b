"""Regenerate the options table in README.md from FineTuneConfig (tests/test_docs.py checks it)."""
import re
from pathlib import Path

from llmnb.config import options_markdown

README = Path(__file__).resolve().parent.parent / "README.md"
PATTERN = re.compile(r"(<!-- options-table -->\n).*?(\n<!-- /options-table -->)", re.S)

text = README.read_text()
README.write_text(PATTERN.sub(lambda m: m.group(1) + options_markdown() + m.group(2), text))
print("README options table updated")

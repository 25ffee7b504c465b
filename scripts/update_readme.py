"""Regenerate README.md's generated tables (tests/test_docs.py checks they are current):

* the options table, from FineTuneConfig;
* the tutorials table, from each notebook's title (its first heading) and file name.
"""
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
COLAB = "https://colab.research.google.com/github/llmnb/llmnb/blob/main/tutorials/{name}"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"


def section(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- {name} -->\n).*?(\n<!-- /{name} -->)", re.S)


def notebook_title(path: Path) -> str:
    """The first markdown heading of a notebook, without the '#'."""
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    raise ValueError(f"{path.name} has no '# Title' heading")


def tutorials_markdown() -> str:
    rows = ["| notebook | chapter | |", "|---|---|---|"]
    for path in sorted((ROOT / "tutorials").glob("*.ipynb")):
        badge = f"[![Open In Colab]({COLAB_BADGE})]({COLAB.format(name=path.name)})"
        rows.append(f"| [{path.stem}](tutorials/{path.name}) | {notebook_title(path)} | {badge} |")
    return "\n".join(rows)


def options_markdown() -> str:
    from llmnb.config import options_markdown

    return options_markdown()


TABLES = {"options-table": options_markdown, "tutorials-table": tutorials_markdown}

if __name__ == "__main__":
    text = README.read_text()
    for name, make in TABLES.items():
        text = section(name).sub(lambda m: m.group(1) + make() + m.group(2), text)
    README.write_text(text)
    print("README tables updated:", ", ".join(TABLES))

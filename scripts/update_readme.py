"""Regenerate README.md's generated tables (tests/test_docs.py checks they are current):

* the options tables, from FineTuneConfig and PretrainConfig;
* the tutorials table, from each notebook's title (its first heading) and file name;
* the layout table, from each module's docstring (its first paragraph).
"""
import ast
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
    from llmnb.finetuning.config import FineTuneConfig

    return FineTuneConfig.options_markdown("%finetune", "llmnb.finetune")


def pretrain_options_markdown() -> str:
    from llmnb.pretraining.config import PretrainConfig

    return PretrainConfig.options_markdown("%pretrain", "llmnb.pretrain")


# The package's areas, in the order a reader meets them; modules inside each are listed by name.
AREAS = ("core", "finetuning", "instruct", "tasks", "pretraining", "display", "notebook", "tools", "course", "classroom", "datasets", "metrics")
TOP_MODULES = ("__init__", "errors", "check", "version")


def summary(path: Path) -> str:
    """The first paragraph of a module's docstring, on one line."""
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    return " ".join(doc.split("\n\n")[0].split()).replace("|", "\\|")


def layout_markdown() -> str:
    package = ROOT / "llmnb"
    rows = ["| path | what it is for |", "|---|---|"]
    for name in TOP_MODULES:
        rows.append(f"| `llmnb/{name}.py` | {summary(package / f'{name}.py')} |")
    for area in AREAS:
        rows.append(f"| **`llmnb/{area}/`** | {summary(package / area / '__init__.py')} |")
        if area == "metrics":
            continue  # each metric folder is an `evaluate` module that must stand alone
        for module in sorted((package / area).glob("*.py")):
            if module.name != "__init__.py":
                rows.append(f"| `llmnb/{area}/{module.name}` | {summary(module)} |")
    return "\n".join(rows)


TABLES = {
    "options-table": options_markdown,
    "pretrain-options-table": pretrain_options_markdown,
    "tutorials-table": tutorials_markdown,
    "layout-table": layout_markdown,
}

if __name__ == "__main__":
    text = README.read_text()
    for name, make in TABLES.items():
        text = section(name).sub(lambda m: m.group(1) + make() + m.group(2), text)
    README.write_text(text)
    print("README tables updated:", ", ".join(TABLES))

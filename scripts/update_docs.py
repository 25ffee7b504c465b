"""Regenerate docs/errors.md from the cases in tests/test_bad_inputs.py (a test checks they match)."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from test_bad_inputs import CASES  # noqa: E402

HEAD = """# What llmnb says when the input is wrong

Every mistake below is caught before training starts. In a notebook it is one line
(`UsageError`, no traceback); from Python it is an `llmnb.LlmnbError` (a `ValueError`) with the
same words. Your DataFrames and files are left as they were. Each row is a test in
`tests/test_bad_inputs.py` (this file is generated from it by `scripts/update_docs.py`).

| mistake | example | what you see (excerpt) |
|---|---|---|
"""
FOOT = """
Inputs that just work, with at most a one-line notice: string labels (they come back as strings
from `predict`), rows with a missing text or label (dropped, and the count is printed), very long
texts (truncated to `max_length` tokens), latin-1/cp1252 CSV files (read as such, with a notice),
lists of dicts, dicts of lists, `datasets.Dataset`s.
"""
rows = "".join(f"| {what} | `%finetune {line}` | {message} |\n" for what, line, message in CASES)
(ROOT / "docs" / "errors.md").write_text(HEAD + rows + FOOT)
print("docs/errors.md updated")

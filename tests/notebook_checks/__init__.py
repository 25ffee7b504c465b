"""What each tutorial must show beyond running clean: tests/notebook_checks/<notebook stem>.py
defines `check(nb, workdir, values)`, called by tests/test_notebooks.py after the notebook ran;
`values` holds what its `VALUES` (name -> expression) evaluated to in the notebook's kernel."""
import re


def printed(nb):
    """Everything the executed notebook printed or displayed as plain text."""
    return "\n".join(o.get("text", "") + o.get("data", {}).get("text/plain", "")
                     for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", []))


def assert_exercises_correct(nb, *ids):
    """The chapter's "your turn" exercises are exactly `ids`, and with their solutions in place each
    check printed "✓ Correct" (so each check accepts a right answer)."""
    found = [m[1] for cell in nb.cells if cell.cell_type == "markdown"
             for m in [re.match(r"### Your turn \((\d+[a-z]?\.e\d+)\)", cell.source)] if m]
    assert found == list(ids), (found, ids)
    text = printed(nb)
    missing = [i for i in ids if f"[{i}] ✓ Correct" not in text]
    assert not missing, f"exercises not marked correct: {missing}"

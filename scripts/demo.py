"""`make demo`: run the quickstart notebook headless and offline, and show what it produced.

Executes tutorials/00_quickstart.ipynb in a fresh kernel (the project's .venv), writes the
executed notebook and the final training curve to build/demo/, and prints the final metrics.
Exits non-zero if any cell fails.
"""
import base64
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "tutorials" / "00_quickstart.ipynb"
OUT = ROOT / "build" / "demo"


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    OUT.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    print(f"[demo] running {NOTEBOOK.relative_to(ROOT)} offline (profile {os.environ.get('LLMNB_PROFILE', 'full')}) ...", flush=True)
    start = time.perf_counter()
    client = NotebookClient(nb, timeout=1200, kernel_name="python3", resources={"metadata": {"path": str(OUT)}})
    try:
        client.execute()
    except CellExecutionError as error:
        nbformat.write(nb, OUT / NOTEBOOK.name)
        print(f"[demo] a cell failed; the partly executed notebook is in {OUT / NOTEBOOK.name}\n{error}", file=sys.stderr)
        return 1
    nbformat.write(nb, OUT / NOTEBOOK.name)
    print(f"[demo] executed in {time.perf_counter() - start:.0f} s -> {(OUT / NOTEBOOK.name).relative_to(ROOT)}")

    curve = last_png(nb)
    if curve:
        (OUT / "training_curve.png").write_bytes(curve)
        print(f"[demo] training curve -> {(OUT / 'training_curve.png').relative_to(ROOT)}")
    for cell in nb.cells:
        if "metrics" in cell.get("metadata", {}).get("tags", []):
            for output in cell.get("outputs", []):
                if output.get("name") == "stdout":
                    print("[demo] final metrics on the test sentences:", output["text"].strip())
    report_disk()
    return 0


def report_disk() -> None:
    """What the run left on disk (the notebook itself keeps only its three newest runs)."""
    sys.path.insert(0, str(ROOT))
    from llmnb.core.run_folders import folder_bytes, run_folders

    runs = run_folders(OUT / "runs")
    trained = [r for r in runs if r.name.startswith("minilm-")]
    if trained:
        print(f"[demo] the %finetune run left {folder_bytes(trained[-1]) / 1e6:.0f} MB in {trained[-1].relative_to(ROOT)} "
              "(its final model, nothing else)")
    if runs:
        print(f"[demo] {OUT.relative_to(ROOT)}/runs holds {sum(map(folder_bytes, runs)) / 1e6:.0f} MB in {len(runs)} folder(s), "
              "with the copy that the notebook's section 7 saves; the notebook keeps the three newest")


def last_png(nb) -> bytes | None:
    found = None
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                found = base64.b64decode(data["image/png"])
    return found


if __name__ == "__main__":
    sys.exit(main())

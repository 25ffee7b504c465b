"""Regenerate the README's two pictures of a `%finetune` cell from a real JupyterLab.

    .venv/bin/python scripts/screenshots.py              # run the browser test, then shrink its shots
    .venv/bin/python scripts/screenshots.py --shots DIR  # only shrink shots already taken (into DIR)

It runs one browser test, tests/browser/test_lab.py::test_quickstart_live_display[lab] (headless
Chromium, `scripts/install_browser.sh` installs it), with the quickstart's full profile (what
`make demo` and a user get) and the light theme. That test screenshots the `%finetune` cell, input
line and output, at 60 % of the training steps ("live": curve, progress line and table) and once it
has finished ("final"). Each shot is then made small for the README: cropped to the cell (the white
margin trimmed), scaled to at most 900 px wide and saved as an optimised PNG, as a palette of 256
colours or fewer, whichever is first under 150 KB. tests/test_readme_images.py checks the result.

Takes 3 to 6 minutes (two loaded cores: longer).
"""
from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageChops

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"
TEST = "tests/browser/test_lab.py::test_quickstart_live_display[lab]"
# the test's shot name -> the README's image
PICTURES = {"live": "finetune-live.png", "final": "finetune-done.png"}
MAX_WIDTH = 900
MAX_BYTES = 150 * 1024
MARGIN = 8  # px of background kept around the trimmed cell
COLOURS = (256, 128, 64)  # palette sizes tried in turn, most faithful first


def take_shots(folder: Path) -> None:
    """Run the browser test with its screenshots written to `folder`."""
    env = dict(os.environ)
    env.update(
        LLMNB_BROWSER_ARTIFACTS=str(folder),
        LLMNB_BROWSER_PROFILE="full",
        LLMNB_BROWSER_THEME="light",
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
    )
    env.setdefault("HF_HOME", str(ROOT / ".cache" / "huggingface"))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST]
    print("[screenshots]", " ".join(command), flush=True)
    done = subprocess.run(command, cwd=ROOT, env=env)
    if done.returncode != 0:
        sys.exit(f"[screenshots] the browser test failed (exit {done.returncode}); README images left as they were")


def trim(image: Image.Image, margin: int = MARGIN) -> Image.Image:
    """Crop away the uniform background around the content (the colour of the top-left pixel)."""
    background = Image.new(image.mode, image.size, image.getpixel((0, 0)))
    difference = ImageChops.difference(image, background).convert("L").point(lambda v: 255 if v > 8 else 0)
    box = difference.getbbox()
    if box is None:
        return image
    left, top, right, bottom = box
    return image.crop(
        (max(left - margin, 0), max(top - margin, 0), min(right + margin, image.width), min(bottom + margin, image.height))
    )


def shrink(image: Image.Image, max_width: int = MAX_WIDTH) -> Image.Image:
    if image.width <= max_width:
        return image
    height = round(image.height * max_width / image.width)
    return image.resize((max_width, height), Image.Resampling.LANCZOS)


def encode(image: Image.Image, max_bytes: int = MAX_BYTES) -> bytes:
    """The most faithful optimised PNG under `max_bytes`: a 256-colour palette (a UI screenshot
    has few colours, and text stays crisp without dithering), then fewer colours."""
    for colours in COLOURS:
        palette = image.quantize(colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        buffer = io.BytesIO()
        palette.save(buffer, format="PNG", optimize=True)
        if buffer.tell() <= max_bytes:
            return buffer.getvalue()
    raise SystemExit(f"[screenshots] cannot get {image.size} under {max_bytes // 1024} KB even with {COLOURS[-1]} colours")


def make_small(shot: Path, target: Path) -> None:
    image = shrink(trim(Image.open(shot).convert("RGB")))
    data = encode(image)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    print(f"[screenshots] {target.relative_to(ROOT)}: {image.width}x{image.height} px, {len(data) / 1024:.0f} KB")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shots", type=Path, help="use the shots already in this folder; do not run the browser")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="llmnb-shots-") as scratch:
        folder = args.shots
        if folder is None:
            folder = Path(scratch)
            take_shots(folder)
        stem = TEST.split("::")[1].replace("[", "-").rstrip("]")  # test_quickstart_live_display-lab
        shots = {what: folder / f"{stem}-{what}.png" for what in PICTURES}
        missing = [str(path) for path in shots.values() if not path.is_file()]
        if missing:
            sys.exit(f"[screenshots] no shot: {', '.join(missing)}")
        for what, name in PICTURES.items():
            make_small(shots[what], IMAGES / name)


if __name__ == "__main__":
    main()

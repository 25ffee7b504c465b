"""The README's two pictures of a %finetune cell (scripts/screenshots.py makes them): referenced at
the top of the README with alt text, present, whole PNGs, small."""
import re
import struct
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ("docs/images/finetune-live.png", "docs/images/finetune-done.png")
MAX_BYTES = 150 * 1024
REGENERATE = "regenerate with: .venv/bin/python scripts/screenshots.py"


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a complete, uncorrupted PNG; AssertionError otherwise. Every chunk's CRC
    is checked and the image data must decompress to exactly the rows IHDR announces."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    chunks, at = [], 8
    while at < len(data):
        assert at + 12 <= len(data), "truncated chunk"
        (length,) = struct.unpack(">I", data[at : at + 4])
        assert at + 12 + length <= len(data), "truncated chunk"
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert len(body) == length and zlib.crc32(kind + body) == crc, f"bad {kind!r} chunk"
        chunks.append((kind, body))
        at += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND", [k for k, _ in chunks]
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
    pixels = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    if interlace == 0:  # one filter byte per row, then the row's bits
        assert len(pixels) == height * (1 + (width * channels * depth + 7) // 8), "image data does not match IHDR"
    return width, height


def test_png_size_rejects_a_damaged_file():
    data = (ROOT / IMAGES[0]).read_bytes()
    assert png_size(data)
    with pytest.raises(AssertionError):
        png_size(data[: len(data) // 2])
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 0xFF
    with pytest.raises((AssertionError, zlib.error)):
        png_size(bytes(damaged))


@pytest.mark.parametrize("path", IMAGES)
def test_readme_image_is_a_small_valid_png(path):
    file = ROOT / path
    assert file.is_file(), f"{path} is missing; {REGENERATE}"
    data = file.read_bytes()
    assert len(data) <= MAX_BYTES, f"{path} is {len(data) / 1024:.0f} KB (at most {MAX_BYTES // 1024}); {REGENERATE}"
    width, height = png_size(data)
    assert 600 <= width <= 1000 and 200 <= height <= 1000, f"{path} is {width}x{height} px"


def test_readme_shows_both_images_after_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    head = readme.split("\n## ")[0]  # before the first section
    commands = head.index("make test")
    for path in IMAGES:
        match = re.search(rf"!\[([^\]]+)\]\({re.escape(path)}\)", head)
        assert match, f"the README's top does not show {path} with alt text"
        assert match.start() > commands, f"{path} comes before the two commands"
        assert len(match.group(1).split()) >= 5, f"alt text of {path} says too little: {match.group(1)!r}"

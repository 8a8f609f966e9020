"""Contact sheets: a few frames of one video's output as one small JPEG strip.

Used by report.html (embedded) and by the web service (served per video).  The output
is a folder of images, or a tar (``--pack tar``), read in place without unpacking.
"""

from __future__ import annotations

import csv
import io
import os

from PIL import Image

from .tar_sink import is_tar_output, read_members, tar_images

SHEET_FRAMES = 4
THUMB_WIDTH = 128


def _spread(names: list[str], n: int) -> list[str]:
    if len(names) > n:
        step = (len(names) - 1) / (n - 1) if n > 1 else 0
        names = [names[round(i * step)] for i in range(n)]
    return names


def sheet_frames(folder: str, n: int = SHEET_FRAMES) -> list[str]:
    """Paths of ``n`` frames spread evenly over a finished video folder (first to last)."""
    names: list[str] = []
    try:
        with open(os.path.join(folder, "frames.csv"), encoding="utf-8", newline="") as f:
            names = [row["file"] for row in csv.DictReader(f)]
    except (OSError, KeyError, ValueError):
        try:
            names = sorted(e for e in os.listdir(folder) if e.endswith((".jpg", ".png")))
        except OSError:
            return []
    return [os.path.join(folder, name) for name in _spread(names, n)]


def _images(output: str, n: int) -> list:
    """Openable images (paths or in-memory files) of ``n`` frames of one video's output."""
    if is_tar_output(output):
        names = _spread(tar_images(output), n)
        members = read_members(output, names)
        return [io.BytesIO(members[name]) for name in names if name in members]
    return sheet_frames(output, n)


def contact_sheet(output: str, n: int = SHEET_FRAMES, width: int = THUMB_WIDTH) -> bytes | None:
    """A JPEG strip of a few frames of one video (its folder or its tar), or None if it has none."""
    thumbs = []
    for source in _images(output, n):
        try:
            with Image.open(source) as im:
                im.draft("RGB", (width, 1))  # JPEG: decode at the smallest scale still `width` wide
                im = im.convert("RGB")
                im.thumbnail((width, width * 3))
                thumbs.append(im.copy())
        except (OSError, Image.DecompressionBombError):  # a damaged or a huge image: not in the sheet
            continue
    if not thumbs:
        return None
    gap = 2
    height = max(t.height for t in thumbs)
    sheet = Image.new("RGB", (sum(t.width for t in thumbs) + gap * (len(thumbs) - 1), height), "white")
    x = 0
    for t in thumbs:
        sheet.paste(t, (x, 0))
        x += t.width + gap
    buf = io.BytesIO()
    sheet.save(buf, format="JPEG", quality=80)
    return buf.getvalue()

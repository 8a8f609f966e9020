"""Image writers: one small class per output format, chosen by name."""

from __future__ import annotations

import numpy as np
from PIL import Image

FORMATS = ("jpg", "png")


class ImageWriter:
    extension = ""

    def save(self, frame: np.ndarray, path: str) -> None:
        raise NotImplementedError


class JpegWriter(ImageWriter):
    extension = "jpg"

    def __init__(self, quality: int = 90) -> None:
        self.quality = quality

    def save(self, frame: np.ndarray, path: str) -> None:
        Image.fromarray(frame).save(path, format="JPEG", quality=self.quality)


class PngWriter(ImageWriter):
    extension = "png"

    def save(self, frame: np.ndarray, path: str) -> None:
        # Level 1: PNG is chosen for losslessness, not size; higher levels cost several x time.
        Image.fromarray(frame).save(path, format="PNG", compress_level=1)


def make_writer(fmt: str, quality: int = 90) -> ImageWriter:
    if fmt == "jpg":
        return JpegWriter(quality)
    if fmt == "png":
        return PngWriter()
    raise ValueError(f"unknown image format {fmt!r}; choose one of {', '.join(FORMATS)}")

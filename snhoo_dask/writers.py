"""Image encoders: one small class per output format, chosen by name.

An encoder turns one decoded frame into the bytes of one image file; where those bytes
go (a folder, a tar shard) is the sink's business (``sinks``).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

FORMATS = ("jpg", "png")


class ImageEncoder:
    extension = ""

    def encode(self, frame: np.ndarray) -> bytes:
        raise NotImplementedError


class JpegEncoder(ImageEncoder):
    extension = "jpg"

    def __init__(self, quality: int = 90) -> None:
        self.quality = quality

    def encode(self, frame: np.ndarray) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, format="JPEG", quality=self.quality)
        return buf.getvalue()


class PngEncoder(ImageEncoder):
    extension = "png"

    def encode(self, frame: np.ndarray) -> bytes:
        buf = io.BytesIO()
        # Level 1: PNG is chosen for losslessness, not size; higher levels cost several x time.
        Image.fromarray(frame).save(buf, format="PNG", compress_level=1)
        return buf.getvalue()


def make_encoder(fmt: str, quality: int = 90) -> ImageEncoder:
    if fmt == "jpg":
        return JpegEncoder(quality)
    if fmt == "png":
        return PngEncoder()
    raise ValueError(f"unknown image format {fmt!r}; choose one of {', '.join(FORMATS)}")

"""Image encoders: one small class per output format, chosen by name.

An encoder turns one decoded frame into the bytes of one image file; where those bytes
go (a folder, a tar shard) is the sink's business (``formats``).

A frame is either an RGB array (height x width x 3, uint8) or a ``YuvFrame``: the
full-range YUV 4:2:0 planes ffmpeg's decoder produced, which is what the reader hands
over for ordinary 8-bit 4:2:0 video.  Every encoder accepts both.  JPEG is YCbCr 4:2:0
inside, so the JPEG encoder compresses the planes as they are (libjpeg-turbo through
simplejpeg): no YUV->RGB conversion in ffmpeg, half the bytes through the pipe, and no
RGB->YCbCr conversion in the encoder.  Encoders that need RGB call ``as_rgb``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import simplejpeg
from PIL import Image

FORMATS = ("jpg", "png")


@dataclass(frozen=True)
class YuvFrame:
    """One picture as full-range (JPEG-range) Y, U and V planes; U and V at half size."""

    y: np.ndarray  # height x width
    u: np.ndarray  # ceil(height/2) x ceil(width/2)
    v: np.ndarray

    def __len__(self) -> int:
        return self.y.shape[0]  # rows, like an array's len() (scikit-video tests frames with it)

    @property
    def width(self) -> int:
        return self.y.shape[1]

    @property
    def height(self) -> int:
        return self.y.shape[0]

    def to_rgb(self) -> np.ndarray:
        """The same picture as an RGB array (BT.601 full range, as JPEG decoders read it)."""
        h, w = self.y.shape
        u = self.u.repeat(2, 0).repeat(2, 1)[:h, :w]
        v = self.v.repeat(2, 0).repeat(2, 1)[:h, :w]
        ycbcr = np.dstack((self.y, u, v))
        return np.asarray(Image.fromarray(ycbcr, "YCbCr").convert("RGB"))


def as_rgb(frame: np.ndarray | YuvFrame) -> np.ndarray:
    """An RGB array for encoders (and dataset features) that work on pixels."""
    return frame.to_rgb() if isinstance(frame, YuvFrame) else frame


class ImageEncoder:
    extension = ""

    def encode(self, frame: np.ndarray | YuvFrame) -> bytes:
        raise NotImplementedError


class JpegEncoder(ImageEncoder):
    """Baseline JPEG, 4:2:0, accurate DCT: the same settings Pillow uses for a quality."""

    extension = "jpg"

    def __init__(self, quality: int) -> None:
        self.quality = quality

    def encode(self, frame: np.ndarray | YuvFrame) -> bytes:
        if isinstance(frame, YuvFrame):
            return simplejpeg.encode_jpeg_yuv_planes(
                frame.y, frame.u, frame.v, quality=self.quality, fastdct=False
            )
        return simplejpeg.encode_jpeg(
            np.ascontiguousarray(frame),
            quality=self.quality,
            colorspace="RGB",
            colorsubsampling="420",
            fastdct=False,
        )


class PngEncoder(ImageEncoder):
    extension = "png"

    def encode(self, frame: np.ndarray | YuvFrame) -> bytes:
        buf = io.BytesIO()
        # Level 1: PNG is chosen for losslessness, not size; higher levels cost several x time.
        Image.fromarray(as_rgb(frame)).save(buf, format="PNG", compress_level=1)
        return buf.getvalue()


def make_encoder(fmt: str, quality: int) -> ImageEncoder:
    if fmt == "jpg":
        return JpegEncoder(quality)
    if fmt == "png":
        return PngEncoder()
    raise ValueError(f"unknown image format {fmt!r}; choose one of {', '.join(FORMATS)}")


def wants_planes(fmt: str) -> bool:
    """Whether this format's encoder takes YUV planes without converting them to RGB."""
    return fmt == "jpg"

"""The video-to-full range expansion of the planes path, checked value by value in real ffmpeg.

Every 8-bit value goes through the filter ``FrameReader`` adds for video-range 4:2:0 input
(``TO_FULL_RANGE``); luma must be exactly round((y-16)*255/219), chroma within one level
of (c-128)*255/224+128.  An ffmpeg whose ``eq`` filter took its fixed-point path instead of
the table would be 4 levels off on average and fail here.
"""

from __future__ import annotations

import math
import subprocess

import numpy as np

from snhoo_dask.video.reader import TO_FULL_RANGE

WIDTH, HEIGHT = 512, 2  # chroma planes are 256x1: every value once per plane


def expand(values: np.ndarray, offset: int, scale: float, centre: int) -> np.ndarray:
    return np.array([min(255, max(0, math.floor((v - offset) * scale + centre + 0.5))) for v in values])


def test_every_value_is_expanded_like_ffmpegs_own_conversion():
    y = np.tile(np.arange(256, dtype=np.uint8), WIDTH * HEIGHT // 256)
    c = np.arange(256, dtype=np.uint8)
    frame = np.concatenate([y, c, c[::-1]]).tobytes()
    done = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-f", "rawvideo", "-pix_fmt", "yuv420p"]
        + ["-s", f"{WIDTH}x{HEIGHT}", "-i", "-", "-vf", TO_FULL_RANGE, "-f", "rawvideo", "-"],
        input=frame,
        capture_output=True,
        check=True,
    )
    out = np.frombuffer(done.stdout, dtype=np.uint8).astype(int)
    assert out.size == len(frame)
    n = WIDTH * HEIGHT
    assert (out[:256] == expand(np.arange(256), 16, 255 / 219, 0)).all()
    want_c = expand(np.arange(256), 128, 255 / 224, 128)
    for plane in (out[n : n + 256], out[n + 256 :][::-1]):
        off = np.abs(plane - want_c)
        assert off.max() <= 1
        assert (off > 0).mean() < 0.1
    # The two ends: black and white come out as 0 and 255, grey stays grey.
    assert out[16] == 0 and out[235] == 255 and out[n + 128] == 128

"""Real test videos, made by ffmpeg at test time.

``make_video`` encodes the frame number into the picture (grey level 16 + 2n, H.264
lossless), so a test can tell from an image's brightness exactly which source frame
it is, not only how many images there are.
"""

from __future__ import annotations

import os
import subprocess

import numpy as np
from PIL import Image

# x264 without loss, in 4:4:4: a decoded frame is the source frame to the bit.
LOSSLESS = ["-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv444p"]


def make_video(
    path: str | os.PathLike,
    seconds: float = 2.0,
    fps: int = 25,
    size: str = "64x48",
    gop: int | None = None,
    codec: str = "libx264",
    extra: list[str] | None = None,
) -> str:
    """A constant-rate video whose frame n has grey level 16 + 2n (mod 220)."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    gop = gop or fps
    source = f"nullsrc=s={size}:r={fps},geq=lum='16+mod(2*N,220)':cb=128:cr=128"
    if codec == "libx264":
        args = [*LOSSLESS, "-g", str(gop)]
    else:
        args = ["-c:v", codec, "-g", str(gop)]
    ffmpeg(*_lavfi(source, seconds), *args, *(extra or []), "file:" + path)
    return path


def frame_number(image_path: str | os.PathLike) -> int:
    """Which source frame an image made from ``make_video`` shows (for frames below 110)."""
    grey = np.asarray(Image.open(image_path).convert("L"), dtype=float).mean()
    luma = grey * 219 / 255 + 16  # full-range RGB back to video-range luma
    return int(round((luma - 16) / 2))


def _lavfi(source: str, seconds: float) -> list[str]:
    """ffmpeg's input options for ``seconds`` of the lavfi test source ``source``."""
    return ["-f", "lavfi", "-i", source, "-t", str(seconds)]


def ffmpeg(*args: str, timeout: float = 120) -> None:
    """Real ffmpeg with ARGS (quiet, overwriting); fails the test if it fails."""
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True, timeout=timeout)


def lossless(path: str | os.PathLike, source: str, frames: int) -> str:
    """The first ``frames`` frames of the lavfi ``source``, without loss, into ``path``."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    ffmpeg("-f", "lavfi", "-i", source, "-frames:v", str(frames), *LOSSLESS, "file:" + path)
    return path


# -- noisy test pictures, encoded as the test asks --------------------------------------------

# ffmpeg's moving test pattern with grain on every frame: enough bytes a frame to be worth
# cutting into pieces or thinning, unlike make_video's flat grey.  Larger, 25 fps:
NOISY = "testsrc2=s=240x180:r=25,noise=alls=12:allf=t"
# Smaller, 30 fps, lighter grain:
NOISY_SMALL = "testsrc2=s=160x120:r=30,noise=alls=6:allf=t"

# x264 with an IDR picture every 25 frames (a second of NOISY), never one at a scene cut,
# and its default B-frames.
X264_GOP_25 = ["-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-sc_threshold", "0"]


def encode(
    path: str | os.PathLike, *args: str, source: str = NOISY, seconds: float = 12, vf: str | None = None
) -> str:
    """``seconds`` of the lavfi ``source`` encoded with the output options ARGS (codec and its
    settings) into ``path``, in yuv420p; ``vf`` a filter on the way (e.g. new timestamps)."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ffmpeg(*_lavfi(source, seconds), *(["-vf", vf] if vf else []), *args, "-pix_fmt", "yuv420p", path)
    return path

"""Videos of known content for the dataset options (scenes, dedup, resize), made by ffmpeg.

Each one is built so a test can say *which* frames must come out, not only how many.
"""

from __future__ import annotations

import os
import subprocess

import numpy as np
from PIL import Image
from videos import ffmpeg, lossless

# The three-shot video: shot starts (frame indices) at 25 fps.
SHOT_STARTS = [0, 40, 70]
SHOT_FRAMES = 105
STILL_FRAMES = 30  # still_then_motion: frames 0-29 identical, 30-59 all different
MOTION_FRAMES = 30


def three_shots(path: str | os.PathLike) -> str:
    """Three shots of unlike, moving content (test pattern, Mandelbrot zoom, noisy colour
    bars) cut together at frames 40 and 70; 105 frames at 25 fps, 320x240."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    lengths = [b - a for a, b in zip(SHOT_STARTS, SHOT_STARTS[1:] + [SHOT_FRAMES], strict=True)]
    sources = [
        f"testsrc2=s=320x240:r=25,trim=end_frame={lengths[0]}",
        f"mandelbrot=s=320x240:r=25,trim=end_frame={lengths[1]}",
        f"smptebars=s=320x240:r=25,noise=alls=12:allf=t,trim=end_frame={lengths[2]}",
    ]
    args = []
    for s in sources:
        args += ["-f", "lavfi", "-i", s]
    ffmpeg(
        *args,
        "-filter_complex",
        "[0][1][2]concat=n=3:v=1,format=yuv420p",
        "-c:v",
        "libx264",
        "-g",
        "25",
        "file:" + path,
    )
    return path


def still_then_motion(path: str | os.PathLike) -> str:
    """Frames 0-29 all the same grey; frames 30-59 each new (fresh noise over grey level
    16 + 2n).  Lossless, so ``closest_frame`` tells exactly which frame an image is."""
    return lossless(
        path,
        f"nullsrc=s=64x48:r=25,geq=lum='if(lt(N,{STILL_FRAMES}),16,16+2*N)':cb=128:cr=128,"
        f"noise=alls=30:allf=t+u:enable='gte(n,{STILL_FRAMES})'",
        STILL_FRAMES + MOTION_FRAMES,
    )


def dark_left_bright_right(path: str | os.PathLike, size: str = "1280x720", frames: int = 10) -> str:
    """Left half black, right half white: where the edge lands shows where a crop was taken."""
    return lossless(path, f"nullsrc=s={size}:r=25,geq=lum='if(lt(X,W/2),16,235)':cb=128:cr=128", frames)


def reference_frames(video: str | os.PathLike) -> np.ndarray:
    """Every frame of a video as RGB, decoded by ffmpeg alone (the ground truth)."""
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height",
         "-of", "csv=p=0", os.fspath(video)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    w, h = (int(x) for x in probe.stdout.strip().split(","))
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", os.fspath(video), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)


def closest_frame(image, reference: np.ndarray) -> int:
    """Which reference frame an image (path or PIL image) shows: the one it differs from least."""
    im = image if isinstance(image, Image.Image) else Image.open(image)
    pixels = np.asarray(im.convert("RGB"), dtype=np.int16)
    diffs = np.abs(reference.astype(np.int16) - pixels).mean(axis=(1, 2, 3))
    return int(np.argmin(diffs))

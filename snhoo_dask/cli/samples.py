"""A small sample corpus, made with ffmpeg, to try snhoo-dask without a lab disk."""

from __future__ import annotations

import os
import subprocess

# (relative path, seconds, frame rate, size): mixed lengths and containers, a folder
# named like the old manual's example, and names with spaces and "%".
SAMPLES = [
    ("160811张三测试/test/session 1.mp4", 6, 25, "640x360"),
    ("160811张三测试/test/session 2.mov", 3, 30, "640x360"),
    ("disk-a/cam 100%/clip.mkv", 4, 25, "320x240"),
    ("disk-a/cam 100%/clip.avi", 2, 25, "320x240"),
    ("disk-a/long.mp4", 12, 25, "640x360"),
]


def make_samples(folder: str) -> list[str]:
    """Write the sample videos under ``folder`` (skipping ones that exist); return their paths."""
    paths = []
    for rel, seconds, fps, size in SAMPLES:
        path = os.path.join(folder, *rel.split("/"))
        paths.append(path)
        if os.path.exists(path):
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        codec = (
            ["-c:v", "mpeg4", "-q:v", "5"]
            if path.endswith(".avi")
            else ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", str(2 * fps)]
        )
        subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                f"testsrc2=size={size}:rate={fps}",
                "-t",
                str(seconds),
                *codec,
                "file:" + path,
            ],
            check=True,
        )
    return paths

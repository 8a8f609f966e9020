"""Videos cut short, as an interrupted copy leaves them, and plain ffmpeg's decode of them."""

from __future__ import annotations

import subprocess

import numpy as np

SIZE = (128, 96)


def cut_videos(root) -> None:
    """cam/cut.mp4 (faststart, 60 % of its bytes) and cam/cut.mkv (half): 4 s of testsrc2
    at 25 fps, whose headers still say 4 s; and cam/whole.mp4, not cut."""
    root.mkdir(parents=True)
    src = ["-f", "lavfi", "-i", f"testsrc2=s={SIZE[0]}x{SIZE[1]}:r=25:d=4", "-c:v", "libx264", "-g", "25"]
    src += ["-pix_fmt", "yuv420p"]
    for name, extra, share in (("cut.mp4", ["-movflags", "+faststart"], 0.6), ("cut.mkv", [], 0.5)):
        whole = root / ("whole-" + name)
        subprocess.run(["ffmpeg", "-v", "error", *src, *extra, str(whole)], check=True)
        data = whole.read_bytes()
        (root / name).write_bytes(data[: int(len(data) * share)])
        whole.unlink()
    subprocess.run(["ffmpeg", "-v", "error", *src, str(root / "whole.mp4")], check=True)


def plain_ffmpeg_frames(path) -> list[np.ndarray]:
    """Every picture plain ffmpeg decodes from ``path``, as RGB (the oracle)."""
    done = subprocess.run(
        ["ffmpeg", "-v", "quiet", "-i", str(path), "-vsync", "passthrough", "-f", "rawvideo"]
        + ["-pix_fmt", "rgb24", "-"],
        capture_output=True,
    )
    w, h = SIZE
    raw = np.frombuffer(done.stdout, np.uint8)
    assert raw.size and raw.size % (w * h * 3) == 0
    return list(raw.reshape(-1, h, w, 3))

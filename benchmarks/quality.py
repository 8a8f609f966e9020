"""Image quality of two snhoo-dask versions on the same video: sizes and PSNR.

    python -m benchmarks.quality VIDEO --before OLD_CHECKOUT [--every N]

Runs ``snhoo-dask run`` with this checkout and with the package in OLD_CHECKOUT (by
PYTHONPATH), decodes the video's frames with ffmpeg to RGB as the reference, and
prints for each version the mean JPEG size and the mean PSNR against the reference,
plus the PSNR between the two versions' images.  Both must write the same frames.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def run(video: Path, out: Path, every: int, pythonpath: str | None) -> Path:
    root = out / "root"
    root.mkdir(parents=True)
    os.link(video, root / video.name)
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    cmd = ["snhoo-dask", "run", str(root), "--out", str(out / "o"), "-q", "--every", str(every)]
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    return out / "o" / "root" / video.name


def reference(video: Path, every: int) -> tuple[list[np.ndarray], int, int]:
    info = json.loads(
        subprocess.run(
            ["ffprobe", "-v", "error", "-of", "json", "-show_streams", str(video)],
            capture_output=True,
            check=True,
        ).stdout
    )
    s = next(s for s in info["streams"] if s["codec_type"] == "video")
    w, h = s["width"], s["height"]
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(video), "-vf", f"select='not(mod(n,{every}))'", "-vsync", "0"]
        + ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True,
        check=True,
    ).stdout
    n = len(raw) // (w * h * 3)
    return [np.frombuffer(raw, np.uint8, w * h * 3, k * w * h * 3).reshape(h, w, 3) for k in range(n)], w, h


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("video", type=Path)
    ap.add_argument("--before", type=Path, required=True)
    ap.add_argument("--every", type=int, default=10)
    a = ap.parse_args(argv)
    refs, _, _ = reference(a.video, a.every)
    tmp = Path(tempfile.mkdtemp(prefix="snhoo-quality-"))
    try:
        folders = {
            "before": run(a.video, tmp / "before", a.every, str(a.before)),
            "after": run(a.video, tmp / "after", a.every, None),
        }
        names = {k: sorted(n for n in os.listdir(f) if n.endswith(".jpg")) for k, f in folders.items()}
        assert names["before"] == names["after"], "the two versions wrote different frames"
        assert len(names["after"]) == len(refs), (len(names["after"]), len(refs))
        stats: dict[str, dict] = {}
        images = {k: [] for k in folders}
        for k, folder in folders.items():
            sizes, scores = [], []
            for name, ref in zip(names[k], refs, strict=True):
                data = (folder / name).read_bytes()
                img = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
                images[k].append(img)
                sizes.append(len(data))
                scores.append(psnr(img, ref))
            stats[k] = {
                "mean_kb": round(np.mean(sizes) / 1024, 1),
                "psnr_db": round(float(np.mean(scores)), 2),
            }
        between = [psnr(x, y) for x, y in zip(images["before"], images["after"], strict=True)]
        stats["before_vs_after_psnr_db"] = round(float(np.mean(between)), 2)
        stats["images"] = len(refs)
        print(json.dumps({"video": str(a.video), **stats}))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

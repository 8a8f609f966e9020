"""Dataset options: ``--max-side 512`` against full size, ``--scenes`` against PySceneDetect.

One command::

    python -m benchmarks.bench_dataset            # about 5 minutes on 2 cores
    python -m benchmarks.bench_dataset --repeat 3 # medians of 3
    python -m benchmarks.bench_dataset --corpus   # only make the videos and print where

The README's figures were taken with paired timings on these videos (A/B in turn, paired
ratios; the commands are in ``measured-2026-11-26-dataset.txt``), which holds up better
on a shared machine than this script's plain timings.

It makes (and caches) its videos with ffmpeg and prints a table; ``--json PATH`` also
writes it.  Kept apart from ``bench.py`` (the comparison with the shell loop) so each
can change without the other.

* **resize**: ``snhoo-dask run --workers 1`` on four 20 s 1280x720 videos, all frames,
  full size vs ``--max-side 512``.  Wall time of the whole command and CPU of its process
  tree.  Scaling inside ffmpeg should win: 4.4x fewer bytes to pipe and to encode.
* **scenes**: one 60 s 1280x720 video of 12 shots of unlike, moving content (cuts at
  known frames).  ``snhoo-dask run --scenes --workers 1`` (the whole command, cluster
  start included) and PySceneDetect's ``detect(path, ContentDetector())`` in-process
  (its defaults: threshold 27, OpenCV decoding, downscaled frames).  Frames per second
  of video processed, and the cuts each found.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache-dataset"
FPS = 25
SIZE = "1280x720"
RESIZE_VIDEOS = 4
RESIZE_SECONDS = 20
SHOT_SECONDS = [4, 6, 3, 5, 7, 4, 5, 6, 4, 5, 7, 4]  # 60 s, 12 shots
SOURCES = [
    "testsrc2",
    "mandelbrot",
    "smptehdbars,noise=alls=12:allf=t",
    "cellauto=rule=110",
    "life=mold=10:ratio=0.1:death_color=#C83232:life_color=#00ff00",
    "rgbtestsrc,hue=H=t",
]


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def resize_corpus() -> Path:
    root = CACHE / "resize"
    if len(list(root.glob("*.mp4"))) == RESIZE_VIDEOS:
        return root
    root.mkdir(parents=True, exist_ok=True)
    for i in range(RESIZE_VIDEOS):
        _ffmpeg(
            "-f", "lavfi", "-i", f"testsrc2=s={SIZE}:r={FPS}:d={RESIZE_SECONDS}",
            "-c:v", "libx264", "-preset", "veryfast", "-g", str(2 * FPS), "-pix_fmt", "yuv420p",
            str(root / f"v{i}.mp4"),
        )  # fmt: skip
    return root


def shot_starts() -> list[int]:
    starts, t = [], 0
    for s in SHOT_SECONDS:
        starts.append(t * FPS)
        t += s
    return starts


def scenes_video() -> Path:
    path = CACHE / "scenes" / "shots.mp4"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    args, labels = [], []
    for i, seconds in enumerate(SHOT_SECONDS):
        src = SOURCES[i % len(SOURCES)]
        name, _, rest = src.partition(",")
        # Same source twice: made at another size, the second use is another picture.
        size = "640x360" if i >= len(SOURCES) else SIZE
        first = f"{name}{':' if '=' in name else '='}s={size}:r={FPS}"
        chain = ",".join(x for x in [first, rest, f"scale={SIZE.replace('x', ':')},format=yuv420p"] if x)
        args += ["-f", "lavfi", "-t", str(seconds), "-i", chain]
        labels.append(f"[{i}]")
    _ffmpeg(
        *args,
        "-filter_complex", f"{''.join(labels)}concat=n={len(SHOT_SECONDS)}:v=1",
        "-c:v", "libx264", "-preset", "veryfast", "-g", str(2 * FPS), str(path),
    )  # fmt: skip
    return path


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_snhoo(root: Path, out: Path, *args: str) -> tuple[float, float]:
    shutil.rmtree(out, ignore_errors=True)
    cmd = ["snhoo-dask", "run", str(root), "-o", str(out), "--workers", "1", "--no-stage", "-q", *args]
    cpu0, t0 = _cpu(), time.perf_counter()
    subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0, _cpu() - cpu0


def run_pyscenedetect(video: Path) -> tuple[float, float, list[int]]:
    from scenedetect import ContentDetector, detect

    t0, c0 = time.perf_counter(), time.process_time()
    scenes = detect(str(video), ContentDetector())
    starts = [s[0].frame_num for s in scenes] or [0]
    return time.perf_counter() - t0, time.process_time() - c0, starts


def _median(xs: list[float]) -> float:
    return round(statistics.median(xs), 2)


def bench(repeat: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="snhoo-bench-dataset-"))
    rows = []
    try:
        root, video = resize_corpus(), scenes_video()  # made (or found cached) before any timing
        frames = RESIZE_VIDEOS * RESIZE_SECONDS * FPS
        for label, args in (
            ("all frames, full size (1280x720)", []),
            ("all frames, --max-side 512", ["--max-side", "512"]),
        ):
            runs = [run_snhoo(root, work / "out", *args) for _ in range(repeat)]
            rows.append(
                {
                    "case": label,
                    "images": frames,
                    "wall_s": _median([w for w, _ in runs]),
                    "cpu_s": _median([c for _, c in runs]),
                    "fps": round(frames / statistics.median(w for w, _ in runs), 1),
                }
            )
        frames = sum(SHOT_SECONDS) * FPS
        runs = [run_snhoo(video.parent, work / "scenes", "--scenes") for _ in range(repeat)]
        with open(work / "scenes" / "scenes" / "shots.mp4" / "frames.csv", encoding="utf-8") as f:
            found = [int(r["frame"]) for r in csv.DictReader(f)]
        rows.append(
            {
                "case": "--scenes (snhoo-dask run, cluster start included)",
                "images": len(found),
                "wall_s": _median([w for w, _ in runs]),
                "cpu_s": _median([c for _, c in runs]),
                "fps": round(frames / statistics.median(w for w, _ in runs), 1),
                "cuts": found,
            }
        )
        try:
            runs = [run_pyscenedetect(video) for _ in range(repeat)]
            rows.append(
                {
                    "case": "PySceneDetect detect(ContentDetector()), in-process",
                    "images": len(runs[0][2]),
                    "wall_s": _median([r[0] for r in runs]),
                    "cpu_s": _median([r[1] for r in runs]),
                    "fps": round(frames / statistics.median(r[0] for r in runs), 1),
                    "cuts": runs[0][2],
                }
            )
        except ImportError:
            print(
                "PySceneDetect not installed (pip install -e '.[test]'): its row is left out", file=sys.stderr
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"rows": rows, "true_cuts": shot_starts(), "repeat": repeat}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=1, help="runs per case (median is reported)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--corpus", action="store_true", help="only make the videos and print their paths")
    args = ap.parse_args(argv)
    if args.corpus:
        print(resize_corpus())
        print(scenes_video(), "shots start at", shot_starts())
        return 0
    result = bench(args.repeat)
    print(f"{'case':58} {'images':>7} {'wall s':>7} {'CPU s':>7} {'video fps':>9}")
    for r in result["rows"]:
        print(f"{r['case']:58} {r['images']:>7} {r['wall_s']:>7} {r['cpu_s']:>7} {r['fps']:>9}")
        if "cuts" in r:
            print(f"    shots start at {r['cuts']}")
    print(f"    true shot starts: {result['true_cuts']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How the cost of a job grows with its size (issue 38): printed, never assumed.

    python -m benchmarks.growth            # N = 1k, 10k, 100k; 1, 20, 60-minute videos
    python -m benchmarks.growth --quick    # N = 1k, 10k (resume 1k); 1, 20-minute videos

- discovery + ``--dry-run`` over N empty files named like videos (100 per folder): wall,
  CPU, peak RSS and the lines it prints (stdout + stderr; the default must stay < 100);
- resume with N videos already done: ``snhoo-dask run`` on the embedded cluster where every
  video is skipped (cluster start, the done check per video, N records, report.html).  The
  N done outputs are one real run's done record copied per source file with that file's
  identity, so the check reads what a real output holds;
- one task's peak RSS (``benchmarks/one_task``, no Dask) for a 160x120 video of 1, 20 and 60
  minutes, ``--every 30``, made by stream-copying one minute of ``testsrc2`` end to end.

Everything is made in a temporary folder (``--tmp``) and removed at the end.  Peak RSS is
the largest single process of the command's tree (``wait4``'s ``ru_maxrss``); CPU is user +
sys of the whole tree.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PER_FOLDER = 100
SNHOO = [sys.executable, "-m", "snhoo_dask"]


@dataclass
class Ran:
    wall: float
    cpu: float
    peak_mb: float
    lines: int
    code: int
    stderr: str


def ran(cmd: list[str], timeout: float = 1800) -> Ran:
    """Run ``cmd`` to its end: wall, CPU of its tree, the largest process's peak RSS, lines printed."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=REPO)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        wall = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    lines = stdout.count(b"\n") + stderr.count(b"\n")
    return Ran(
        wall,
        usage.ru_utime + usage.ru_stime,
        usage.ru_maxrss / 1024,
        lines,
        proc.returncode,
        stderr.decode(errors="replace"),
    )


def make_tree(root: Path, n: int, content: bytes = b"") -> list[Path]:
    """``n`` files named like videos, ``PER_FOLDER`` to a folder."""
    paths = []
    for i in range(n):
        folder = root / f"day{i // PER_FOLDER:04d}"
        if i % PER_FOLDER == 0:
            folder.mkdir(parents=True)
        path = folder / f"cam{i % PER_FOLDER:03d}.mp4"
        with open(path, "wb") as f:
            f.write(content)
        paths.append(path)
    return paths


def say(line: str) -> None:
    print(line, flush=True)


def dry_runs(tmp: Path, sizes: list[int]) -> None:
    say("\n## discovery + --dry-run over N empty files (100 per folder)")
    say("| N | wall s | CPU s | peak RSS MB | lines printed | us per video (wall) |")
    say("|---|---|---|---|---|---|")
    for n in sizes:
        root = tmp / f"dry{n}"
        make_tree(root, n)
        r = ran([*SNHOO, "run", str(root), "--out", str(tmp / f"dry-out{n}"), "--dry-run"])
        assert r.code == 0, r.stderr[-2000:]
        say(f"| {n:,} | {r.wall:.2f} | {r.cpu:.2f} | {r.peak_mb:.0f} | {r.lines} | {r.wall / n * 1e6:.0f} |")
        shutil.rmtree(root)


def one_done_record(tmp: Path) -> dict:
    """A real run's done record of one small video, ``--every 30``: the template of N outputs."""
    src, out = tmp / "one", tmp / "one-out"
    src.mkdir()
    ffmpeg = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=2"]
    subprocess.run([*ffmpeg, "-pix_fmt", "yuv420p", str(src / "a.mp4")], check=True, timeout=120)
    args = ["run", str(src), "--out", str(out), "--every", "30", "--workers", "1"]
    r = ran([*SNHOO, *args, "--dashboard-address", "127.0.0.1:0", "-q"])
    assert r.code == 0, r.stderr[-2000:]
    done = json.loads((out / "one" / "a.mp4" / ".snhoo-done.json").read_text())
    shutil.rmtree(src)
    shutil.rmtree(out)
    return done


def make_done(root: Path, out: Path, n: int, template: dict) -> None:
    """``n`` one-byte sources, each with a finished output whose record names it."""
    for src in make_tree(root, n, b"x"):
        st = os.stat(src)
        rel = src.relative_to(root).as_posix()
        folder = out / root.name / rel
        folder.mkdir(parents=True)
        (folder / "frames.csv").write_text("frame,timestamp,file,width,height\n")
        record = dict(template["record"])
        record.update(
            root=str(root),
            video=rel,
            out=f"{root.name}/{rel}",
            size=st.st_size,
            source=f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}",
        )
        done = {**template, "record": record, "files": {"frames.csv": (folder / "frames.csv").stat().st_size}}
        (folder / ".snhoo-done.json").write_text(json.dumps(done))


def resumes(tmp: Path, sizes: list[int]) -> None:
    say("\n## resume: `snhoo-dask run` with all N videos already done (embedded cluster, 1 worker)")
    say(
        "| N | wall s | CPU s | peak RSS MB | ms per video (wall, beyond the first N) "
        "| --dry-run on it: wall s, lines |"
    )
    say("|---|---|---|---|---|---|")
    template = one_done_record(tmp)
    first: tuple[int, float] | None = None
    for n in sizes:
        root, out = tmp / f"vids{n}", tmp / f"resume-out{n}"
        make_done(root, out, n, template)
        args = ["run", str(root), "--out", str(out), "--every", "30", "--workers", "1"]
        dry = ran([*SNHOO, *args[:6], "--dry-run"])
        assert dry.code == 0 and f"would do: 0 new, {n:,} skip" in dry.stderr, dry.stderr[-2000:]
        r = ran([*SNHOO, *args, "--dashboard-address", "127.0.0.1:0", "-q"])
        assert r.code == 0, r.stderr[-2000:]
        assert f"0 ok, {n} skipped, 0 failed of {n:,} videos" in r.stderr, r.stderr[-2000:]
        per = "-" if first is None else f"{(r.wall - first[1]) / (n - first[0]) * 1e3:.3f}"
        first = first or (n, r.wall)
        say(f"| {n:,} | {r.wall:.2f} | {r.cpu:.2f} | {r.peak_mb:.0f} | {per} | {dry.wall:.2f}, {dry.lines} |")
        shutil.rmtree(root)
        shutil.rmtree(out)


def long_video(tmp: Path, minutes: int) -> Path:
    """A 160x120 video of ``minutes``: one minute of testsrc2, stream-copied end to end."""
    tmp = tmp / "videos"  # apart from the outputs: an output folder may not lie in the root
    tmp.mkdir(exist_ok=True)
    one = tmp / "minute.mp4"
    if not one.exists():
        lavfi = "testsrc2=size=160x120:rate=25:duration=60"
        cmd = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", lavfi, "-c:v", "libx264", "-preset", "ultrafast"]
        subprocess.run([*cmd, "-g", "50", "-pix_fmt", "yuv420p", str(one)], check=True, timeout=300)
    if minutes == 1:
        return one
    listing = tmp / f"list{minutes}.txt"
    listing.write_text("".join(f"file '{one}'\n" for _ in range(minutes)))
    path = tmp / f"long{minutes}.mp4"
    concat = ["ffmpeg", "-v", "error", "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy"]
    subprocess.run([*concat, str(path)], check=True, timeout=600)
    return path


def task_rss(tmp: Path, minutes_list: list[int]) -> None:
    say("\n## one task's peak RSS (benchmarks/one_task, no Dask), 160x120, --every 30")
    say("| video | frames | images | wall s | CPU s | peak RSS MB | RSS vs 1 minute |")
    say("|---|---|---|---|---|---|---|")
    base: float | None = None
    for minutes in minutes_list:
        video = long_video(tmp, minutes)
        out = tmp / f"task-out{minutes}"
        r = ran([sys.executable, "-m", "benchmarks.one_task", str(video), str(out), "--every", "30"])
        assert r.code == 0, r.stderr[-2000:]
        images = len(list((out / "v" / video.name).glob("*.jpg")))
        base = base or r.peak_mb
        frames = minutes * 60 * 25
        say(
            f"| {minutes} min | {frames:,} | {images:,} | {r.wall:.1f} | {r.cpu:.1f} | {r.peak_mb:.0f} "
            f"| {r.peak_mb / base:.2f}x |"
        )
        shutil.rmtree(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="N = 1k, 10k (resume 1k); 1 and 20-minute videos")
    ap.add_argument("--only", default="dry,resume,rss", help="comma-separated: dry, resume, rss")
    ap.add_argument("--tmp", help="where to make the files (default: the system's temporary folder)")
    args = ap.parse_args(argv)
    only = set(args.only.split(","))
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    resume_sizes = [1_000] if args.quick else sizes
    minutes = [1, 20] if args.quick else [1, 20, 60]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    say(f"# growth, {time.strftime('%Y-%m-%d %H:%M %Z')}, commit {commit.stdout.strip() or '?'}")
    say(
        f"# {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, load {os.getloadavg()}"
    )
    # A SIGTERM (timeout, kill) still removes what was made.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    tmp = Path(tempfile.mkdtemp(prefix="snhoo-growth-", dir=args.tmp))
    try:
        if "dry" in only:
            dry_runs(tmp, sizes)
        if "resume" in only:
            resumes(tmp, resume_sizes)
        if "rss" in only:
            task_rss(tmp, minutes)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    say(f"# load at the end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

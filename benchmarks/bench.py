"""snhoo-dask against the shell loop people write instead: ``find | xargs -P <cores> ffmpeg``.

One command::

    python -m benchmarks.bench            # full corpus, about 10-15 minutes on 2 cores
    python -m benchmarks.bench --quick    # small corpus, under 2 minutes

It makes (and caches) a corpus of H.264 test videos with ffmpeg, runs every case
twice side by side -- the baseline (one ``ffmpeg -threads 1`` per video through
``xargs -P <cores>``, selecting with the select filter, writing JPEG) and
``snhoo-dask run`` on its embedded LocalCluster -- prints a table and writes it as
JSON under ``benchmarks/results/``.  One extra case runs snhoo-dask against a
separate ``dask scheduler`` with two ``dask worker`` processes.

The one 10-minute video (``long10/``; 2 minutes with --quick) is also timed against a
second comparator, ONE ``ffmpeg -threads 2`` on it (what one would run on one long video
with two cores), and a few cases run snhoo-dask with an extra option
(``--split-seconds 0``, ``--decode-all``) to show what splitting and thinning each save.
With ``--psnr`` the last run's images of both sides are kept and compared: per case the
min and mean PSNR of snhoo-dask's JPEGs against the baseline's JPEG of the same frame
(matched by order within each video's folder; at most ~200 images sampled per case).

Wall time is measured around the whole command (for snhoo-dask: process start,
cluster start, discovery, all videos, shutdown).  Peak memory is the resident set
size (RSS) of each process, sampled with psutil every 100 ms over the command's
whole process tree (and the separate cluster's worker processes); a process that
lives less than one sample can be missed.
"""

from __future__ import annotations

import argparse
import compileall
import datetime as dt
import importlib
import json
import math
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
FPS = 30
GOP = 2 * FPS  # a key frame every 2 s

# The corpus (what labs have): six 720p videos of 10-60 s, two of
# 2 minutes, and one-second 360p clips, 300 made and copied up to 600 and 3,000.
FULL_LENGTHS = [10, 20, 30, 40, 50, 60]
QUICK_LENGTHS = [10, 20]
FULL_LONG2 = [120, 120]
QUICK_LONG2 = [40]
# One 10-minute 720p video (where splitting pays); 2 minutes with --quick.
FULL_LONG10 = [600]
QUICK_LONG10 = [120]
# An identical 10-minute encode (same _encode settings) someone may have made already.
LONG10_PREMADE = Path("/tmp/L/v600.mp4")
FULL_CLIPS = 300
QUICK_CLIPS = 40
CLIP_SIZE = "640x360"
CLIP_COPIES = {"clips600": 2, "clips3000": 10}
DRY_RUN_FOLDERS, DRY_RUN_PER_FOLDER = 1000, 100

# Exact frames / timestamps: five per video, each more than 2 s from the next (so each
# is a seek of its own), all inside the shortest video.
FULL_FRAMES = [20, 90, 160, 230, 290]
FULL_TIMES = [0.5, 3.1, 5.4, 7.7, 9.6]
QUICK_FRAMES = FULL_FRAMES
QUICK_TIMES = FULL_TIMES
# The 2-minute videos: five frames spread over the whole length.
LONG2_FRAMES = [100, 900, 1700, 2500, 3400]
QUICK_LONG2_FRAMES = [100, 400, 700, 900, 1100]

JPEG_Q_FFMPEG = "2"  # ffmpeg's -q:v 2: what the usual one-liners use
JPEG_Q_SNHOO = "90"  # snhoo-dask's default --quality (Pillow)
THREADS2 = "ffmpeg-threads2"  # result key of the one ``ffmpeg -threads 2`` comparator
PSNR_SAMPLE = 200  # --psnr: images compared per case at most


# --------------------------------------------------------------------------- corpus
def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def _noisy_x264(source: str, seconds: float, gop: int) -> list[str]:
    """ffmpeg's options for ``seconds`` of a lavfi source with grain, in x264 at CRF 23 with a
    key frame every ``gop`` frames and none at scene cuts."""
    return [
        "-f", "lavfi", "-i", source, "-t", str(seconds), "-vf", "noise=alls=8:allf=t",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
        "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-pix_fmt", "yuv420p",
    ]  # fmt: skip


def _encode(src: str, seconds: float, out: Path, size: str = "1280x720") -> None:
    tmp = out.with_suffix(".part.mp4")
    _ffmpeg(*_noisy_x264(f"{src}=s={size}:r={FPS}", seconds, GOP), "-movflags", "+faststart", str(tmp))
    tmp.rename(out)


def _clips(n: int, out_dir: Path, base: Path) -> None:
    """n one-second 360p clips cut from one encode (key frame every second)."""
    src = base / "clips-source.mp4"
    tmp = src.with_suffix(".part.mp4")
    _ffmpeg(*_noisy_x264(f"testsrc2=s={CLIP_SIZE}:r={FPS}", n, FPS), str(tmp))
    _ffmpeg(
        "-i", str(tmp), "-c", "copy", "-f", "segment", "-segment_time", "1", "-reset_timestamps", "1",
        str(out_dir / "c%04d.mp4"),
    )  # fmt: skip
    tmp.unlink()


def _reuse_premade(out: Path, seconds: float) -> bool:
    """Hard-link (or copy) LONG10_PREMADE to ``out`` if it is there and looks like our encode."""
    src = LONG10_PREMADE
    if not src.is_file():
        return False
    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height",
            "-show_entries",
            "format=duration",
            "-of",
            "json",
            str(src),
        ],
        capture_output=True,
        text=True,
    )
    try:
        info = json.loads(probe.stdout)
        st = info["streams"][0]
        ok = (st["width"], st["height"]) == (1280, 720) and abs(
            float(info["format"]["duration"]) - seconds
        ) < 0.5
    except (ValueError, KeyError, IndexError):
        ok = False
    if not ok:
        return False
    tmp = out.with_suffix(".part.mp4")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
        how = "hard-linked"
    except OSError:
        shutil.copyfile(src, tmp)
        how = "copied"
    tmp.rename(out)
    print(f"  corpus: {how} {src} as {out.parent.name}/{out.name}", file=sys.stderr, flush=True)
    return True


def make_corpus(quick: bool) -> Path:
    """The cached corpus folder: long/, long2/, long10/, clips/, clips600/, clips3000/, dryrun/."""
    base = RESULTS / ("corpus-quick" if quick else "corpus")
    made = False
    for folder, lengths in (
        ("long", QUICK_LENGTHS if quick else FULL_LENGTHS),
        ("long2", QUICK_LONG2 if quick else FULL_LONG2),
        ("long10", QUICK_LONG10 if quick else FULL_LONG10),
    ):
        d = base / folder
        d.mkdir(parents=True, exist_ok=True)
        for k, s in enumerate(lengths):
            out = d / f"v{s:03d}s-{k}.mp4"
            if not out.exists() and folder == "long10" and not quick and _reuse_premade(out, s):
                made = True
            if not out.exists():
                print(f"  corpus: encoding {folder}/{out.name} (720p, {s} s)", file=sys.stderr, flush=True)
                _encode("testsrc2", s, out)
                made = True
    n_clips = QUICK_CLIPS if quick else FULL_CLIPS
    clip_dir = base / "clips"
    if not (clip_dir / ".complete").exists():
        print(f"  corpus: encoding {n_clips} one-second clips", file=sys.stderr, flush=True)
        shutil.rmtree(clip_dir, ignore_errors=True)
        clip_dir.mkdir(parents=True)
        _clips(n_clips, clip_dir, base)
        (clip_dir / ".complete").touch()
        made = True
    clips = sorted(clip_dir.glob("*.mp4"))
    # Copies, not hard links: the same clips again in folders of 300, as many times as asked.
    # Discovery takes a file once however many names it has (device and inode), so hard
    # links would make a job of 3,000 names one of 300 videos.
    for name, copies in CLIP_COPIES.items():
        d = base / name
        if (d / ".complete").exists() and (d / ".complete").read_text() == "copies":
            continue
        shutil.rmtree(d, ignore_errors=True)
        for c in range(copies):
            sub = d / f"part{c:02d}"
            sub.mkdir(parents=True)
            for clip in clips:
                shutil.copyfile(clip, sub / clip.name)
        (d / ".complete").write_text("copies")
    # Dry run: 100,000 (empty) files named like videos in 1,000 folders; nothing is read.
    dry = base / "dryrun"
    if not (dry / ".complete").exists():
        shutil.rmtree(dry, ignore_errors=True)
        folders, per = (100, 100) if quick else (DRY_RUN_FOLDERS, DRY_RUN_PER_FOLDER)
        for f in range(folders):
            sub = dry / f"day{f:04d}"
            sub.mkdir(parents=True)
            for i in range(per):
                (sub / f"cam{i:03d}.mp4").touch()
        (dry / ".complete").touch()
    if made:
        print(f"  corpus ready in {base}", file=sys.stderr, flush=True)
    return base


# --------------------------------------------------------------------------- measuring
@dataclass
class Measured:
    wall: float
    returncode: int
    peaks: dict[str, int]  # role -> largest single-process peak RSS (bytes)
    worker_tree_peak: int = 0  # largest (worker + its ffmpeg/ffprobe children) at one instant
    samples: int = 0
    stderr_tail: str = ""
    cpu: float = 0.0  # user + sys seconds of the whole process tree


def _role(p: psutil.Process) -> str:
    try:
        name = p.name()
        if name in ("ffmpeg", "ffprobe", "xargs", "sh", "bash", "find"):
            return name
        cmd = " ".join(p.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return "?"
    if "multiprocessing" in cmd or "dask worker" in cmd or "dask-worker" in cmd:
        return "dask-worker"
    if "distributed.cli.dask_worker" in cmd or "/dask worker" in cmd:
        return "dask-worker"
    if "snhoo-dask" in cmd or "snhoo_dask" in cmd:
        return "snhoo-dask (client)"
    return name


def _ppid_map() -> dict[int, int]:
    """{pid: parent pid} of every process, read once."""
    try:
        from psutil._pslinux import ppid_map  # what Process.children() reads, without a Process each

        return ppid_map()
    except (ImportError, OSError):
        return {p.pid: p.info["ppid"] for p in psutil.process_iter(["ppid"])}


class Poller:
    """Samples the RSS of a process tree (plus extra root pids) until stopped."""

    def __init__(self, roots: list[int], interval: float = 0.1) -> None:
        self.roots = roots
        self.interval = interval
        self.peak_by_pid: dict[int, int] = {}
        self.role_by_pid: dict[int, str] = {}
        self.worker_tree_peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def add_root(self, pid: int) -> None:
        self.roots.append(pid)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def _sample(self) -> None:
        # One pass over /proc per sample for every tree: a children() call per root (and per
        # worker) re-read the whole process table each time, up to 15 % of a core on the
        # running-cluster cases, which then competed with the command being measured.
        kids: dict[int, list[int]] = {}
        for pid, ppid in _ppid_map().items():
            kids.setdefault(ppid, []).append(pid)

        def tree(pid: int) -> list[int]:
            out, todo = [], [pid]
            while todo:
                p = todo.pop()
                out.append(p)
                todo.extend(kids.get(p, []))
            return out

        pids = [p for root in self.roots for p in tree(root)]
        rss: dict[int, int] = {}
        for pid in pids:
            try:
                proc = psutil.Process(pid)
                rss[pid] = proc.memory_info().rss
                if pid not in self.role_by_pid:
                    self.role_by_pid[pid] = _role(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            self.peak_by_pid[pid] = max(self.peak_by_pid.get(pid, 0), rss[pid])
        for pid in rss:
            if self.role_by_pid.get(pid) == "dask-worker":
                total = sum(rss.get(p, 0) for p in tree(pid))
                self.worker_tree_peak = max(self.worker_tree_peak, total)
        self.samples += 1

    def peaks(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for pid, peak in self.peak_by_pid.items():
            role = self.role_by_pid.get(pid, "?")
            out[role] = max(out.get(role, 0), peak)
        return out


def measure(cmd: str, extra_roots: list[int] | None = None, env: dict | None = None) -> Measured:
    """Run a shell command; wall time and per-process peak RSS of its tree."""
    err = tempfile.TemporaryFile()
    cpu0 = _tree_cpu(extra_roots)
    start = time.perf_counter()
    proc = subprocess.Popen(
        ["bash", "-c", cmd], stdout=subprocess.DEVNULL, stderr=err, env=env or os.environ.copy()
    )
    with Poller([proc.pid] + list(extra_roots or [])) as poller:
        rc = proc.wait()
        wall = time.perf_counter() - start
    cpu = _tree_cpu(extra_roots) - cpu0
    err.seek(0)
    tail = err.read().decode("utf-8", "replace")[-600:]
    return Measured(wall, rc, poller.peaks(), poller.worker_tree_peak, poller.samples, tail, cpu)


def _tree_cpu(extra_roots: list[int] | None) -> float:
    """CPU seconds (user + sys) of every reaped descendant, plus the separate cluster's workers.

    Unlike wall time this hardly moves when other people's jobs share the machine.
    """
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = r.ru_utime + r.ru_stime
    for pid in extra_roots or []:
        try:
            t = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system + t.children_user + t.children_system
        try:
            for child in psutil.Process(pid).children(recursive=True):
                c = child.cpu_times()
                total += c.user + c.system + c.children_user + c.children_system
        except psutil.NoSuchProcess:
            pass
    return total


def count_images(folder: Path) -> tuple[int, int]:
    n = size = 0
    for dirpath, _, files in os.walk(folder):
        for f in files:
            if f.endswith(".jpg"):
                n += 1
                size += os.path.getsize(os.path.join(dirpath, f))
    return n, size


# --------------------------------------------------------------------------- cases
@dataclass
class Case:
    name: str
    root: str  # corpus subfolder
    snhoo_args: list[str]  # selection options for snhoo-dask run
    select: str | None  # ffmpeg select expression for the baseline (None: all frames)
    workers: int | None = None  # None: all cores
    note: str = ""
    scheduler: bool = False  # run snhoo-dask against the separate dask scheduler
    with_before: bool = True  # also run --before (not against a running cluster: its workers run this code)
    # Options added to snhoo-dask's command only (the baseline is unchanged), to compare a
    # setting against the default: e.g. ["--split-seconds", "0"] or ["--decode-all"].
    snhoo_extra: tuple[str, ...] = ()
    # Also time ONE ``ffmpeg -threads 2`` per video, one video after another (for one video).
    also_threads2: bool = False
    # Both sides write JPEGs of the same frames, in the same order (--psnr compares them).
    same_frames: bool = True


def _frames_expr(frames: list[int]) -> str:
    return "+".join(f"eq(n,{i})" for i in frames)


def _times_expr(times: list[float]) -> str:
    # The frame whose presentation interval holds t (what snhoo-dask picks: floor(t * fps)).
    return "+".join(f"between(n,{int(t * FPS + 1e-6)},{int(t * FPS + 1e-6)})" for t in times)


def cases(quick: bool) -> list[Case]:
    frames = QUICK_FRAMES if quick else FULL_FRAMES
    times = QUICK_TIMES if quick else FULL_TIMES
    frames2 = QUICK_LONG2_FRAMES if quick else LONG2_FRAMES
    running = "dask scheduler + 2 dask worker, already up"
    ten = "10-minute video" if not quick else "10-minute video (2 min, quick)"
    return [
        Case("all frames", "long", [], None),
        Case("every 30th frame", "long", ["--every", "30"], "not(mod(n,30))"),
        Case(
            "every 30th frame, --decode-all",
            "long",
            ["--every", "30"],
            "not(mod(n,30))",
            snhoo_extra=("--decode-all",),
            note="no thinning: decodes every frame",
            with_before=False,
        ),
        Case(
            "10-minute video, every 30th",
            "long10",
            ["--every", "30"],
            "not(mod(n,30))",
            workers=2,
            also_threads2=True,
            note=ten,
        ),
        Case(
            "10-minute video, every 30th, not split",
            "long10",
            ["--every", "30"],
            "not(mod(n,30))",
            workers=2,
            snhoo_extra=("--split-seconds", "0"),
            also_threads2=True,
            note=ten + "; one task",
            with_before=False,
        ),
        Case("10-minute video, all frames", "long10", [], None, workers=2, also_threads2=True, note=ten),
        Case("5 exact frames", "long", ["--frames", ",".join(map(str, frames))], _frames_expr(frames)),
        Case("5 timestamps", "long", ["--times", ",".join(f"{t:g}" for t in times)], _times_expr(times)),
        Case(
            "5 exact frames, 2-minute videos",
            "long2",
            ["--frames", ",".join(map(str, frames2))],
            _frames_expr(frames2),
        ),
        # Key frames are the I frames here (fixed GOP, no scene cut), so --psnr compares them too.
        Case("keyframes, 2-minute videos", "long2", ["--keyframes"], "eq(pict_type,I)"),
        Case("300 clips, every 10th", "clips", ["--every", "10"], "not(mod(n,10))", note="per-clip overhead"),
        Case(
            "600 clips, every 10th", "clips600", ["--every", "10"], "not(mod(n,10))", note="per-clip overhead"
        ),
        Case(
            "3000 clips, every 10th",
            "clips3000",
            ["--every", "10"],
            "not(mod(n,10))",
            note="scale: per-clip",
            with_before=False,
        ),
        Case(
            "every 30th, running cluster",
            "long",
            ["--every", "30"],
            "not(mod(n,30))",
            scheduler=True,
            note=running,
        ),
        Case(
            "5 exact frames, 2-minute videos, running cluster",
            "long2",
            ["--frames", ",".join(map(str, frames2))],
            _frames_expr(frames2),
            scheduler=True,
            note=running,
        ),
        Case(
            "keyframes, 2-minute videos, running cluster",
            "long2",
            ["--keyframes"],
            "eq(pict_type,I)",
            scheduler=True,
            note=running,
        ),
        Case(
            "600 clips, running cluster",
            "clips600",
            ["--every", "10"],
            "not(mod(n,10))",
            scheduler=True,
            note=running,
        ),
    ]


def baseline_cmd(
    case: Case, root: Path, out: Path, cores: int, threads: int = 1, parallel: int | None = None
) -> str:
    """The shell one-liner: ``parallel`` (default: the case's workers or all cores) ffmpeg
    processes at once, each with ``-threads threads``.  threads=2, parallel=1 is the
    ``ffmpeg -threads 2`` comparator."""
    # Commas inside a filter argument are escaped for the filtergraph parser.
    vf = f'-vf "select={case.select.replace(",", chr(92) + ",")}" ' if case.select else ""
    inner = (
        # One folder per video named <its folder>-<its name>: clips copied into part00/,
        # part01/... have the same names.  Parameter expansion only, so no extra process.
        'p="${1%/*}"; d="$0/${p##*/}-${1##*/}"; mkdir -p "$d" && exec ffmpeg -nostdin -v error '
        f'-threads {threads} -i "$1" -threads {threads} {vf}-vsync 0 -q:v {JPEG_Q_FFMPEG} "$d/%06d.jpg"'
    )
    p = parallel or case.workers or cores
    return (
        f"find {shlex.quote(str(root))} -name '*.mp4' -print0 | "
        f"xargs -0 -n 1 -P {p} sh -c {shlex.quote(inner)} {shlex.quote(str(out))}"
    )


def snhoo_cmd(
    case: Case, root: Path, out: Path, cores: int, scheduler: str | None, program: str = "snhoo-dask"
) -> str:
    """The snhoo-dask command line of a case; ``program`` is how snhoo-dask is started."""
    args = [
        "run",
        str(root),
        "--out",
        str(out),
        "--quiet",
        "--quality",
        JPEG_Q_SNHOO,
        "--dashboard-address",
        ":0",
        *case.snhoo_args,
        *case.snhoo_extra,
    ]
    if scheduler:
        args += ["--scheduler", scheduler]
    else:
        args += ["--workers", str(case.workers or cores)]
    return program + " " + " ".join(shlex.quote(a) for a in args)


class SeparateCluster:
    """``dask scheduler`` plus two ``dask worker`` processes (1 thread each), for one case."""

    def __init__(self, workdir: Path) -> None:
        self.file = workdir / "scheduler.json"
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> SeparateCluster:
        self.file.unlink(missing_ok=True)
        log = open(self.file.with_suffix(".log"), "w")
        self.procs.append(
            subprocess.Popen(
                [
                    "dask",
                    "scheduler",
                    "--scheduler-file",
                    str(self.file),
                    "--port",
                    "0",
                    "--dashboard-address",
                    ":0",
                ],
                stdout=log,
                stderr=log,
            )
        )
        for _ in range(60):
            if self.file.exists() and self.file.stat().st_size:
                break
            time.sleep(0.25)
        self.address = json.loads(self.file.read_text())["address"]
        for i in range(2):
            self.procs.append(
                subprocess.Popen(
                    [
                        "dask",
                        "worker",
                        "--scheduler-file",
                        str(self.file),
                        "--nworkers",
                        "1",
                        "--nthreads",
                        "1",
                        "--name",
                        f"bench-{i}",
                        "--no-dashboard",
                    ],
                    stdout=log,
                    stderr=log,
                )
            )
        from distributed import Client

        with Client(self.address, timeout=30) as c:
            c.wait_for_workers(2, timeout=60)
            # Warm, as a lab's cluster is after its first job: the workers have imported the
            # task's code (scikit-video, PyAV, libjpeg-turbo), which a fresh worker does on
            # its first video, inside the measured command.
            c.run(importlib.import_module, "snhoo_dask.worker.extract")
            c.run(importlib.import_module, "snhoo_dask.video.reader")
        return self

    def worker_pids(self) -> list[int]:
        return [p.pid for p in self.procs[1:]]

    def __exit__(self, *exc) -> None:
        for p in reversed(self.procs):
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


# --------------------------------------------------------------------------- running
def run_pair(
    case: Case,
    corpus: Path,
    scratch: Path,
    cores: int,
    repeat: int,
    scheduler: str | None = None,
    extra_roots: list[int] | None = None,
    before: Path | None = None,
    psnr: bool = False,
) -> dict:
    root = corpus / case.root
    rows: dict[str, list] = {"baseline": [], "snhoo-dask": []}
    if before:
        rows["before"] = []
    if case.also_threads2:
        rows[THREADS2] = []
    compare = psnr and case.same_frames
    images: dict[str, tuple[int, int]] = {}
    for r in range(repeat):
        # Alternate which goes first, so neither always gets the warmer cache.
        order = list(rows) if r % 2 == 0 else list(reversed(rows))
        for who in order:
            out = scratch / f"out-{who.replace('-', '')}"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            if who == "baseline":
                cmd = baseline_cmd(case, root, out, cores)
                m = measure(cmd)
            elif who == THREADS2:
                m = measure(baseline_cmd(case, root, out, cores, threads=2, parallel=1))
            else:
                program = "snhoo-dask"
                if who == "before":  # the same command on an older checkout of the package
                    # Through its own ``python -m`` (its console script may name another entry
                    # point than this one's); -P keeps the current folder off sys.path.
                    program = f"PYTHONPATH={shlex.quote(str(before))} {shlex.quote(sys.executable)} -P -m snhoo_dask"
                m = measure(snhoo_cmd(case, root, out, cores, scheduler, program), extra_roots=extra_roots)
            if m.returncode != 0:
                print(f"  ! {who} exited {m.returncode}: {m.stderr_tail}", file=sys.stderr)
            images[who] = count_images(out)
            rows[who].append(m)
            # --psnr: the last run's images of both sides stay until compared below.
            if not (compare and r == repeat - 1 and who in ("baseline", "snhoo-dask")):
                shutil.rmtree(out, ignore_errors=True)
    result = {"case": case.name, "note": case.note, "videos": _count_videos(root), "runs": repeat}
    if case.snhoo_extra:
        result["snhoo_extra"] = list(case.snhoo_extra)
    if compare:
        base_out, snhoo_out = scratch / "out-baseline", scratch / "out-snhoodask"
        try:
            result["psnr_db"] = psnr_compare(base_out, snhoo_out, root)
        finally:
            shutil.rmtree(base_out, ignore_errors=True)
            shutil.rmtree(snhoo_out, ignore_errors=True)
    for who, ms in rows.items():
        n, size = images[who]
        wall = statistics.median(m.wall for m in ms)
        peaks: dict[str, int] = {}
        for m in ms:
            for role, b in m.peaks.items():
                peaks[role] = max(peaks.get(role, 0), b)
        result[who] = {
            "wall_s": round(wall, 3),
            "walls_s": [round(m.wall, 3) for m in ms],
            "cpu_s": round(statistics.median(m.cpu for m in ms), 3),
            "images": n,
            "images_per_s": round(n / wall, 1) if wall else None,
            "mean_jpeg_kb": round(size / n / 1024, 1) if n else None,
            "peak_rss_mb": {
                k: round(v / 2**20, 1)
                for k, v in sorted(peaks.items())
                if k in ("ffmpeg", "ffprobe", "dask-worker", "snhoo-dask (client)")
            },
            "worker_tree_peak_mb": round(max(m.worker_tree_peak for m in ms) / 2**20, 1) or None,
            "exit_codes": [m.returncode for m in ms],
        }
    result["ratio"] = round(result["snhoo-dask"]["wall_s"] / result["baseline"]["wall_s"], 3)
    result["images_match"] = result["snhoo-dask"]["images"] == result["baseline"]["images"]
    if not result["images_match"]:
        print(
            f"  ! images differ: baseline {result['baseline']['images']}, snhoo-dask {result['snhoo-dask']['images']}",
            file=sys.stderr,
        )
    if case.also_threads2:
        result["ratio_vs_threads2"] = round(result["snhoo-dask"]["wall_s"] / result[THREADS2]["wall_s"], 3)
    if before:
        result["before_ratio"] = round(result["before"]["wall_s"] / result["baseline"]["wall_s"], 3)
    # What each video costs us beyond the shell loop's ffmpeg (process start, probe, Dask).
    result["extra_cpu_ms_per_video"] = round(
        (result["snhoo-dask"]["cpu_s"] - result["baseline"]["cpu_s"]) * 1000 / max(1, result["videos"]), 1
    )
    result["cpu_ratio"] = round(result["snhoo-dask"]["cpu_s"] / result["baseline"]["cpu_s"], 3)
    return result


def _count_videos(root: Path) -> int:
    return sum(1 for _ in root.rglob("*.mp4"))


def _jpegs(folder: Path) -> list[Path]:
    """A folder's JPEGs in frame order (names are frame numbers: 000123.jpg, or 1-based)."""
    return sorted(folder.glob("*.jpg"), key=lambda f: (int(f.stem) if f.stem.isdigit() else -1, f.name))


def _psnr(a: Path, b: Path) -> float:
    """PSNR (dB) of two JPEGs over all RGB samples; capped at 100 for identical images."""
    import numpy as np
    from PIL import Image

    with Image.open(a) as ia, Image.open(b) as ib:
        x = np.asarray(ia.convert("RGB"), dtype=np.float64)
        y = np.asarray(ib.convert("RGB"), dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"{a} is {x.shape[1]}x{x.shape[0]}, {b} is {y.shape[1]}x{y.shape[0]}")
    mse = float(np.mean((x - y) ** 2))
    return 100.0 if mse == 0 else min(100.0, 10 * math.log10(255.0**2 / mse))


def psnr_compare(base_out: Path, snhoo_out: Path, root: Path, limit: int = PSNR_SAMPLE) -> dict:
    """snhoo-dask's images against the baseline's, frame by frame, by order within each video.

    snhoo-dask writes OUT/<root name>/<video path>/<frame>.jpg, the baseline
    OUT/<video's folder>-<video name>/%06d.jpg numbered from 1; the k-th image of one is
    the k-th of the other.  At most ``limit`` pairs, evenly spread, are decoded.
    """
    pairs: list[tuple[Path, Path]] = []
    folders = mismatched = 0
    for dirpath, dirnames, files in os.walk(snhoo_out):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        if not any(f.endswith(".jpg") for f in files):
            continue
        folders += 1
        rel = Path(dirpath).relative_to(snhoo_out).parts  # (<root name>, *<video path>)
        video = root.joinpath(*rel[1:])
        theirs, ours = _jpegs(base_out / f"{video.parent.name}-{video.name}"), _jpegs(Path(dirpath))
        if len(theirs) != len(ours):
            mismatched += 1
        pairs.extend(zip(theirs, ours, strict=False))  # a count mismatch is reported, not raised
    if len(pairs) > limit:
        pairs = [pairs[round(i * (len(pairs) - 1) / (limit - 1))] for i in range(limit)]
    values = [_psnr(a, b) for a, b in pairs]
    return {
        "min": round(min(values), 2) if values else None,
        "mean": round(statistics.fmean(values), 2) if values else None,
        "compared": len(values),
        "video_folders": folders,
        "folders_count_mismatch": mismatched,
        "how": "RGB, snhoo-dask vs baseline, k-th image of each video folder against k-th",
    }


def fmt_table(results: list[dict]) -> str:
    head = (
        "| case | videos | baseline s | snhoo-dask s | ratio | CPU s base/snhoo | CPU ratio "
        "| extra CPU ms/video | before s (ratio, CPU) | ffmpeg -threads 2 s (snhoo ratio, CPU) "
        "| baseline img/s | snhoo img/s | images (base/snhoo) | PSNR dB min/mean (n) | peak RSS base ffmpeg MB | peak RSS worker MB (+children) | peak RSS snhoo ffmpeg MB |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        b, s = r["baseline"], r["snhoo-dask"]
        w = s["peak_rss_mb"].get("dask-worker")
        lines.append(
            f"| {r['case']} | {r['videos']} | {b['wall_s']:.2f} | {s['wall_s']:.2f} | {r['ratio']:.2f}x "
            f"| {b['cpu_s']:.1f}/{s['cpu_s']:.1f} | {r['cpu_ratio']:.2f}x "
            f"| {r['extra_cpu_ms_per_video']:+.0f} | {_before(r)} | {_threads2(r)} "
            f"| {b['images_per_s']} | {s['images_per_s']} | {b['images']}/{s['images']}{'' if r['images_match'] else ' (!)'} "
            f"| {_psnr_cell(r)} "
            f"| {b['peak_rss_mb'].get('ffmpeg', '-')} | {w if w is not None else '-'}"
            f" ({s['worker_tree_peak_mb'] or '-'}) | {s['peak_rss_mb'].get('ffmpeg', '-')} |"
        )
    return "\n".join(lines)


def _threads2(r: dict) -> str:
    if THREADS2 not in r:
        return "-"
    t = r[THREADS2]
    return f"{t['wall_s']:.2f} ({r['ratio_vs_threads2']:.2f}x, {t['cpu_s']:.1f})"


def _psnr_cell(r: dict) -> str:
    p = r.get("psnr_db")
    if not p or p["min"] is None:
        return "-"
    bad = f", {p['folders_count_mismatch']} folders differ" if p["folders_count_mismatch"] else ""
    return f"{p['min']:.1f}/{p['mean']:.1f} ({p['compared']}{bad})"


def _before(r: dict) -> str:
    if "before" not in r:
        return "-"
    return f"{r['before']['wall_s']:.2f} ({r['before_ratio']:.2f}x, {r['before']['cpu_s']:.1f})"


def dry_run(corpus: Path, scratch: Path, repeat: int) -> dict:
    """``--dry-run`` over the 100,000-file tree: discovery and listing only."""
    root = corpus / "dryrun"
    cmd = f"snhoo-dask run {shlex.quote(str(root))} --out {shlex.quote(str(scratch / 'dry-out'))} --dry-run"
    runs = [measure(cmd) for _ in range(repeat)]
    return {
        "files": sum(1 for _ in root.rglob("*.mp4")),
        "folders": sum(1 for p in root.iterdir() if p.is_dir()),
        "wall_s": round(statistics.median(m.wall for m in runs), 3),
        "cpu_s": round(statistics.median(m.cpu for m in runs), 3),
        "client_peak_rss_mb": round(max(max(m.peaks.values(), default=0) for m in runs) / 2**20, 1),
        "exit_codes": [m.returncode for m in runs],
    }


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ff = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "mem_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "ffmpeg": ff,
    }


def compile_packages(before: Path | None) -> None:
    """Bytecode for the package(s) timed, as ``pip install`` writes it.  An editable install
    leaves that to the first run, and where PYTHONDONTWRITEBYTECODE is set (this project's
    machines set it) every run would compile the package again: about 0.1 s each."""
    import snhoo_dask

    for folder in [Path(snhoo_dask.__file__).parent] + ([before / "snhoo_dask"] if before else []):
        compileall.compile_dir(str(folder), quiet=1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--quick",
        action="store_true",
        help="small corpus (3 short videos, a 2-minute long10, 40 clips); a few minutes",
    )
    ap.add_argument("--repeat", type=int, default=1, help="runs per side per case (median is reported)")
    ap.add_argument(
        "--cores",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="parallel ffmpeg processes for the baseline and workers for snhoo-dask",
    )
    ap.add_argument(
        "--before",
        type=Path,
        help="a folder holding an older snhoo_dask package: each case also runs it (same CLI, PYTHONPATH)",
    )
    ap.add_argument(
        "--cases", help="a case name, or comma-separated substrings of case names to run (default: all)"
    )
    ap.add_argument(
        "--psnr",
        action="store_true",
        help=f"keep each case's last images of both sides and report min/mean PSNR of snhoo-dask's "
        f"against the baseline's (same frames; at most {PSNR_SAMPLE} per case)",
    )
    ap.add_argument(
        "--json", type=Path, help="where to write the JSON (default benchmarks/results/bench-<time>.json)"
    )
    a = ap.parse_args(argv)
    for tool in ("ffmpeg", "ffprobe", "snhoo-dask", "dask"):
        if not shutil.which(tool):
            ap.error(f"{tool} is not on PATH")
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.time()
    corpus = make_corpus(a.quick)
    todo = cases(a.quick)
    if a.cases:
        # Case names hold commas: a whole case name picks just that case.
        exact = [c for c in todo if c.name == a.cases.strip()]
        keys = [k.strip() for k in a.cases.split(",")]
        todo = exact or [c for c in todo if any(k in c.name for k in keys)]
    compile_packages(a.before)
    load_before = os.getloadavg()
    results = []
    dry = None
    with tempfile.TemporaryDirectory(prefix="snhoo-bench-") as tmp:
        scratch = Path(tmp)
        env_scratch = scratch / "stage"
        os.environ["SNHOO_SCRATCH"] = str(env_scratch)
        if not a.cases or "dry" in a.cases:
            print("  running: dry run", file=sys.stderr, flush=True)
            dry = dry_run(corpus, scratch, a.repeat)
            print(f"    {dry}", file=sys.stderr, flush=True)
        for case in todo:
            print(f"  running: {case.name}", file=sys.stderr, flush=True)
            if case.scheduler:
                with SeparateCluster(scratch) as cl:
                    # No --before here: the workers run this checkout's code, not the old one.
                    r = run_pair(
                        case, corpus, scratch, a.cores, a.repeat, cl.address, cl.worker_pids(), psnr=a.psnr
                    )
            else:
                r = run_pair(
                    case,
                    corpus,
                    scratch,
                    a.cores,
                    a.repeat,
                    before=a.before if case.with_before else None,
                    psnr=a.psnr,
                )
            results.append(r)
            b, s = r["baseline"], r["snhoo-dask"]
            print(
                f"    baseline {b['wall_s']:.2f} s, snhoo-dask {s['wall_s']:.2f} s, ratio {r['ratio']:.2f}x "
                f"(CPU {b['cpu_s']:.1f} s vs {s['cpu_s']:.1f} s, {r['cpu_ratio']:.2f}x)"
                + (f"; before {_before(r)}" if "before" in r else "")
                + (f"; ffmpeg -threads 2 {_threads2(r)}" if THREADS2 in r else "")
                + (f"; PSNR {_psnr_cell(r)}" if "psnr_db" in r else ""),
                file=sys.stderr,
                flush=True,
            )
    report = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine(),
        "quick": a.quick,
        "cores": a.cores,
        "repeat": a.repeat,
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        "memory_method": "psutil RSS sampling every 100 ms of each process in the command's tree "
        "(and the separate cluster's workers); per process, largest single process per role",
        "baseline": f"find ROOT -name '*.mp4' | xargs -P {a.cores} ffmpeg -threads 1 -i V "
        f"-threads 1 [-vf select=...] -vsync 0 -q:v {JPEG_Q_FFMPEG} OUT/%06d.jpg",
        "snhoo": f"snhoo-dask run ROOT --out OUT --quality {JPEG_Q_SNHOO} --workers {a.cores} [selection] "
        "[snhoo_extra]",
        THREADS2: "for one video (cases with it): ffmpeg -threads 2 -i V -threads 2 [-vf select=...] "
        f"-vsync 0 -q:v {JPEG_Q_FFMPEG} OUT/%06d.jpg",
        "psnr": a.psnr,
        "total_seconds": round(time.time() - started, 1),
        "results": results,
        "dry_run": dry,
    }
    path = a.json or RESULTS / f"bench-{'quick-' if a.quick else ''}{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2))
    print(
        f"\n{report['date']}  {report['machine']['cpu']}, {report['machine']['cores']} cores, "
        f"{report['machine']['mem_gib']} GiB; load avg before {report['load_avg_before'][0]}, "
        f"after {report['load_avg_after'][0]}; {'quick' if a.quick else 'full'} corpus, "
        f"{a.repeat} run(s) per side"
    )
    print(fmt_table(results))
    if dry:
        print(
            f"\n--dry-run over {dry['files']} files in {dry['folders']} folders: {dry['wall_s']} s wall, "
            f"{dry['cpu_s']} s CPU, peak RSS {dry['client_peak_rss_mb']} MB"
        )
    print(f"\nPeak memory: {report['memory_method']}.\nJSON: {path}  ({report['total_seconds']} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

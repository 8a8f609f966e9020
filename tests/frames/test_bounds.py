"""Bounds on what one file or one option can make a run do: a header's claimed length, a
picture's size, the report, and options that make no sense.  Real files made by ffmpeg."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
from dataclasses import replace
from fractions import Fraction

import pytest
from helpers import manifest, run_cli, run_on, start_dask, start_serve
from PIL import Image
from videos import make_video

from snhoo_dask.frames.parsing import parse_selection
from snhoo_dask.frames.plans import plan
from snhoo_dask.frames.selection import count_selected
from snhoo_dask.video.probe import VideoInfo, probe

# -- 1. a header that claims a length the file does not hold --------------------------------


def claim_duration(path, raw: float) -> None:
    """Overwrite an MKV's Segment Duration (EBML ID 0x4489, an 8-byte float in TimecodeScale
    units, milliseconds as ffmpeg writes it) with ``raw``: what a forged or damaged header says."""
    data = bytearray(path.read_bytes())
    assert data.count(b"\x44\x89") == 1, "one Duration element"
    at = data.find(b"\x44\x89\x88")
    assert at > 0
    data[at + 3 : at + 11] = struct.pack(">d", raw)
    path.write_bytes(data)


def lying_mkv(root, raw: float):
    """A real 2 s, 25 fps MKV (2.6 KB) whose header claims ``raw`` milliseconds."""
    path = root / "clip.mkv"
    make_video(path, seconds=2, fps=25)
    claim_duration(path, raw)
    return path


INFO = VideoInfo("h264", 64, 48, 25.0, 4.0, 0.0, "yuv420p", Fraction(25), None)


@pytest.mark.timeout(20)
def test_fps_count_is_arithmetic_not_an_enumeration_of_the_claimed_length():
    # The count must match the frames ffmpeg's select picks (the first of each 1/R interval)...
    for fps, rate, frames in [
        ("1", 25, 100),
        ("2", 25, 100),
        ("7", 30, 31),
        ("30000/1001", 60, 7),
        ("3", 4, 1),
    ]:
        step = Fraction(fps) / rate
        wanted = [n for n in range(frames) if n == 0 or (n * step) // 1 > ((n - 1) * step) // 1]
        assert count_selected(parse_selection(fps=fps), Fraction(rate), frames) == len(wanted), (fps, rate)
    # ...and stay instant for a header that claims a trillion seconds (the plain plan takes
    # the header's count as a claim only: length.believable judges it).
    started = time.monotonic()
    p = plan(parse_selection(fps="1"), replace(INFO, duration=1e12))
    assert p.claimed == 25 * 10**12 and p.streaming
    assert count_selected(parse_selection(fps="1"), Fraction(25), 25 * 10**12) == 10**12
    assert time.monotonic() - started < 1
    assert count_selected(parse_selection(every=3), Fraction(25), 2**60 + 1) == (2**60 + 1 + 2) // 3
    assert plan(parse_selection(every=3), replace(INFO, nb_frames=2**60 + 1)).claimed == 100  # by time


@pytest.mark.slow
@pytest.mark.cluster
@pytest.mark.timeout(180)
@pytest.mark.parametrize("spec, frames", [(["--fps", "1"], [0, 25]), ([], list(range(50)))])
def test_a_header_claiming_a_trillion_seconds_neither_hangs_nor_is_believed(
    shared_cluster, tmp_path, spec, frames
):
    root, out = tmp_path / "cam", tmp_path / "out"
    video = lying_mkv(root, 1e15)  # 1e15 ms: 1e12 s, 2.5e13 frames in 2,6 KB
    assert probe(str(video)).duration == 1e12  # the claim reaches the planner as a fact
    res = run_on(shared_cluster, str(root), "--out", str(out), *spec, timeout=60)
    (rec,) = manifest(out)
    # The frames the file holds, and none of the header's numbers passed off as the video's.
    assert res.returncode == 0 and rec["status"] == "ok", rec
    assert rec["frames"] == len(frames)
    assert sorted(os.listdir(out / "cam" / "clip.mkv")) == sorted(
        [f"{i:06d}.jpg" for i in frames] + [".snhoo-done.json", "frames.csv"]
    )
    assert rec["duration"] is None, rec
    assert "truncated" not in (rec["error"] or "")
    assert "header claims 1e+12 s" in " ".join(rec["missing"]), rec


@pytest.mark.slow
@pytest.mark.cluster
@pytest.mark.timeout(180)
@pytest.mark.parametrize("path", [[], ["--decode-all"]], ids=["fast", "plain"])
def test_a_believable_claim_longer_than_the_file_is_still_truncation(shared_cluster, tmp_path, path):
    root, out = tmp_path / "cam", tmp_path / "out"
    lying_mkv(root, 10_000)  # 10 s claimed, 2 s held: what a cut-off copy looks like
    res = run_on(shared_cluster, str(root), "--out", str(out), "--fps", "1", *path)
    (rec,) = manifest(out)
    assert res.returncode == 1 and rec["status"] == "failed"
    # The pictures reach 2 s (50 frames); the fast path tells it from the packets' times.
    assert rec["error"].startswith(
        "truncated: decoded 50 frames, 2.000 s of the 10 s its header states (about 250 frames)"
    ), rec
    assert rec["path"].startswith("plain (--decode-all)" if path else "fast: "), rec["path"]


# -- 2. a picture too large to decode safely ------------------------------------------------


@pytest.fixture(scope="module")
def huge_video(tmp_path_factory):
    """One 16000x16000 H.264 frame (about 50 KB; 256 Mpx, 384 MB once decoded)."""
    root = tmp_path_factory.mktemp("huge") / "cam"
    root.mkdir()
    path = root / "huge.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=gray:s=16000x16000:d=0.04"]
        + ["-c:v", "libx264", str(path)],
        check=True,
    )
    assert path.stat().st_size < 200_000
    return root


def run_measured(*args: str, timeout: float = 120) -> tuple[subprocess.CompletedProcess, int]:
    """``snhoo-dask`` run from a fresh Python process, with the peak RSS (MB) of that run alone
    (its largest process: the CLI with its in-process workers, or an ffmpeg it started)."""
    script = (
        "import resource, subprocess, sys\n"
        "p = subprocess.run(sys.argv[1:])\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024, file=sys.stderr)\n"
        "sys.exit(p.returncode)\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", script, "snhoo-dask", *args], capture_output=True, text=True, timeout=timeout
    )
    return res, int(res.stderr.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_picture_above_max_pixels_fails_before_it_is_decoded(huge_video, tmp_path):
    out = tmp_path / "out"
    res, peak_mb = run_measured("run", str(huge_video), "--out", str(out), "--workers", "1", "-q")
    (rec,) = manifest(out)
    assert res.returncode == 1 and rec["status"] == "failed", res.stderr
    assert rec["error"] == "picture 16000x16000 is 256 Mpx, above --max-pixels 64 Mpx", rec
    assert peak_mb < 400, peak_mb  # 165 MB here; decoding it took 1.4 GB (a frame is 384 MB)
    assert (out / "report.html").exists()
    # The limit is the user's to set: below a small video, that one fails the same way.
    small = tmp_path / "small"
    make_video(small / "a.mp4", seconds=1)
    res = run_cli("run", str(small), "--out", str(tmp_path / "o2"), "--max-pixels", "3000", "--workers", "1")
    (rec,) = manifest(tmp_path / "o2")
    assert res.returncode == 1 and rec["error"] == "picture 64x48 is 3072 px, above --max-pixels 3000 px"


def huge_jpeg(path) -> None:
    """A real 16000x16000 JPEG (1.5 MB; past Pillow's decompression-bomb limit)."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=gray:s=16000x16000"]
        + ["-frames:v", "1", str(path)],
        check=True,
    )


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_report_skips_a_picture_pillow_refuses(tmp_path):
    root, out = tmp_path / "cam", tmp_path / "out"
    make_video(root / "a.mp4", seconds=1)
    make_video(root / "b.mp4", seconds=1)
    res = run_cli("run", str(root), "--out", str(out), "--every", "5", "--workers", "1", "-q")
    assert res.returncode == 0, res.stderr
    huge_jpeg(out / "cam" / "a.mp4" / "000000.jpg")  # e.g. a run with --max-pixels raised
    os.remove(out / "report.html")
    res = run_cli("report", str(out))
    assert res.returncode == 0, res.stderr
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count("data:image/jpeg;base64,") == 2  # a's other frames and b's still make sheets


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_report_that_cannot_be_written_is_said_and_fails_the_run(tmp_path):
    root, out = tmp_path / "cam", tmp_path / "out"
    make_video(root / "a.mp4", seconds=1)
    (out / "report.html.tmp").mkdir(parents=True)  # where the report is written first
    res = run_cli("run", str(root), "--out", str(out), "--workers", "1", "-q")
    warnings = [line for line in res.stderr.splitlines() if line.startswith(("warning:", "report:"))]
    assert warnings == [f"warning: could not write {out}/report.html: File exists"], res.stderr
    assert (out / "report.html.tmp").is_dir()  # a folder that is not ours is never deleted
    assert res.returncode == 1  # the frames are there, a promised file is not
    assert manifest(out)[0]["status"] == "ok"


@pytest.mark.slow
@pytest.mark.cluster
@pytest.mark.timeout(240)
def test_web_jobs_take_max_pixels_and_say_when_the_report_is_missing(tmp_path):
    base, frames = tmp_path / "lab", tmp_path / "frames"
    make_video(base / "cam" / "a.mp4", seconds=1)
    (frames / "broken" / "report.html.tmp").mkdir(parents=True)
    (frames / "broken" / ".snhoo.lock").touch()  # a run's output folder: the web writes into no other
    dask = start_dask(str(tmp_path), n_workers=1)
    svc = start_serve(str(tmp_path), dask.address, [str(base)], [str(frames)], str(tmp_path / "state"))
    try:
        code, reply = svc.call("/api/jobs", "POST", {"roots": ["cam"], "out": "x", "max_pixels": "many"})
        assert (code, reply["field"]) == (400, "max_pixels"), reply
        code, reply = svc.call("/api/jobs", "POST", {"roots": ["cam"], "out": "x", "max_pixels": 0})
        assert (code, reply["field"]) == (400, "max_pixels") and "max pixels must be" in reply["error"], reply
        code, job = svc.call("/api/jobs", "POST", {"roots": ["cam"], "out": "small", "max_pixels": 3000})
        assert code == 201, job
        done = svc.wait_job(job["id"])
        assert done["spec"]["max_pixels"] == 3000  # a resume keeps it
        assert done["videos"][0]["reason"] == "picture 64x48 is 3072 px, above --max-pixels 3000 px"
        code, job = svc.call("/api/jobs", "POST", {"roots": ["cam"], "out": "broken"})
        assert code == 201, job
        done = svc.wait_job(job["id"])
        assert (done["state"], done["ok"], done["has_report"]) == ("done_failures", 1, False), done
        assert done["message"].startswith("could not write ") and "report.html" in done["message"], done
    finally:
        svc.stop()
        dask.stop()


# -- 3. options that cannot mean what they say ----------------------------------------------


def usage_error(res) -> str:
    assert res.returncode == 2, (res.returncode, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("snhoo-dask: error: "), res.stderr
    return lines[0].removeprefix("snhoo-dask: error: ")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--square", "1"], "--square must be from 4 to 16384 pixels, not 1"),
        (["--square", "3"], "--square must be from 4 to 16384 pixels, not 3"),
        (["--max-side", "2"], "--max-side must be from 4 to 16384 pixels, not 2"),
        (["--frames", "1", "--frames", "2"], "--frames given twice"),
        (["--fps", "1", "--fps=2"], "--fps given twice"),
        (["--every", "2", "--every", "2"], "--every given twice"),
        (["-o", "a", "--out", "b"], "--out given twice"),
        (["--max-pixels", "0"], "--max-pixels must be a whole number from 1 to 2147483648, not 0"),
    ],
)
def test_options_that_make_no_sense_are_usage_errors(tmp_path, args, message):
    root = tmp_path / "videos"
    make_video(root / "a.mp4", seconds=1)
    res = run_cli("run", str(root), *args, cwd=tmp_path)
    assert usage_error(res) == message
    assert sorted(os.listdir(tmp_path)) == ["videos"]  # nothing written


def test_an_empty_out_is_refused_not_the_current_folder(tmp_path):
    root = tmp_path / "videos"
    make_video(root / "a.mp4", seconds=1)
    (tmp_path / "here").mkdir()
    res = run_cli("run", str(root), "--out", "", cwd=tmp_path / "here")
    assert usage_error(res) == "--out is empty: name the output folder"
    assert os.listdir(tmp_path / "here") == []


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_the_smallest_square_works_for_every_chroma_layout(tmp_path):
    root, out = tmp_path / "videos", tmp_path / "out"
    for fmt in ("yuv420p", "yuv411p", "yuv410p"):  # 4:1:x chroma is 4 pixels wide
        make_video(root / f"{fmt}.avi", seconds=0.2, codec="rawvideo", extra=["-pix_fmt", fmt])
    res = run_cli("run", str(root), "--out", str(out), "--square", "4", "--workers", "1", "-q")
    assert res.returncode == 0, res.stderr
    recs = manifest(out)
    assert [(r["status"], r["out_width"], r["out_height"]) for r in recs] == [("ok", 4, 4)] * 3
    for r in recs:
        assert Image.open(out / r["out"] / "000000.jpg").size == (4, 4)

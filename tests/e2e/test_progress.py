"""Progress in frames while one long video decodes: the terminal's bar through a real pty,
and the web job's JSON (``progress``, a video ``running`` with its pieces)."""

from __future__ import annotations

import os
import re
import select
import subprocess
import time

import pytest
from helpers import start_dask, start_serve
from videos import ffmpeg

pytestmark = [pytest.mark.slow]

FRAMES = 500  # 20 s at 25 fps


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    """One 20 s 640x360 video: a few seconds of PNG writing on one worker."""
    root = tmp_path_factory.mktemp("long") / "videos"
    root.mkdir()
    source = "testsrc=size=640x360:rate=25"
    ffmpeg("-f", "lavfi", "-i", source, "-t", "20", "-c:v", "libx264", "-preset", "ultrafast",
           "-pix_fmt", "yuv420p", "-g", "25", str(root / "long.mp4"))  # fmt: skip
    return root


def read_pty(args: list[str], timeout: float) -> tuple[bytes, int]:
    """Run ``args`` with a pseudo-terminal as stdin, stdout and stderr; all it wrote, and its status."""
    master, slave = os.openpty()
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    got = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            got += chunk
        return got, proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_the_bar_counts_frames_while_one_long_video_decodes(long_video, tmp_path):
    args = ["snhoo-dask", "run", str(long_video), "--out", str(tmp_path / "out"), "--workers", "1",
            "--split-seconds", "0", "--format", "png", "--dashboard-address", ":0"]  # fmt: skip
    got, status = read_pty(args, timeout=180)
    text = got.decode("utf-8", "replace")
    assert status == 0, text
    # Each redraw: "\r[###...] 213/500 frames, 101 fps, ETA 0:03; 0/1 videos, 0 failed"
    draws = re.findall(r"\r\[[#.]{30}\] ([\d,]+)/([\d,]+) frames([^;\r\n]*); (\d)/1 videos", text)
    during = [(int(done.replace(",", "")), rest) for done, expected, rest, videos in draws if videos == "0"]
    assert all(expected == "500" for _, expected, _, _ in draws), draws
    counts = [done for done, _ in during]
    # Moved in frames before the video's record came in: several counts strictly between.
    middle = sorted({c for c in counts if 0 < c < FRAMES})
    assert len(middle) >= 2, draws
    assert counts == sorted(counts)  # never backwards
    assert any("fps" in rest and "ETA " in rest for done, rest in during if 0 < done < FRAMES), draws
    assert draws[-1][:2] == ("500", "500") and draws[-1][3] == "1"


def test_the_web_job_shows_frames_and_a_running_video_with_its_pieces(long_video, tmp_path):
    dask = start_dask(tmp_path, n_workers=2)
    out_base = tmp_path / "frames"
    out_base.mkdir()
    svc = start_serve(
        str(tmp_path), dask.address, [str(long_video)], [str(out_base)], str(tmp_path / "state")
    )
    try:
        body = {"roots": [str(long_video)], "out": str(out_base / "o"), "format": "png", "split_seconds": 4}
        code, job = svc.call("/api/jobs", "POST", body)
        assert code == 201, job
        seen = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            _, now = svc.call(f"/api/jobs/{job['id']}")
            seen.append(now)
            if now["state"] != "running":
                break
            time.sleep(0.2)
        assert seen[-1]["state"] == "done", seen[-1]
        running = [
            (s["progress"], v) for s in seen if s["progress"] for v in s["videos"] if v["state"] == "running"
        ]
        assert running, [s.get("progress") for s in seen]
        # Mid-video: some frames of the 500 done, and the video's pieces, before its record.
        mid = [(p, v) for p, v in running if 0 < p["frames_done"] < FRAMES]
        assert mid, running
        p, v = mid[-1]
        assert p["frames_expected"] == FRAMES
        assert v["status"] == "queued" and v["pieces"] >= 2 and 0 <= v["pieces_done"] <= v["pieces"]
        assert isinstance(p["rate_fps"], float | type(None)) and isinstance(p["eta_s"], float | type(None))
        assert any(p["rate_fps"] and p["eta_s"] is not None for p, _ in mid), mid
        assert seen[-1]["progress"] is None and seen[-1]["videos"][0]["state"] == "ok"
    finally:
        svc.stop()
        dask.stop()

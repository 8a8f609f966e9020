"""`snhoo-dask run` end to end: real videos, real ffmpeg, real Dask processes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess

import pytest
from helpers import (
    CHROMIUM_ARGS,
    cli_popen,
    frames_csv,
    free_port,
    image_names,
    manifest,
    run_cli,
    run_on,
    run_one,
    wait_until,
)
from videos import frame_number, make_video

# Every test here runs the installed CLI end to end, most on real Dask processes.
pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@pytest.fixture
def one_video(tmp_path):
    """A 4 s, 25 fps video with a key frame every 10 frames."""
    root = tmp_path / "cam"
    make_video(root / "clip.mp4", seconds=4, fps=25, gop=10)
    return root


@pytest.mark.parametrize(
    "spec, expected",
    [
        ([], list(range(100))),
        (["--every", "7"], list(range(0, 100, 7))),
        (["--fps", "2"], [0, 13, 25, 38, 50, 63, 75, 88]),
        (["--frames", "0,1,37,99"], [0, 1, 37, 99]),
        (["--times", "0,1.5,00:00:02.040,3.99"], [0, 37, 51, 99]),
        (["--keyframes"], list(range(0, 100, 10))),
    ],
)
def test_each_frame_mode_writes_exactly_the_selected_frames(
    shared_cluster, one_video, tmp_path, spec, expected
):
    out = tmp_path / "out"
    result = run_on(shared_cluster, str(one_video), "--out", str(out), "--format", "png", *spec)
    assert result.returncode == 0, result.stderr
    folder = out / "cam" / "clip.mp4"
    rows = frames_csv(folder)
    assert [int(r["frame"]) for r in rows] == expected
    assert [float(r["timestamp"]) for r in rows] == pytest.approx([i / 25 for i in expected])
    assert image_names(folder) == [f"{i:06d}.png" for i in expected]
    # The pictures are the right ones, not just the right count (frames below 110 are unique).
    for r in rows:
        assert frame_number(folder / r["file"]) == int(r["frame"])
    (rec,) = manifest(out)
    assert rec["status"] == "ok" and rec["frames"] == len(expected) and rec["error"] is None


def test_frames_past_the_end_are_reported_in_the_record(shared_cluster, one_video, tmp_path):
    out = tmp_path / "out"
    rec = run_one(shared_cluster, one_video, out, "--frames", "5,100,250")
    assert rec["frames"] == 1
    assert rec["missing"] == ["frame 100 (video has 100 frames)", "frame 250 (video has 100 frames)"]


def test_all_requested_frames_past_the_end_is_a_failure_not_a_success(shared_cluster, one_video, tmp_path):
    out = tmp_path / "out"
    result = run_on(shared_cluster, str(one_video), "--out", str(out), "--times", "9,10")
    assert result.returncode == 1
    (rec,) = manifest(out)
    assert rec["status"] == "failed"
    assert "none of the requested frames exist" in rec["error"] and "video lasts 4s" in rec["error"]
    assert not (out / "cam" / "clip.mp4").exists()


def test_layout_manifest_and_names_from_real_labs(shared_cluster, tmp_path):
    disk1, disk2 = tmp_path / "disk1" / "videos", tmp_path / "disk2" / "videos"
    odd = "160811张三测试/test 100% done"
    make_video(disk1 / odd / "a.mp4", seconds=1, fps=10)
    make_video(disk1 / odd / "a.avi", seconds=1, fps=10, codec="mpeg4")
    make_video(disk2 / "B.MKV", seconds=2, fps=10)
    (disk2 / "notes.txt").write_text("not a video")
    out = tmp_path / "out"
    result = run_on(shared_cluster, str(disk1), str(disk2), "--out", str(out))
    assert result.returncode == 0, result.stderr
    # Two roots with the same folder name still get separate output folders.
    names = sorted(os.listdir(out))
    roots = [n for n in names if n.startswith("videos")]
    assert len(roots) == 2 and roots[0] != roots[1]
    recs = {r["video"]: r for r in manifest(out)}
    assert set(recs) == {f"{odd}/a.mp4", f"{odd}/a.avi", "B.MKV"}
    for rel, rec in recs.items():
        assert rec["status"] == "ok" and rec["frames"] == (20 if rel == "B.MKV" else 10)
        folder = out / rec["out"]
        assert len(image_names(folder)) == rec["frames"]
        assert rec["out"].endswith(rel)  # extension kept: a.mp4 and a.avi never collide
        for key in ("root", "worker", "seconds", "codec", "width", "height", "fps", "duration"):
            assert rec[key] is not None, key
    assert recs[f"{odd}/a.avi"]["codec"] == "mpeg4"
    assert recs["B.MKV"]["width"] == 64 and recs["B.MKV"]["height"] == 48 and recs["B.MKV"]["fps"] == 10
    assert {r["worker"] for r in recs.values()} <= {"w0", "w1"}


def make_bad_corpus(root):
    """Good videos beside broken input of every kind: empty, not a video, a broken link, ..."""
    make_video(root / "good1.mp4", seconds=2, fps=10)
    make_video(root / "good2.mkv", seconds=2, fps=10)
    (root / "empty.mp4").write_bytes(b"")
    (root / "notavideo.mp4").write_text("this is a text file\n")
    os.symlink(root / "gone.mp4", root / "missing.mp4")
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=d=1",
            "-c:a",
            "aac",
            str(root / "audio_only.mp4"),
        ],
        check=True,
    )
    # Index at the front, data cut in half: ffprobe is happy, ffmpeg fails half way.
    make_video(root / "full.mp4", seconds=4, fps=25, extra=["-movflags", "+faststart"])
    data = (root / "full.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 2])
    make_video(root / "full.mkv", seconds=4, fps=25)
    data = (root / "full.mkv").read_bytes()
    (root / "cut.mkv").write_bytes(data[: len(data) // 2])
    (root / "full.mp4").unlink()
    (root / "full.mkv").unlink()


BAD_REASONS = {
    "empty.mp4": "the file is empty",
    "notavideo.mp4": "not a readable video: ",
    "missing.mp4": "broken link",
    "audio_only.mp4": "no video stream",
    "truncated.mp4": "truncated: decoded",
    "cut.mkv": "truncated: decoded",
}


def test_bad_videos_fail_with_reasons_while_good_ones_finish(shared_cluster, tmp_path):
    root = tmp_path / "mixed"
    make_bad_corpus(root)
    out = tmp_path / "out"
    erred_before = erred_video_tasks(shared_cluster.address)
    result = run_on(shared_cluster, str(root), "--out", str(out))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    recs = {r["video"]: r for r in manifest(out)}
    assert recs["good1.mp4"]["status"] == "ok" and recs["good1.mp4"]["frames"] == 20
    assert recs["good2.mkv"]["status"] == "ok" and recs["good2.mkv"]["frames"] == 20
    for name, reason in BAD_REASONS.items():
        assert recs[name]["status"] == "failed", name
        assert reason in recs[name]["error"], (name, recs[name]["error"])
        assert recs[name]["frames"] == 0
        assert not (out / "mixed" / name).exists(), f"{name} left an output folder"
        # The failure table names every failed video and its reason.
        assert name in result.stderr
    assert "6 failed of 8 videos" in result.stderr
    assert not (out / ".snhoo-tmp").exists()
    # What the dashboard shows: the scheduler saw the six bad videos' tasks err, not succeed.
    assert erred_video_tasks(shared_cluster.address) - erred_before == 6


def erred_video_tasks(address: str) -> int:
    """How many extract-video tasks the scheduler marked erred (red in the dashboard)."""
    from distributed import Client

    def count(dask_scheduler):
        return len(
            {
                t[0]
                for t in dask_scheduler.transition_log
                if t[2] == "erred" and isinstance(t[0], tuple) and t[0][0].startswith("extract-video-")
            }
        )

    with Client(address, timeout=10) as c:
        return c.run_on_scheduler(count)


@pytest.mark.parametrize(
    "args, message",
    [
        (["/does/not/exist"], "does not exist"),
        (["{file}"], "is neither a folder nor a video file"),
        (["{empty}"], "no videos found"),
        (["{root}", "--frames", "a,b"], "--frames wants frame numbers"),
        (["{root}", "--every", "3", "--keyframes"], "choose one frame selection"),
    ],
)
def test_usage_errors_exit_2_with_one_line(tmp_path, one_video, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("x")
    fill = {"file": str(tmp_path / "file.txt"), "empty": str(tmp_path / "empty"), "root": str(one_video)}
    result = run_cli("run", *[a.format(**fill) for a in args], "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("snhoo-dask: error: ") and message in lines[0]
    assert not (tmp_path / "out" / "manifest.jsonl").exists()


def test_rerun_skips_complete_videos_and_overwrite_redoes_them(shared_cluster, tmp_path):
    root = tmp_path / "cam"
    make_video(root / "a.mp4", seconds=1, fps=10)
    make_video(root / "b.mp4", seconds=1, fps=10)
    out = tmp_path / "out"
    assert run_on(shared_cluster, str(root), "--out", str(out)).returncode == 0
    first = os.stat(out / "cam" / "a.mp4" / "000000.jpg").st_mtime_ns

    again = run_on(shared_cluster, str(root), "--out", str(out))
    assert again.returncode == 0
    second_run = [r for r in manifest(out)][2:]
    assert [r["status"] for r in second_run] == ["skipped", "skipped"]
    assert [r["frames"] for r in second_run] == [10, 10]
    assert os.stat(out / "cam" / "a.mp4" / "000000.jpg").st_mtime_ns == first
    assert "0 ok, 2 skipped, 0 failed" in again.stderr

    # A different selection is different work: it is redone, not skipped.
    other = run_on(shared_cluster, str(root), "--out", str(out), "--every", "5")
    assert [r["status"] for r in manifest(out)[4:]] == ["ok", "ok"]
    assert len(image_names(out / "cam" / "a.mp4")) == 2 and other.returncode == 0

    redo = run_on(shared_cluster, str(root), "--out", str(out), "--every", "5", "--overwrite")
    assert redo.returncode == 0
    assert [r["status"] for r in manifest(out)[6:]] == ["ok", "ok"]


def test_staging_copies_to_scratch_and_no_stage_reads_in_place(shared_cluster, tmp_path):
    root = tmp_path / "cam"
    make_video(root / "a.mp4", seconds=1, fps=10)
    blocked = tmp_path / "scratch-is-a-file"
    blocked.write_text("")
    out = tmp_path / "out"
    # --stage really copies: an unusable scratch folder makes the copy, and so the video, fail.
    staged = run_on(shared_cluster, str(root), "--out", str(out), "--scratch", str(blocked), "--stage")
    assert staged.returncode == 1
    (rec,) = manifest(out)
    assert rec["status"] == "failed" and "could not copy the video to local scratch" in rec["error"]

    # By default a video on a local disk is read in place (only network filesystems are copied).
    auto = run_on(shared_cluster, str(root), "--out", str(out), "--scratch", str(blocked))
    assert auto.returncode == 0
    rec = manifest(out)[-1]
    assert rec["status"] == "ok" and rec["staged"] is False and rec["frames"] == 10

    direct = run_on(
        shared_cluster, str(root), "--out", str(out), "--scratch", str(blocked), "--no-stage", "--overwrite"
    )
    assert direct.returncode == 0
    rec = manifest(out)[-1]
    assert rec["status"] == "ok" and rec["staged"] is False and rec["frames"] == 10

    scratch = tmp_path / "scratch"
    out2 = tmp_path / "out2"
    staged_ok = run_on(shared_cluster, str(root), "--out", str(out2), "--scratch", str(scratch), "--stage")
    assert staged_ok.returncode == 0
    assert manifest(out2)[0]["staged"] is True
    assert os.listdir(scratch) == []  # the local copy is removed after use


def test_dry_run_lists_and_processes_nothing(tmp_path, one_video):
    out = tmp_path / "out"
    result = run_cli("run", str(one_video), "--out", str(out), "--dry-run")
    assert result.returncode == 0
    assert str(one_video / "clip.mp4") in result.stdout
    assert str(out / "cam" / "clip.mp4") in result.stdout
    assert not out.exists()


def test_embedded_local_cluster_and_dashboard_link(tmp_path, one_video):
    out = tmp_path / "out"
    result = run_cli(
        "run",
        str(one_video),
        "--out",
        str(out),
        "--every",
        "10",
        "--workers",
        "2",
        "--dashboard-address",
        "127.0.0.1:0",
    )
    assert result.returncode == 0, result.stderr
    assert "Dask dashboard: http://127.0.0.1:" in result.stderr
    assert "1 ok, 0 skipped, 0 failed of 1 video; 10 images" in result.stderr
    (rec,) = manifest(out)
    assert rec["status"] == "ok" and rec["frames"] == 10


@pytest.mark.timeout(180)
def test_dashboard_link_shows_dasks_status_page_while_the_job_runs(tmp_path):
    """The embedded cluster's dashboard is built on its first visit: the link works all the same."""
    from playwright.sync_api import sync_playwright

    root = tmp_path / "cam"
    first = make_video(root / "c000.mp4", seconds=1, fps=10)
    for i in range(1, 400):  # copies, not links: one task each, so the job outlives the visit
        shutil.copyfile(first, root / f"c{i:03d}.mp4")
    proc = cli_popen(
        "run",
        str(root),
        "--out",
        str(tmp_path / "out"),
        "--workers",
        "1",
        "--dashboard-address",
        f"127.0.0.1:{free_port()}",
        stdout=subprocess.DEVNULL,
    )
    try:
        link = wait_until(lambda: _dashboard_link(proc), 60, "the dashboard link")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1200, "height": 800})
                page.goto(link.rsplit("/", 1)[0] + "/")  # the root leads to the status page
                page.wait_for_selector("canvas", timeout=60_000)  # Bokeh drew Dask's plots
                url, title = page.url, page.title()
                page.screenshot(path=str(tmp_path / "dashboard.png"))
            finally:
                browser.close()
        assert proc.poll() is None, "the job ended before the dashboard was seen"
        assert url == link and "Dask" in title, (url, title)
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130 and "interrupted:" in err, err


def _dashboard_link(proc: subprocess.Popen) -> str | None:
    line = proc.stderr.readline()
    assert line or proc.poll() is None, "snhoo-dask ended before printing the dashboard link"
    return line.split("Dask dashboard: ", 1)[1].strip() if "Dask dashboard: " in line else None


def test_scheduler_from_environment(shared_cluster, tmp_path, one_video):
    out = tmp_path / "out"
    env = dict(os.environ, SNHOO_SCHEDULER=shared_cluster.address)
    result = run_cli("run", str(one_video), "--out", str(out), "--keyframes", env=env)
    assert result.returncode == 0, result.stderr
    assert manifest(out)[0]["worker"] in ("w0", "w1")


def test_longest_videos_start_first(tmp_path):
    """One worker thread runs the tasks one by one: in the order the job gave them."""
    root = tmp_path / "cam"
    lengths = {"b.mp4": 1, "d.mp4": 4, "a.mp4": 2, "c.mp4": 3, "e.mp4": 0.5}
    for name, seconds in lengths.items():
        make_video(root / name, seconds=seconds, fps=10)
    out = tmp_path / "out"
    result = run_cli(
        "run", str(root), "--out", str(out), "--workers", "1", "--dashboard-address", "127.0.0.1:0", "-q"
    )
    assert result.returncode == 0, result.stderr
    assert [r["video"] for r in manifest(out)] == ["d.mp4", "c.mp4", "a.mp4", "b.mp4", "e.mp4"]

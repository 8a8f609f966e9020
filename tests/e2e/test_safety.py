"""Data that must never be lost or replaced, with real runs.

Each test builds the careless or hostile layout on disk, runs the real CLI on real
Dask processes, and checks that every file snhoo-dask did not create is byte for byte
where it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time

import psutil
import pytest
from helpers import manifest, records_by_video, run_cli, run_on, run_one, start_dask
from videos import make_video

pytestmark = pytest.mark.slow


def digest_tree(folder) -> dict[str, str]:
    """Every file under ``folder`` (links not followed) with a hash of its bytes."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, folder)
            if os.path.islink(path):
                found[rel] = "link->" + os.readlink(path)
            else:
                with open(path, "rb") as f:
                    found[rel] = hashlib.sha256(f.read()).hexdigest()
    return found


# -- 1. an output folder that overlaps a root is refused before anything is written ------


@pytest.mark.parametrize("where", ["parent", "same", "inside", "via-link"])
def test_output_overlapping_a_root_is_refused_and_the_video_stays(tmp_path, where):
    videos = tmp_path / "videos"
    make_video(videos / "cam.mp4", seconds=1)
    os.symlink(tmp_path, tmp_path / "alias")
    out = {
        "parent": tmp_path,  # the reported case: the frames folder "videos/cam.mp4" would replace the video
        "same": videos,
        "inside": videos / "frames",
        "via-link": tmp_path / "alias",
    }[where]
    before = digest_tree(videos)
    proc = run_cli("run", str(videos), "--out", str(out), "--workers", "1", "-q", timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("snhoo-dask: error: ") and "root" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert digest_tree(videos) == before
    assert not os.path.exists(out / "manifest.jsonl")


def test_publish_never_replaces_what_snhoo_dask_did_not_make(shared_cluster, tmp_path):
    """A user's own folder or file where a video's output would go is left as it was."""
    root, out = tmp_path / "cam", tmp_path / "out"
    make_video(root / "a.mp4", seconds=1)
    make_video(root / "b.mp4", seconds=1)
    make_video(root / "c.mp4", seconds=1)
    (out / "cam" / "a.mp4").mkdir(parents=True)
    (out / "cam" / "a.mp4" / "notes.txt").write_text("my notes")
    (out / "cam" / "b.mp4").write_bytes(b"a file of the user's")
    before = digest_tree(out)
    proc = run_on(shared_cluster, str(root), "--out", str(out), "--every", "5")
    assert proc.returncode == 1, proc.stderr
    recs = records_by_video(out)
    assert (
        recs["a.mp4"]["status"] == "failed" and "not a finished snhoo-dask output" in recs["a.mp4"]["error"]
    )
    assert (
        recs["b.mp4"]["status"] == "failed" and "not a finished snhoo-dask output" in recs["b.mp4"]["error"]
    )
    assert recs["c.mp4"]["status"] == "ok" and recs["c.mp4"]["frames"] == 5
    after = digest_tree(out)
    for rel, digest in before.items():
        assert after[rel] == digest, rel
    # ... while a finished snhoo-dask folder is replaced when the selection changes.
    proc = run_on(shared_cluster, str(root), "--out", str(out), "--every", "10")
    assert proc.returncode == 1, proc.stderr
    c = out / "cam" / "c.mp4"
    assert sorted(p for p in os.listdir(c) if p.endswith(".jpg")) == [
        "000000.jpg",
        "000010.jpg",
        "000020.jpg",
    ]


# -- 2. a symlink inside OUT is never written or deleted through --------------------------


@pytest.mark.parametrize("link", ["videos", ".snhoo-tmp"], ids=["output-folder", "temp-folder"])
def test_symlink_inside_out_is_never_written_or_swept_through(shared_cluster, tmp_path, link):
    """OUT/videos -> elsewhere (where the frames would go) or OUT/.snhoo-tmp -> elsewhere."""
    root, out, elsewhere = tmp_path / "videos", tmp_path / "out", tmp_path / "elsewhere"
    make_video(root / "cam.mp4", seconds=1)
    (elsewhere / "cam.mp4").mkdir(parents=True)
    (elsewhere / "cam.mp4" / "precious.txt").write_text("do not delete")
    (elsewhere / "old-job").mkdir()
    (elsewhere / "old-job" / "data.bin").write_bytes(b"\0" * 100)
    out.mkdir()
    before = digest_tree(elsewhere)
    again: tuple[str, ...] = ()
    if link == ".snhoo-tmp":
        # In a folder no run has used, a .snhoo-tmp is a user's: the job is refused before
        # any task.  In a run's output folder, the task meets the link and goes no further.
        os.symlink(elsewhere, out / link)
        refused = run_on(shared_cluster, str(root), "--out", str(out))
        assert refused.returncode == 2 and "holds .snhoo-tmp" in refused.stderr, refused.stderr
        os.unlink(out / link)
        assert run_on(shared_cluster, str(root), "--out", str(out)).returncode == 0
        again = ("--overwrite",)
    if not os.path.islink(out / link):
        os.symlink(elsewhere, out / link)
    proc = run_on(shared_cluster, str(root), "--out", str(out), *again)
    assert proc.returncode == 1, proc.stderr
    rec = manifest(out)[-1]
    assert rec["status"] == "failed" and "symbolic link" in rec["error"], rec
    assert digest_tree(elsewhere) == before


# -- 3. a root named like the temp folder -------------------------------------------------


def test_root_named_like_the_temp_folder_keeps_its_frames(shared_cluster, tmp_path):
    root, out = tmp_path / ".snhoo-tmp", tmp_path / "out"
    make_video(root / "cam.mp4", seconds=1)
    rec = run_one(shared_cluster, root, out, "--every", "5")
    assert rec["status"] == "ok" and rec["frames"] == 5
    assert not rec["out"].startswith(".snhoo-tmp/"), rec["out"]
    folder = out / rec["out"]
    assert sorted(p for p in os.listdir(folder) if p.endswith(".jpg")) == [
        f"{i:06d}.jpg" for i in range(0, 25, 5)
    ]
    assert not (out / ".snhoo-tmp").exists()


# -- 5. a worker killed mid-job: nothing runs, writes or republishes after the job ends ---


def _kill_worker_with_results(cluster, out, at_least: int) -> None:
    """SIGKILL one worker process (and its ffmpeg) once ``at_least`` videos are recorded."""
    from distributed import Client

    deadline = time.monotonic() + 120
    with Client(cluster.address, timeout=30) as c:
        while time.monotonic() < deadline:
            has_what = c.has_what()
            held = {w: len(keys) for w, keys in has_what.items() if keys}
            busy = {w: len(tasks) for w, tasks in c.processing().items() if tasks}
            done = len(manifest(out))  # 0 before the first record
            if done >= at_least and (held or busy):
                # A worker holding finished results if any (they must not be redone and
                # republished), else one in the middle of a task.
                victim = max(held, key=held.get) if held else max(busy, key=busy.get)
                pid = c.run(os.getpid, workers=[victim])[victim]
                proc = psutil.Process(pid)
                for p in [proc, *proc.children(recursive=True)]:
                    try:
                        p.send_signal(signal.SIGKILL)
                    except psutil.NoSuchProcess:
                        pass
                return
            time.sleep(0.02)
    raise AssertionError("no worker ever held a finished result")


def _published(out) -> dict[str, int]:
    """Each published video folder with its inode (a republish changes it)."""
    found = {}
    for dirpath, dirnames, _files in os.walk(out):
        if ".snhoo-done.json" in os.listdir(dirpath):
            found[os.path.relpath(dirpath, out)] = os.stat(dirpath).st_ino
            dirnames[:] = []
    return found


@pytest.mark.timeout(300)
def test_killed_worker_leaves_no_task_running_after_the_job(tmp_path):
    root, out = tmp_path / "cam", tmp_path / "out"
    for i in range(6):
        make_video(root / f"v{i}.mp4", seconds=6, size="320x240")
    # One video's task is held as it opens it, so the job cannot end before the kill (on a
    # busy machine the other videos could otherwise all finish between two looks).
    pause = tmp_path / "pause"
    pause.mkdir()
    (pause / "open.hold").write_text("v0.mp4")
    cluster = start_dask(str(tmp_path), 2, worker_env={"SNHOO_PAUSE_DIR": str(pause)})
    try:
        proc = subprocess.Popen(
            ["snhoo-dask", "run", str(root), "--out", str(out), "--every", "3", "-q"]
            + ["--scheduler", cluster.address],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _kill_worker_with_results(cluster, str(out), at_least=1)
        (pause / "open.go").touch()
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        recs = manifest(out)
        assert sorted(r["video"] for r in recs) == [f"v{i}.mp4" for i in range(6)]
        assert all(r["status"] == "ok" and r["frames"] == 50 for r in recs), recs
        published = _published(out)
        assert len(published) == 6
        # Each folder on disk is the one its manifest record describes: a task run again
        # after it was recorded would have swapped in a folder with another finish time.
        for r in recs:
            with open(out / r["out"] / ".snhoo-done.json", encoding="utf-8") as f:
                on_disk = json.load(f)["record"]
            assert (on_disk["finished_at"], on_disk["worker"]) == (r["finished_at"], r["worker"]), r["out"]
        # The job has ended: within a bounded window, no task of it may still run,
        # write into OUT/.snhoo-tmp, or swap a finished folder for a new one.
        from distributed import Client

        with Client(cluster.address, timeout=30) as c:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                busy = {w: ts for w, ts in c.processing().items() if ts}
                assert not busy, f"tasks still running after the job ended: {busy}"
                assert not (out / ".snhoo-tmp").exists(), os.listdir(out / ".snhoo-tmp")
                assert _published(out) == published
                time.sleep(0.25)
    finally:
        cluster.stop()

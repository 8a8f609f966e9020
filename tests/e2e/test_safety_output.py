"""Who may write an output folder: the output disk's own name folding, outputs nested in
outputs, a task of a run that lost the output, resume that looks at the folder, a silent
scheduler, a disk that goes away.

Real CLI, real Dask processes where it matters, a real case-insensitive NTFS volume
(``lowntfs-3g -o ignore_case``) mounted for the test only.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import (
    DaskProcesses,
    cli_popen,
    image_names,
    manifest,
    mount_ntfs,
    records_by_video,
    run_cli,
    run_on,
    start_dask,
    wait_until,
)
from videos import make_video

pytestmark = pytest.mark.slow


def run(*args: str, timeout: float = 180):
    return run_cli("run", *args, "--workers", "1", "-q", timeout=timeout)


@contextlib.contextmanager
def held_cluster(tmp_path: Path, point: str, workers: int) -> Iterator[tuple[DaskProcesses, Path]]:
    """A Dask cluster whose tasks wait at POINT (``worker/pause.py``) while PAUSE/POINT.hold
    is there, and the PAUSE folder; its tasks are let go and it is stopped after."""
    pause = tmp_path / "pause"
    pause.mkdir()
    (pause / f"{point}.hold").touch()
    cluster = start_dask(str(tmp_path), workers, worker_env={"SNHOO_PAUSE_DIR": str(pause)})
    try:
        yield cluster, pause
    finally:
        (pause / f"{point}.go").touch()
        cluster.stop()


def one_error_line(proc) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("snhoo-dask: error: "), proc.stderr
    return lines[0]


@pytest.fixture
def ntfs(tmp_path):
    disk = mount_ntfs(str(tmp_path))
    try:
        yield disk
    finally:
        disk.unmount()


# -- 1. a case-insensitive output disk ---------------------------------------------------------


def test_roots_that_differ_only_in_case_get_distinct_folders_on_a_case_insensitive_disk(tmp_path, ntfs):
    """`r/Vids/Case.mp4` and `r/vids/case.mp4`: one folder held one of them, every run said ok."""
    r, out = tmp_path / "r", os.path.join(ntfs.path, "out")
    make_video(r / "Vids" / "Case.mp4", seconds=1)  # 25 frames: 5 images
    make_video(r / "vids" / "case.mp4", seconds=2)  # 50 frames: 10 images
    first = run(str(r / "Vids"), str(r / "vids"), "--out", out, "--every", "5")
    assert first.returncode == 0, first.stderr
    recs = manifest(out)
    assert sorted((r["video"], r["status"], r["frames"]) for r in recs) == [
        ("Case.mp4", "ok", 5),
        ("case.mp4", "ok", 10),
    ]
    folders = {r["out"] for r in recs}
    assert len({f.casefold() for f in folders}) == 2, folders  # distinct on this disk too
    for rec in recs:
        assert len(image_names(os.path.join(out, rec["out"]))) == rec["frames"], rec["out"]
    again = run(str(r / "Vids"), str(r / "vids"), "--out", out, "--every", "5")
    assert again.returncode == 0, again.stderr
    assert [r["status"] for r in manifest(out)[2:]] == ["skipped", "skipped"]


def test_videos_that_differ_only_in_case_are_refused_on_a_case_insensitive_disk(tmp_path, ntfs):
    root, out = tmp_path / "cam", os.path.join(ntfs.path, "out")
    make_video(root / "Case.mp4", seconds=1)
    make_video(root / "case.mp4", seconds=1)
    make_video(root / "Clip.mp4" / "a.mp4", seconds=1)  # a folder named like a video ...
    make_video(root / "clip.MP4", seconds=1)  # ... whose output folder it would be, in another case
    proc = run(str(root), "--out", out)
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc)
    assert "Case.mp4" in line and "case.mp4" in line and "differ only in case" in line, line
    assert "clip.MP4" in line and "Clip.mp4/a.mp4" in line, line
    assert manifest(out) == []
    # The same videos on a disk that tells the names apart are fine.
    plain = run(str(root), "--out", str(tmp_path / "out"))
    assert plain.returncode == 0, plain.stderr


def test_a_root_named_like_the_manifest_in_another_case_gets_the_suffix(tmp_path, ntfs):
    root, out = tmp_path / "Manifest.JSONL", os.path.join(ntfs.path, "out")
    make_video(root / "a.mp4", seconds=1)
    proc = run(str(root), "--out", out, "--every", "5")
    assert proc.returncode == 0, proc.stderr
    (rec,) = manifest(out)
    assert rec["status"] == "ok" and rec["out"].startswith("Manifest.JSONL-"), rec


# -- 2. an output folder inside, or around, another run's output -------------------------------


def test_an_output_inside_another_runs_output_is_refused(tmp_path):
    a, b, o = tmp_path / "A" / "vids", tmp_path / "B" / "sub", tmp_path / "O"
    make_video(a / "sub" / "x.mp4", seconds=1)
    make_video(b / "x.mp4", seconds=2)
    first = run(str(a), "--out", str(o), "--every", "5")
    assert first.returncode == 0, first.stderr
    before = image_names(o / "vids" / "sub" / "x.mp4")
    for inner in (o / "vids", o / ".snhoo-tmp" / "keep", o / "vids" / "sub" / "x.mp4"):
        proc = run(str(b), "--out", str(inner), "--every", "5")
        assert proc.returncode == 2, proc.stderr
        line = one_error_line(proc)
        assert f"lies inside {o}" in line and "another snhoo-dask run" in line, line
    assert image_names(o / "vids" / "sub" / "x.mp4") == before
    assert not (o / ".snhoo-tmp").exists()
    assert not os.path.exists(o / "vids" / "manifest.jsonl")


def test_an_output_around_another_runs_output_is_refused(tmp_path):
    a, b, p = tmp_path / "A" / "vids", tmp_path / "B" / "sub", tmp_path / "P"
    make_video(a / "sub" / "x.mp4", seconds=1)
    make_video(b / "x.mp4", seconds=2)
    first = run(str(b), "--out", str(p / "vids"), "--every", "5")
    assert first.returncode == 0, first.stderr
    before = sorted(os.listdir(p / "vids"))
    proc = run(str(a), "--out", str(p), "--every", "5")
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc)
    assert f"{p / 'vids'}" in line and "another snhoo-dask run" in line, line
    assert sorted(os.listdir(p / "vids")) == before
    assert len(image_names(p / "vids" / "sub" / "x.mp4")) == 10
    assert manifest(p) == []


# -- 3. a task of a run that no longer holds the output ------------------------------------------


@pytest.mark.timeout(300)
def test_a_task_of_an_interrupted_run_does_not_publish_over_a_newer_run(tmp_path):
    root, out = tmp_path / "cam", tmp_path / "out"
    make_video(root / "a.mp4", seconds=1)
    with held_cluster(tmp_path, "opened", 2) as (cluster, pause):
        old = None
        try:
            old = cli_popen(
                "run", str(root), "--out", str(out), "--every", "5", "--scheduler", cluster.address, "-q"
            )
            wait_until(lambda: (pause / "opened.waiting").exists(), 90, "the first run's task to be held")
            (pause / "opened.hold").unlink()  # only that task is held; the next run's pass
            old.send_signal(signal.SIGINT)
            _, err = old.communicate(timeout=60)
            assert old.returncode == 130, err

            new = run_on(cluster, str(root), "--out", str(out), "--every", "10", timeout=120)
            assert new.returncode == 0, new.stderr
            (rec,) = manifest(out)
            assert rec["status"] == "ok" and rec["frames"] == 3
            folder = out / "cam" / "a.mp4"
            assert image_names(folder) == ["000000.jpg", "000010.jpg", "000020.jpg"]
            done_ino = os.stat(folder).st_ino

            (pause / "opened.go").touch()  # the old run's task goes on, long after its run ended
            from distributed import Client

            with Client(cluster.address, timeout=30) as c:
                # A cancelled task runs on in its worker thread: wait for the threads, not the scheduler.
                def executing(dask_worker) -> int:  # by value: the workers cannot import this module
                    return len(dask_worker.active_threads)

                wait_until(lambda: not any(c.run(executing).values()), 60, "the old task to end", step=0.2)
            assert image_names(folder) == ["000000.jpg", "000010.jpg", "000020.jpg"]  # still the new run's
            assert os.stat(folder).st_ino == done_ino
            with open(folder / ".snhoo-done.json", encoding="utf-8") as f:
                assert json.load(f)["record"]["run"] == rec["run"]
            assert not (out / ".snhoo-tmp").exists() or os.listdir(out / ".snhoo-tmp") == []  # work discarded
        finally:
            if old is not None and old.poll() is None:
                old.kill()
                old.wait()


# -- 4. resume looks at what the folder holds -----------------------------------------------------


def test_resume_redoes_a_finished_folder_whose_images_were_deleted_or_changed(tmp_path):
    root, out = tmp_path / "cam", tmp_path / "out"
    for name in ("a.mp4", "b.mp4", "c.mp4", "d.mp4"):
        make_video(root / name, seconds=1.4)  # 35 frames: 7 images with --every 5
    first = run(str(root), "--out", str(out), "--every", "5")
    assert first.returncode == 0, first.stderr
    full = image_names(out / "cam" / "a.mp4")
    assert len(full) == 7
    for name in full:
        os.unlink(out / "cam" / "a.mp4" / name)  # every image gone
    for name in full[:3]:
        os.unlink(out / "cam" / "b.mp4" / name)  # some gone
    with open(out / "cam" / "c.mp4" / full[-1], "r+b") as f:
        f.truncate(10)  # one cut short
    again = run(str(root), "--out", str(out), "--every", "5")
    assert again.returncode == 0, again.stderr
    by_video = {r["video"]: r for r in manifest(out)[4:]}
    assert {v: r["status"] for v, r in by_video.items()} == {
        "a.mp4": "ok",
        "b.mp4": "ok",
        "c.mp4": "ok",
        "d.mp4": "skipped",
    }
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        assert image_names(out / "cam" / name) == full
        assert os.path.getsize(out / "cam" / name / full[-1]) > 10


def test_a_publish_after_another_run_took_the_output_moves_nothing(tmp_path):
    """The fence itself: a task holding an old token discards its folder with a clear reason."""
    from snhoo_dask.fs.fsafe import create_file
    from snhoo_dask.output.folder import OutputDir, StaleRun, TmpDir, publish, take_over

    with OutputDir(str(tmp_path)) as first:
        fence = take_over(first, "20261204T000000-aaaaaa")
    with OutputDir(str(tmp_path), fence=fence) as out:
        tmp = TmpDir(out)
        os.close(create_file(tmp.fd, "000000.jpg"))
        take_over(out, "20261204T000001-bbbbbb")  # a newer run takes OUT
        with pytest.raises(StaleRun, match=r"this run \(20261204T000000-aaaaaa\) no longer holds the output "
                           r"folder .* \(run 20261204T000001-bbbbbb started on it since\)"):  # fmt: skip
            publish(tmp, (tmp.base, tmp.name), out, "cam/a.mp4", {}, 0)
        tmp.remove()
    assert not (tmp_path / "cam" / "a.mp4").exists()
    assert os.listdir(tmp_path / ".snhoo-tmp") == []


# -- 5. a scheduler that stops answering -------------------------------------------------------


@pytest.mark.timeout(240)
def test_a_frozen_scheduler_is_a_clear_failure_within_30_s(tmp_path):
    """`kill -STOP` of the scheduler: the client hung 95 s and more (a killed one took 11 s)."""
    root, out = tmp_path / "cam", tmp_path / "out"
    make_video(root / "a.mp4", seconds=1)
    make_video(root / "b.mp4", seconds=1)
    with held_cluster(tmp_path, "open", 1) as (cluster, pause):
        proc = None
        try:
            proc = cli_popen("run", str(root), "--out", str(out), "--scheduler", cluster.address, "-q")
            wait_until(lambda: (pause / "open.waiting").exists(), 90, "a task to be held")
            os.kill(cluster.scheduler.pid, signal.SIGSTOP)
            started = time.monotonic()
            _, err = proc.communicate(timeout=90)
            took = time.monotonic() - started
            assert proc.returncode == 1, err
            assert "lost the connection to the Dask scheduler (it stopped answering" in err, err
            assert "2 video(s) unfinished; rerun to resume" in err, err
            assert "Traceback" not in err, err
            assert took < 40, took
            assert manifest(out) == []
        finally:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
            os.kill(cluster.scheduler.pid, signal.SIGCONT)


# -- 6. reasons in words ----------------------------------------------------------------------


@pytest.mark.timeout(240)
def test_an_output_disk_that_goes_away_is_said_in_words(tmp_path, ntfs):
    """The FUSE daemon of the output disk killed while a task is about to write: no
    `[Errno 107]`, no traceback."""
    root, out, pause = tmp_path / "cam", os.path.join(ntfs.path, "out"), tmp_path / "pause"
    make_video(root / "a.mp4", seconds=1)
    pause.mkdir()
    (pause / "opened.hold").touch()
    proc = cli_popen("run", str(root), "--out", out, "--workers", "1", "-q",
                     env=dict(os.environ, SNHOO_PAUSE_DIR=str(pause)))  # fmt: skip
    try:
        wait_until(lambda: (pause / "opened.waiting").exists(), 90, "the task to be held")
        ntfs.proc.kill()
        ntfs.proc.wait()
        (pause / "opened.go").touch()
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, err
    assert "Traceback" not in err and "Errno" not in err, err
    row = next(line for line in err.splitlines() if line.startswith(str(root / "a.mp4")))
    assert "the disk went away (Transport endpoint is not connected)" in row, err
    assert "could not append to" in err and "the disk went away" in err, err


def test_a_video_name_too_long_for_its_tar_fails_with_a_reason(tmp_path):
    root, out = tmp_path / "cam", tmp_path / "out"
    long_name = "v" * 251 + ".mp4"  # 255 bytes: the longest name ext4 allows; +".tar" is not
    make_video(root / long_name, seconds=1)
    make_video(root / "short.mp4", seconds=1)
    proc = run(str(root), "--out", str(out), "--every", "5", "--pack", "tar")
    assert proc.returncode == 1, proc.stderr
    by_video = records_by_video(out)
    assert by_video["short.mp4"]["status"] == "ok"
    failed = by_video[long_name]
    assert failed["status"] == "failed" and failed["frames"] == 0
    assert "259 bytes, more than the 255" in failed["error"] and "--pack folder" in failed["error"], failed
    assert "File name too long" not in failed["error"]
    assert not os.path.exists(out / ".snhoo-tmp")
    folder = run(str(root), "--out", str(tmp_path / "out2"), "--every", "5")  # as folders: fine
    assert folder.returncode == 0, folder.stderr


def test_web_an_output_inside_another_jobs_output_is_refused(tmp_path):
    """The service builds its jobs with the same checks: 400 on the output field."""
    from helpers import start_serve

    base, outs = tmp_path / "base", tmp_path / "outs"
    make_video(base / "vids" / "sub" / "x.mp4", seconds=1)
    outs.mkdir()
    svc = start_serve(str(tmp_path), None, [str(base)], [str(outs)], str(tmp_path / "state"),
                      extra=["--workers", "1", "--dashboard-address", "127.0.0.1:0"])  # fmt: skip
    try:
        status, job = svc.call("/api/jobs", "POST", {"roots": [str(base / "vids")], "out": "o"})
        assert status == 201, job
        assert svc.wait_job(job["id"])["state"] == "done"
        for inner in ("o/vids", "o/vids/sub/x.mp4"):
            status, answer = svc.call("/api/jobs", "POST", {"roots": [str(base / "vids")], "out": inner})
            assert status == 400 and answer["field"] == "out", answer
            assert "another snhoo-dask run" in answer["error"], answer
        assert len(image_names(outs / "o" / "vids" / "sub" / "x.mp4")) == 25
    finally:
        svc.stop()

"""What is read and written is what was checked link swaps in the middle of a run.

Each test holds a real task at a named point (``SNHOO_PAUSE_DIR``, see snhoo_dask/worker/pause.py),
swaps a folder or file for a symbolic link to somewhere else while it waits, then lets it go:
the window is certain, not a sleep.  Real CLI, real web service, real ffmpeg and videos.
"""

from __future__ import annotations

import os

import pytest
from helpers import cli_popen, manifest, run_cli, start_serve, wait_until
from videos import make_video

pytestmark = pytest.mark.slow


def held(pause, point: str) -> str:
    """Wait until a task is held at ``point``; the video it holds."""
    waiting = os.path.join(pause, point + ".waiting")
    wait_until(lambda: os.path.exists(waiting), 90, f"a task held at {point}")
    with open(waiting, encoding="utf-8") as f:
        return f.read()


def release(pause, point: str) -> None:
    open(os.path.join(pause, point + ".go"), "w").close()


_started: list = []


@pytest.fixture(autouse=True)
def _no_run_outlives_its_test():
    yield
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def run_held(tmp_path, point: str, *args: str):
    """``snhoo-dask run`` with its first task held at ``point``; (process, pause folder)."""
    pause = tmp_path / "pause"
    pause.mkdir()
    (pause / f"{point}.hold").touch()
    env = dict(os.environ, SNHOO_PAUSE_DIR=str(pause))
    proc = cli_popen("run", *args, "--workers", "1", "-q", env=env)
    _started.append(proc)
    return proc, str(pause)


def listing(folder) -> list[str]:
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def test_a_folder_swapped_for_a_link_before_the_task_opens_it_fails_and_a_rerun_redoes_it(tmp_path):
    """Unguarded, the outside videos were decoded and recorded ok under the inside names,
    and after swapping back a rerun skipped them."""
    root, outside, out = tmp_path / "root", tmp_path / "outside", tmp_path / "out"
    make_video(root / "sub" / "a.mp4", seconds=1)  # 25 frames
    make_video(outside / "a.mp4", seconds=2)  # 50 frames, same name
    proc, pause = run_held(tmp_path, "open", str(root), "--out", str(out))
    assert held(pause, "open") == "sub/a.mp4"
    os.rename(root / "sub", tmp_path / "hold")
    os.symlink(outside, root / "sub")
    release(pause, "open")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    (rec,) = manifest(out)
    assert rec["status"] == "failed" and rec["frames"] == 0
    assert rec["error"].startswith("changed since discovery: ") and "is a symbolic link" in rec["error"]
    assert not os.path.exists(out / "root" / "sub")  # nothing published under the inside name

    os.unlink(root / "sub")
    os.rename(tmp_path / "hold", root / "sub")
    again = run_cli("run", str(root), "--out", str(out), "--workers", "1", "-q", timeout=120)
    assert again.returncode == 0, again.stderr
    rec = manifest(out)[-1]
    assert rec["status"] == "ok" and rec["frames"] == 25
    assert len([n for n in listing(out / "root" / "sub" / "a.mp4") if n.endswith(".jpg")]) == 25


def test_a_video_replaced_before_the_task_opens_it_fails_as_changed(tmp_path):
    """Not a link this time: another real file moved into the video's place."""
    root, out = tmp_path / "root", tmp_path / "out"
    make_video(root / "a.mp4", seconds=1)
    make_video(tmp_path / "other.mp4", seconds=2)
    proc, pause = run_held(tmp_path, "open", str(root), "--out", str(out))
    held(pause, "open")
    os.replace(tmp_path / "other.mp4", root / "a.mp4")
    release(pause, "open")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    (rec,) = manifest(out)
    assert rec["status"] == "failed"
    assert rec["error"].startswith("changed since discovery (another file is now at its path")
    assert "rerun to process it as it is now" in rec["error"]


def test_a_video_swapped_after_the_task_opened_it_is_still_the_one_read(tmp_path):
    """The descriptor is the video: a swap after the open redirects nothing, the record holds
    the identity of the file read, and a rerun with the original back in place skips it."""
    root, outside, out = tmp_path / "root", tmp_path / "outside", tmp_path / "out"
    make_video(root / "a.mp4", seconds=1)
    make_video(outside / "secret.mp4", seconds=2)
    st = os.stat(root / "a.mp4")
    proc, pause = run_held(tmp_path, "opened", str(root), "--out", str(out))
    held(pause, "opened")
    os.rename(root / "a.mp4", tmp_path / "hold.mp4")
    os.symlink(outside / "secret.mp4", root / "a.mp4")
    release(pause, "opened")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    (rec,) = manifest(out)
    assert rec["status"] == "ok" and rec["frames"] == 25  # the original's 25, not the secret's 50
    assert rec["source"] == f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"

    os.unlink(root / "a.mp4")
    os.rename(tmp_path / "hold.mp4", root / "a.mp4")
    again = run_cli("run", str(root), "--out", str(out), "--workers", "1", "-q", timeout=120)
    assert again.returncode == 0, again.stderr
    assert manifest(out)[-1]["status"] == "skipped"


def test_a_rerun_redoes_a_video_edited_in_place_even_at_the_same_size(tmp_path):
    """Resume compares the identity of the file read, not only its size."""
    root, out = tmp_path / "root", tmp_path / "out"
    video = make_video(root / "a.mp4", seconds=1)
    first = run_cli("run", str(root), "--out", str(out), "--workers", "1", "-q", timeout=120)
    assert first.returncode == 0, first.stderr
    st = os.stat(video)
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # same bytes, new mtime
    again = run_cli("run", str(root), "--out", str(out), "--workers", "1", "-q", timeout=120)
    assert again.returncode == 0, again.stderr
    assert [r["status"] for r in manifest(out)] == ["ok", "ok"]


def test_an_output_parent_swapped_for_a_link_mid_run_writes_nothing_outside(tmp_path):
    """On the command line: OUT's parent renamed away and replaced by a link to another
    folder while a task is about to publish."""
    root, outs, outside = tmp_path / "root", tmp_path / "outs", tmp_path / "outside"
    make_video(root / "a.mp4", seconds=1)
    make_video(root / "b.mp4", seconds=1)
    outside.mkdir()
    (outs / "racedir").mkdir(parents=True)
    proc, pause = run_held(tmp_path, "publish", str(root), "--out", str(outs / "racedir" / "x"))
    held(pause, "publish")
    os.rename(outs / "racedir", outs / "moved")
    os.symlink(outside, outs / "racedir")
    release(pause, "publish")
    _, err = proc.communicate(timeout=120)
    assert listing(outside) == []  # no frame, no folder, no report through the link
    assert proc.returncode == 1, err
    recs = manifest(outs / "moved" / "x")  # the job's OUT, held by descriptor, wherever it went
    by_video = {r["video"]: r for r in recs}
    statuses = sorted(r["status"] for r in recs)
    assert statuses == ["failed", "ok"], recs
    failed = next(r for r in recs if r["status"] == "failed")
    assert "is a symbolic link" in failed["error"], failed
    ok = next(r for r in recs if r["status"] == "ok")
    assert len(listing(outs / "moved" / "x" / "root" / ok["video"])) == 25 + 2  # images, csv, done
    assert set(by_video) == {"a.mp4", "b.mp4"}
    # No report through the link either: the folder there is no run's output (it holds no
    # manifest, report.load_job_manifest), and the run says so as a warning.
    assert f"warning: {outside / 'x'} holds no manifest.jsonl, so it is not the output folder" in err, err


# -- the web service: reads outside --allow, writes outside --out-base ----------------------------


@pytest.fixture
def served(tmp_path):
    base, outs, outside = tmp_path / "base", tmp_path / "outs", tmp_path / "outside"
    for d in (base, outs, outside):
        d.mkdir()
    pause = tmp_path / "pause"
    pause.mkdir()
    (pause / "open.hold").touch()
    svc = start_serve(
        str(tmp_path),
        None,
        [str(base)],
        [str(outs)],
        str(tmp_path / "state"),
        extra=["--workers", "1", "--dashboard-address", "127.0.0.1:0"],
        env={"SNHOO_PAUSE_DIR": str(pause)},
    )
    yield svc, base, outs, outside, str(pause)
    svc.stop()


def test_web_a_video_swapped_for_a_link_outside_allow_is_never_opened(served):
    """Unguarded, the worker opened the link's target (a secret video, /etc/passwd) and the
    sheet then served the outside video's frames."""
    svc, base, outs, outside, pause = served
    make_video(base / "race" / "v29.mp4", seconds=1)
    make_video(base / "race" / "v30.mp4", seconds=1)
    make_video(outside / "secret.mp4", seconds=2)
    status, job = svc.call("/api/jobs", "POST", {"roots": [str(base / "race")], "out": "job-out"})
    assert status == 201, job
    victim = held(pause, "open")
    os.rename(base / "race" / victim, outside / "hold.mp4")
    os.symlink(outside / "secret.mp4", base / "race" / victim)
    release(pause, "open")
    done = svc.wait_job(job["id"], timeout=120)
    assert done["state"] == "done_failures", done
    _, detail = svc.call(f"/api/jobs/{job['id']}")
    by_video = {v["video"]: v for v in detail["videos"]}
    assert by_video[victim]["status"] == "failed"
    assert "changed since discovery" in by_video[victim]["reason"]
    assert "is a symbolic link" in by_video[victim]["reason"]  # refused at the open: never read
    other = ({"v29.mp4", "v30.mp4"} - {victim}).pop()
    assert by_video[other]["status"] == "ok" and by_video[other]["frames"] == 25
    assert not os.path.exists(outs / "job-out" / "race" / victim)
    status, _ = svc.call(f"/jobs/{job['id']}/sheet?v=race/{victim}")
    assert status == 404


def test_web_an_output_parent_swapped_for_a_link_writes_nothing_outside_out_base(served):
    """Unguarded, all frames and report.html landed in /outside/x and the job said ok."""
    svc, base, outs, outside, pause = served
    make_video(base / "race" / "v1.mp4", seconds=1)
    make_video(base / "race" / "v2.mp4", seconds=1)
    (outs / "racedir").mkdir()
    status, job = svc.call("/api/jobs", "POST", {"roots": [str(base / "race")], "out": "racedir/x"})
    assert status == 201, job
    held(pause, "open")
    os.rename(outs / "racedir", outs / "moved")
    os.symlink(outside, outs / "racedir")
    release(pause, "open")
    done = svc.wait_job(job["id"], timeout=120)
    assert listing(outside) == []
    assert done["state"] != "done", done
    _, detail = svc.call(f"/api/jobs/{job['id']}")
    assert all(v["status"] == "failed" for v in detail["videos"]), detail["videos"]
    assert all("is a symbolic link" in v["reason"] for v in detail["videos"]), detail["videos"]

"""A source disk that stops answering: `kill -STOP` of the FUSE daemon serving a root.

A read of a disk whose daemon is stopped blocks in the kernel until it wakes (no error, no
end): task threads waited 130 s and more past ``--timeout``, and SIGTERM was ignored until
the disk answered again.  Real CLI on its embedded cluster (tasks run in its threads), a
real NTFS volume (``lowntfs-3g``) mounted for the test only, the task held at a named point
(``SNHOO_PAUSE_DIR``) while the daemon is stopped.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from helpers import cli_popen, manifest, mount_ntfs, wait_until, waits_on_fuse
from videos import make_video

pytestmark = pytest.mark.slow


@pytest.fixture
def source_disk(tmp_path):
    """An NTFS volume holding the root cam/a.mp4; its daemon woken and unmounted at the end."""
    disk = mount_ntfs(str(tmp_path))
    try:
        make_video(os.path.join(disk.path, "cam", "a.mp4"), seconds=2)
        yield disk
    finally:
        if disk.proc.poll() is None:
            os.kill(disk.proc.pid, signal.SIGCONT)  # the daemon this test started, by its pid
        disk.unmount()


def stopped(pid: int) -> bool:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        return f.read().rpartition(")")[2].split()[0] == "T"


def stuck_on_the_disk(proc) -> None:
    """Wait until the run's task is blocked on the stopped disk (not merely released)."""
    wait_until(
        lambda: waits_on_fuse(proc.pid) or proc.poll() is not None, 30, "the task to block on the disk"
    )


def run_held(tmp_path, disk, point: str, *options: str):
    """``snhoo-dask run`` on the disk's root with its task held at ``point``; (process, OUT, pause)."""
    out, pause = tmp_path / "out", tmp_path / "pause"
    pause.mkdir()
    (pause / f"{point}.hold").touch()
    proc = cli_popen(
        "run", os.path.join(disk.path, "cam"), "--out", str(out), "--workers", "1",
        "--dashboard-address", "127.0.0.1:0", "-q", *options,
        env=dict(os.environ, SNHOO_PAUSE_DIR=str(pause)),
    )  # fmt: skip
    waiting = pause / f"{point}.waiting"
    wait_until(lambda: waiting.exists() or proc.poll() is not None, 90, f"the task to be held at {point}")
    assert proc.poll() is None, proc.communicate()
    return proc, out, pause


def freeze_and_release(disk, pause, point: str) -> float:
    """Stop the disk's daemon, then let the held task go on; the time it went on."""
    os.kill(disk.proc.pid, signal.SIGSTOP)
    wait_until(lambda: stopped(disk.proc.pid), 10, "the FUSE daemon to stop")
    time.sleep(1.5)  # past the kernel's attribute cache (1 s): every look at the file asks the daemon
    (pause / f"{point}.go").touch()
    return time.monotonic()


def finish(proc, timeout: float) -> str:
    try:
        _, err = proc.communicate(timeout=timeout)
    except BaseException:
        proc.kill()  # the run this test started, by its pid
        proc.communicate(timeout=30)
        raise
    return err


def interrupt(proc) -> tuple[str, float]:
    """SIGTERM to the run; what it wrote to stderr and how many seconds it took to end."""
    proc.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    err = finish(proc, 60)
    return err, time.monotonic() - signalled


@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    ("point", "options", "what"),
    [
        ("open", [], "opening it"),
        ("opened", [], "reading its header"),
        ("probed", ["--stage"], "copying it to local scratch"),
        ("probed", ["--no-stage", "--every", "5"], "reading its packets"),
    ],
    ids=["open", "probe", "staging-copy", "packet-scan"],
)
def test_a_source_disk_that_stops_answering_fails_the_video_within_the_timeout(
    tmp_path, source_disk, point, options, what
):
    proc, out, pause = run_held(tmp_path, source_disk, point, "--timeout", "5", *options)
    released = freeze_and_release(source_disk, pause, point)
    err = finish(proc, 60)
    took = time.monotonic() - released
    assert took < 30, (took, err)
    assert proc.returncode == 1, err
    assert "Traceback" not in err, err
    (rec,) = manifest(out)
    assert rec["status"] == "failed" and rec["frames"] == 0, rec
    assert rec["error"] == f"the source disk did not answer for 5 s while {what}", rec
    assert f"the source disk did not answer for 5 s while {what}" in err, err


@pytest.mark.timeout(240)
def test_a_second_interrupt_while_the_cluster_closes_ends_the_run_at_once(tmp_path, source_disk):
    proc, out, pause = run_held(tmp_path, source_disk, "open")
    freeze_and_release(source_disk, pause, "open")
    stuck_on_the_disk(proc)
    proc.send_signal(signal.SIGTERM)
    time.sleep(3)  # the job has stopped (it looks every second); the cluster waits for the task
    assert proc.poll() is None
    err, took = interrupt(proc)
    assert took < 3, (took, err)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "before the job started" not in err, err
    assert "interrupted: 0 of 1 videos finished; rerun the same command to do the rest" in err, err
    assert "interrupted while the cluster was closing; exiting without them" in err, err


@pytest.mark.timeout(240)
@pytest.mark.parametrize("point", ["open", "opened"], ids=["in-open", "in-probe"])
def test_an_interrupt_ends_the_run_while_a_task_waits_on_a_stopped_disk(tmp_path, source_disk, point):
    """Held at ``open``, the task's thread itself then blocks in the kernel (opening the
    video's folder); at ``opened``, it waits out --timeout for its probe's thread."""
    proc, out, pause = run_held(tmp_path, source_disk, point, "--timeout", "300")
    freeze_and_release(source_disk, pause, point)
    stuck_on_the_disk(proc)
    assert proc.poll() is None
    err, took = interrupt(proc)
    assert took < 20, (took, err)
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    assert "interrupted: 0 of 1 videos finished; rerun the same command to do the rest" in err, err
    assert "did not end within 10 s of the interrupt" in err, err
    assert manifest(out) == []

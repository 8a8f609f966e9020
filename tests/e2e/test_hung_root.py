"""A root on a disk that stops answering (its FUSE daemon stopped with SIGSTOP) before any
task starts: the command neither hangs nor ignores Ctrl-C.  One read that does not answer
within $SNHOO_STALL_SECONDS ends it with one line naming the root; Ctrl-C ends it at once
with exit 130."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from helpers import cli_popen, mount_ntfs, wait_until, waits_on_fuse
from videos import make_video

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture
def hung_root(tmp_path):
    """A folder with a video on an NTFS disk whose daemon is stopped; the disk and its
    daemon are given back at the end."""
    disk = mount_ntfs(str(tmp_path / "disk"))
    root = os.path.join(disk.path, "day1")
    make_video(os.path.join(root, "a.mp4"), seconds=1)
    os.kill(disk.proc.pid, signal.SIGSTOP)  # the daemon this test started, by its pid
    time.sleep(1.5)  # past the kernel's attribute cache: every look asks the daemon
    try:
        yield root
    finally:
        os.kill(disk.proc.pid, signal.SIGCONT)
        disk.unmount()


def ended(proc: subprocess.Popen, seconds: float) -> tuple[int | None, str]:
    """The exit status within ``seconds`` (None: still running, then killed) and stderr."""
    try:
        _, err = proc.communicate(timeout=seconds)
        return proc.returncode, err
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        return None, err


def test_a_hung_root_is_reported_within_the_stall_bound(hung_root, tmp_path):
    env = dict(os.environ, SNHOO_STALL_SECONDS="3")
    started = time.monotonic()
    proc = cli_popen("run", hung_root, "--out", str(tmp_path / "out"), "--workers", "1", env=env)
    code, err = ended(proc, 20)
    assert code == 2, (code, err)
    assert time.monotonic() - started < 15
    assert err.strip() == (
        f"snhoo-dask: error: the root {hung_root} does not answer: no reply in 3 s (a disk that hangs?)"
    ), err
    assert not os.path.exists(tmp_path / "out")  # nothing was made


def test_ctrl_c_while_a_root_hangs_exits_130_at_once(hung_root, tmp_path):
    proc = cli_popen("run", hung_root, "--out", str(tmp_path / "out"), "--workers", "1")
    # Well into the hung look (the stall bound, 30 s, is far off): a thread waits on the disk.
    wait_until(lambda: waits_on_fuse(proc.pid) or proc.poll() is not None, 20, "the look to hang")
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    code, err = ended(proc, 10)
    assert code == 130, (code, err)
    assert time.monotonic() - sent < 3
    assert err.strip() == "interrupted; nothing was processed", err

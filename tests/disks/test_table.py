"""The live disk table: state files joined with what each mount point says now, and a disk
that stops answering shown as such within the bound instead of hanging the caller."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from helpers import lab_disk, mount_ntfs, run_cli, touch

from snhoo_dask.cli.disks import render, shown, width
from snhoo_dask.disks.table import NOT_RESPONDING, count_videos, disk_table
from snhoo_dask.jobs.discover import DEFAULT_EXTENSIONS


def test_the_table_counts_each_disks_videos_and_reads_its_space(tmp_path):
    base = tmp_path / "disks"
    a = lab_disk(base, "lab-a", "alpha", "192.0.2.10")
    for rel in (
        "cam/a.mp4",
        "cam/B.MOV",
        "张三 测试/c.mkv",
        "deep/1/2/3/d.ts",
        "notes.txt",
        "cam/a.mp4.json",
    ):
        touch(os.path.join(a, rel))
    outside = tmp_path / "outside"
    touch(outside / "e.mp4")
    touch(outside / "f.mp4")
    os.symlink(outside, os.path.join(a, "link-out"))  # neither followed nor counted
    os.symlink(outside / "e.mp4", os.path.join(a, "e.mp4"))
    lab_disk(base, "lab-b", "beta", "192.0.2.11", state="unplugged", reason="the device went away")
    rows = disk_table(str(base), DEFAULT_EXTENSIONS)
    assert [(r.host, r.name, r.state) for r in rows] == [
        ("lab-a", "alpha", "plugged"),
        ("lab-b", "beta", "unplugged"),
    ]
    alpha, beta = rows
    assert (alpha.videos, alpha.videos_complete) == (4, True)
    vfs = os.statvfs(a)
    assert alpha.size_bytes == vfs.f_blocks * vfs.f_frsize
    assert abs(alpha.free_bytes - vfs.f_bavail * vfs.f_frsize) < 64 << 20
    assert (beta.videos, beta.free_bytes, beta.reason) == (None, None, "the device went away")


def test_a_count_stops_at_its_time_bound(tmp_path):
    for i in range(50):
        touch(tmp_path / f"d{i}" / "a.mp4")
    assert count_videos(str(tmp_path), (".mp4",), seconds=60) == (50, True)
    found, complete = count_videos(str(tmp_path), (".mp4",), seconds=0)
    assert not complete and found < 50


def test_names_are_escaped_and_columns_line_up_on_a_terminal():
    assert shown("evil\nlabel\x1b[31m\u202e") == "evil\\nlabel\\x1b[31m\\u202e"
    assert shown("bad\udcff") == "bad\\xff"
    assert width("张三 disk") == 9


@pytest.mark.slow
def test_a_disk_that_stops_answering_is_shown_not_responding_at_once(tmp_path):
    """``kill -STOP`` of the FUSE daemon serving one disk: every call on it blocks; the
    table still answers within its bound, the other disk shown as usual."""
    base = tmp_path / "disks"
    disk = mount_ntfs(str(base / "lab-a"))
    try:
        lab_disk(base, "lab-a", "ntfs", "192.0.2.10", fstype="ntfs")
        touch(os.path.join(disk.path, "cam", "a.mp4"))
        b = lab_disk(base, "lab-b", "beta", "192.0.2.11")
        touch(os.path.join(b, "b.mp4"))
        os.kill(disk.proc.pid, signal.SIGSTOP)  # the daemon this test started, by its pid
        time.sleep(1.5)  # past the kernel's attribute cache: every look asks the daemon
        for _ in range(2):  # the second call does not start a second stuck read
            started = time.monotonic()
            rows = {r.name: r for r in disk_table(str(base), DEFAULT_EXTENSIONS, wait=1.0)}
            assert time.monotonic() - started < 3
            assert rows["ntfs"].state == NOT_RESPONDING and rows["ntfs"].videos is None
            assert rows["beta"].state == "plugged" and rows["beta"].videos == 1
        assert NOT_RESPONDING in render(list(rows.values()), str(base))
    finally:
        os.kill(disk.proc.pid, signal.SIGCONT)
        disk.unmount()


@pytest.mark.slow
def test_the_disks_command_prints_the_table_and_json(tmp_path):
    base = tmp_path / "disks"
    a = lab_disk(base, "lab-a", "alpha", "192.0.2.10", label="新 disk\n\x1b[2J")
    touch(os.path.join(a, "v.mp4"))
    env = dict(os.environ, SNHOO_DISKS_BASE=str(base))
    res = run_cli("disks", env=env, timeout=60)
    assert res.returncode == 0, res.stderr
    header, line = res.stdout.splitlines()
    assert header.split() == ["HOST", "NAME", "LABEL", "SIZE", "FREE", "STATE", "VIDEOS"]
    assert "新 disk\\n\\x1b[2J" in line and "\x1b" not in res.stdout
    assert line.split()[-2:] == ["plugged", "1"]
    res = run_cli("disks", "--json", env=env, timeout=60)
    assert res.returncode == 0 and "\x1b" not in res.stdout
    (row,) = json.loads(res.stdout)["disks"]
    assert (row["label"], row["videos"], row["state"]) == ("新 disk\n\x1b[2J", 1, "plugged")
    res = run_cli("disks", "--eject", "alpha", env=env, timeout=60)
    assert res.returncode == 1 and res.stderr.startswith(
        "snhoo-dask: error: eject runs on the disk's storage host (cannot read the hot-plug settings"
    )


def test_a_second_look_reads_again_once_the_first_has_answered():
    """A bounded call that answered is not handed to the next caller of its key (a folder
    plugged in between two looks is seen by the second): every look here reads anew."""
    from snhoo_dask.fs.bounded import bounded

    seen = [bounded(("look", "again"), lambda i=i: i, 5.0) for i in range(2000)]
    assert seen == list(range(2000))

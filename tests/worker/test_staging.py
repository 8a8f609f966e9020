"""Which videos are copied to scratch by default: those on network filesystems only.

NFS and SMB cannot be mounted on this test machine (no kernel modules), so the network
cases read a mountinfo text as the kernel writes it; the local case reads the real one.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from snhoo_dask.fs import mounts
from snhoo_dask.fs.mounts import filesystem_type, parse_mountinfo, should_stage
from snhoo_dask.worker.staging import Read, how_to_read

MOUNTINFO = """\
22 27 4095:1021 / /proc rw,relatime - proc proc rw
27 1 4095:1001 / / rw,relatime - ext4 /dev/vda1 rw
40 27 4095:1045 / /srv/videos rw,relatime - nfs4 fileserver:/export/videos rw,vers=4.2
41 40 4095:1017 / /srv/videos/usb\\0401 rw,relatime - ext4 /dev/sdb1 rw
42 27 4095:1046 / /mnt/share rw,relatime - cifs //nas/share rw
43 27 4095:1047 / /mnt/ssh rw,relatime - fuse.sshfs lab@host: rw
44 27 4095:1033 / /mnt/usb-ntfs rw,relatime - fuseblk /dev/sdc1 rw
"""


def test_mountinfo_is_read_with_escaped_mount_points():
    mounts = parse_mountinfo(MOUNTINFO)
    assert ("4095:1017", "/srv/videos/usb 1", "ext4") in mounts
    assert len(mounts) == 7


@pytest.mark.parametrize(
    "path, fstype, staged",
    [
        ("/srv/videos/day1/a.mp4", "nfs4", True),
        ("/srv/videos/usb 1/a.mp4", "ext4", False),  # a local disk mounted inside the share
        ("/mnt/share/a.mp4", "cifs", True),
        ("/mnt/ssh/a.mp4", "fuse.sshfs", True),
        ("/mnt/usb-ntfs/a.mp4", "fuseblk", False),
        ("/home/lab/a.mp4", "ext4", False),
    ],
)
def test_network_filesystems_are_staged_and_local_disks_are_not(tmp_path, monkeypatch, path, fstype, staged):
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    video = tmp_path / "a.mp4"
    video.write_bytes(b"x")
    # The sample's device numbers (major 4095) are none a file made here has, so the longest
    # mount point holding the path decides, as it does for btrfs subvolumes.
    monkeypatch.setattr(os.path, "realpath", lambda p: path)
    monkeypatch.setattr(mounts, "MOUNTINFO", str(info))
    assert filesystem_type(str(video)) == fstype
    assert should_stage(str(video), "auto") is staged
    assert should_stage(str(video), "always") is True
    assert should_stage(str(video), "never") is False


def test_the_real_filesystem_of_a_local_file_is_found(tmp_path):
    video = tmp_path / "a.mp4"
    video.write_bytes(b"x")
    want = subprocess.run(
        ["findmnt", "-n", "-o", "FSTYPE", "--target", str(video)], capture_output=True, text=True, check=True
    ).stdout.split()[0]
    assert filesystem_type(str(video)) == want
    assert should_stage(str(video), "auto") is (want.startswith("fuse") or want in ("nfs", "nfs4", "cifs"))


def test_an_unreadable_path_is_staged_to_be_safe(tmp_path):
    assert filesystem_type(str(tmp_path / "gone.mp4")) is None
    assert should_stage(str(tmp_path / "gone.mp4"), "auto") is True


def test_the_command_line_flags_map_to_modes(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from snhoo_dask.cli import commands

    seen = []
    monkeypatch.setattr(
        commands, "dry_run_command", lambda job, list_all=False: seen.append(job.settings.stage) or 0
    )
    for flags in ([], ["--stage"], ["--no-stage"]):
        (tmp_path / "v").mkdir(exist_ok=True)
        (tmp_path / "v" / "a.mp4").write_bytes(b"")  # discovery only: no video is read
        args = ["run", str(tmp_path / "v"), "--out", str(tmp_path / "o"), *flags, "--dry-run"]
        assert CliRunner().invoke(commands.main, args).exit_code == 0
    assert seen == ["auto", "always", "never"]


@pytest.mark.parametrize(
    "here, mode, staged, local",
    [
        ("192.0.2.10", "auto", False, True),  # a worker on the disk's own host reads in place
        ("192.0.2.11", "auto", True, False),  # another reaches it over NFS: a copy first
        ("192.0.2.11", "never", False, False),
        ("192.0.2.10", "always", True, True),
    ],
)
def test_a_lab_disk_is_read_in_place_on_its_own_host_only(tmp_path, here, mode, staged, local):
    video = tmp_path / "a.mp4"  # a local file: the host addresses decide, not the mount table
    video.write_bytes(b"x")
    read = how_to_read(str(video), "192.0.2.10", mode, here)
    assert (read.staged, read.read_on, read.local) == (staged, here, local)


def test_off_a_lab_disk_the_mount_table_decides(tmp_path, monkeypatch):
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    video = tmp_path / "a.mp4"
    video.write_bytes(b"x")
    monkeypatch.setattr(mounts, "MOUNTINFO", str(info))
    monkeypatch.setattr(os.path, "realpath", lambda p: "/srv/videos/day1/a.mp4")
    assert how_to_read(str(video), None, "auto", "192.0.2.11") == Read(True, "192.0.2.11", False)
    monkeypatch.setattr(os.path, "realpath", lambda p: "/home/lab/a.mp4")
    assert how_to_read(str(video), None, "auto", None) == Read(False, None, True)
    assert how_to_read(str(tmp_path / "gone.mp4"), None, "auto", None) == Read(True, None, None)

"""The hot-plug unit's program on real block devices: loop devices holding real ext4 and
NTFS filesystems, mounted and unmounted by the real mount(8).  The one stand-in is
``exportfs`` (this kernel has no NFS server): a script that records how it was called and
the drop-ins it would have read.  The unit itself, under systemd, is proven by the
container lab (tests/ansible/test_cluster.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
from helpers import lab_disk, run_cli

from snhoo_dask.disks.hotplug import Config, export_line
from snhoo_dask.disks.state import read_folder

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("losetup") is None or shutil.which("mkfs.ext4") is None,
    reason="needs root, losetup and mkfs.ext4 (loop devices and mount)",
)
HOST = "storage2"
BUSY = os.path.join(
    os.path.dirname(__file__), "..", "..", "ansible", "roles", "snhoo_common", "files", "snhoo-dask-busy"
)


def sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=60).stdout.strip()


def wait_for(what, check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)
    return result


class Lab:
    def __init__(self, tmp):
        self.tmp = tmp
        self.base = str(tmp / "disks")
        self.exports = str(tmp / "exports.d")
        self.log = str(tmp / "exportfs.log")
        self.loops: list[str] = []
        self.procs: list[subprocess.Popen] = []
        stub = tmp / "exportfs"
        # What exportfs -r would read: every drop-in, recorded at the moment it was called.
        stub.write_text(
            "#!/bin/sh\n"
            f'{{ echo "ARGS $*"; cat {self.exports}/*.exports 2>/dev/null; echo END; }} >> {self.log}\n'
        )
        stub.chmod(0o755)
        busy = tmp / "snhoo-dask-busy"  # as snhoo_common installs it
        shutil.copy(BUSY, busy)
        busy.chmod(0o755)
        config = {
            "host": HOST,
            "address": "192.0.2.20",
            "base": self.base,
            "labels": ["SNHOO*"],
            "uuids": [],
            "listed": ["LISTEDDISK"],
            "clients": ["192.0.2.11", "192.0.2.12"],
            "exports_dir": self.exports,
            "exportfs": [str(stub)],
            "mount_options": {"ntfs": "uid=0,gid=0,umask=0022"},
        }
        (tmp / "hotplug.json").write_text(json.dumps(config))
        self.env = dict(
            os.environ,
            SNHOO_HOTPLUG_CONFIG=str(tmp / "hotplug.json"),
            SNHOO_HOTPLUG_LOCK=str(tmp / "lock"),
            SNHOO_DISKS_BASE=self.base,
            SNHOO_BUSY_COMMAND=str(busy),
        )
        self.config = Config.load(self.env["SNHOO_HOTPLUG_CONFIG"])

    def disk(self, label: str, files=("cam/a.mp4",), fstype="ext4") -> str:
        img = str(self.tmp / f"disk{len(self.loops)}.img")
        sh("truncate", "-s", "32M", img)
        if fstype == "ext4":
            sh("mkfs.ext4", "-q", "-L", label, img)
        else:
            sh("mkfs.ntfs", "-Q", "-q", "-F", "-L", label, img)
        loop = sh("losetup", "--find", "--show", img)
        self.loops.append(loop)
        mnt = self.tmp / f"fill{len(self.loops)}"
        mnt.mkdir()
        sh("mount", *(["-t", "ntfs-3g"] if fstype == "ntfs" else []), loop, str(mnt))
        try:
            for rel in files:
                (mnt / rel).parent.mkdir(parents=True, exist_ok=True)
                (mnt / rel).write_bytes(b"x")
        finally:
            sh("umount", str(mnt))
        return os.path.basename(loop)

    def attach(self, kernel_name: str) -> subprocess.Popen:
        """The unit's ExecStart: attach, then watch the device."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "snhoo_dask", "disks", "--attach", kernel_name],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.procs.append(proc)
        return proc

    def state(self, kernel_name: str):
        found = [
            s for s in read_folder(self.config.state_dir, self.base) if s.device == f"/dev/{kernel_name}"
        ]
        return found[-1] if found else None

    def wait_state(self, kernel_name: str, state: str, timeout=15.0):
        return wait_for(
            f"/dev/{kernel_name} {state}",
            lambda: (s := self.state(kernel_name)) is not None and s.state == state and s,
            timeout,
        )

    def exportfs_calls(self) -> list[tuple[str, str]]:
        if not os.path.exists(self.log):
            return []
        calls = []
        for chunk in open(self.log, encoding="utf-8").read().split("END\n"):
            if chunk.startswith("ARGS "):
                args, _, files = chunk.partition("\n")
                calls.append((args[5:], files))
        return calls

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                p.wait(10)
        for line in open("/proc/self/mounts", encoding="utf-8"):
            point = line.split()[1]
            if point.startswith(str(self.tmp)):
                subprocess.run(["umount", "-l", point], check=False)
        for loop in self.loops:
            subprocess.run(["blockdev", "--setrw", loop], check=False)
            subprocess.run(["losetup", "-d", loop], check=False)


def options(point: str) -> list[str]:
    return sh("findmnt", "-n", "-o", "OPTIONS", "--mountpoint", point).split(",")


def test_a_plugged_disk_is_mounted_read_only_exported_listed_then_unplugged(lab):
    k = lab.disk("SNHOO 张/../x")
    proc = lab.attach(k)
    disk = lab.wait_state(k, "plugged")
    # The label made one safe name under this host's folder.
    assert disk.mountpoint == os.path.join(lab.base, HOST, "SNHOO_张_x") and disk.label == "SNHOO 张/../x"
    assert {"ro", "nosuid", "nodev", "noexec"} <= set(options(disk.mountpoint))
    assert open(f"/sys/class/block/{k}/ro").read().strip() == "1"  # the device itself
    with pytest.raises(OSError):
        open(os.path.join(disk.mountpoint, "new.txt"), "w")
    dropin = os.path.join(lab.exports, "snhoo-disk-SNHOO_张_x.exports")
    line = [ln for ln in open(dropin, encoding="utf-8") if not ln.startswith("#")]
    assert line == [export_line(lab.config, disk)]
    path, *clients = line[0].split()
    assert path == disk.mountpoint and [c.split("(")[0] for c in clients] == ["192.0.2.11", "192.0.2.12"]
    assert all(c.split("(")[1].startswith("ro,root_squash,") for c in clients)
    # Exports reloaded with -r (never a server restart), the drop-in in place when it ran.
    assert lab.exportfs_calls() == [("-r", open(dropin, encoding="utf-8").read())]
    res = run_cli("disks", "--json", env=lab.env, timeout=60)
    (row,) = json.loads(res.stdout)["disks"]
    assert (row["host"], row["name"], row["state"], row["videos"]) == (HOST, "SNHOO_张_x", "plugged", 1)

    sh("losetup", "-d", f"/dev/{k}")  # pulled out: the loop device goes when unmounted
    gone = lab.wait_state(k, "unplugged", timeout=5)
    assert "detached" in gone.reason
    assert proc.wait(10) == 0
    assert not os.path.ismount(disk.mountpoint) and not os.path.exists(dropin)
    assert lab.exportfs_calls()[-1] == ("-r", "")
    res = run_cli("disks", "--json", env=lab.env, timeout=60)
    assert [r["state"] for r in json.loads(res.stdout)["disks"]] == ["unplugged"]


def test_two_disks_with_one_label_get_two_names_and_the_rule_refuses_others(lab):
    a, b = lab.disk("SNHOO-CAM"), lab.disk("SNHOO-CAM", fstype="ntfs")
    other, listed = lab.disk("HOLIDAYS"), lab.disk("LISTEDDISK")
    lab.attach(a)
    first = lab.wait_state(a, "plugged")
    lab.attach(b)
    second = lab.wait_state(b, "plugged")
    assert first.name == "SNHOO-CAM" and second.name.startswith("SNHOO-CAM-") and second.fstype == "ntfs"
    assert os.path.isfile(os.path.join(second.mountpoint, "cam", "a.mp4"))
    assert lab.attach(other).wait(30) == 0
    refused = lab.state(other)
    assert refused.state == "refused" and "rule" in refused.reason
    assert not os.path.exists(refused.mountpoint)
    # A disk of snhoo_disks_list is fstab's: no state, no mount.
    assert lab.attach(listed).wait(30) == 0 and lab.state(listed) is None
    names = sorted(os.listdir(lab.exports))
    assert names == sorted(f"snhoo-disk-{n}.exports" for n in (first.name, second.name))


def test_eject_refuses_while_the_disk_is_used_then_ejects(lab):
    k = lab.disk("SNHOOEJECT")
    lab.attach(k)
    disk = lab.wait_state(k, "plugged")
    holder = subprocess.Popen(["sleep", "60"], cwd=disk.mountpoint)
    try:
        res = run_cli("disks", "--eject", disk.name, env=lab.env, timeout=60)
        assert res.returncode == 1 and "still in use" in res.stderr and "sleep" in res.stderr, res.stderr
        assert os.path.ismount(disk.mountpoint) and lab.state(k).state == "plugged"
    finally:
        holder.kill()
        holder.wait()
    res = run_cli("disks", "--eject", disk.name, env=lab.env, timeout=60)
    assert res.returncode == 0 and "ejected" in res.stdout, res.stderr
    ejected = lab.state(k)
    assert ejected.state == "ejected" and not os.path.ismount(disk.mountpoint)
    assert os.listdir(lab.exports) == [] and lab.exportfs_calls()[-1] == ("-r", "")
    res = run_cli("disks", "--eject", "nosuchdisk", env=lab.env, timeout=60)
    assert res.returncode == 1 and "no hot-plugged disk 'nosuchdisk'" in res.stderr


def test_at_boot_a_disk_that_was_plugged_before_is_marked_unplugged(lab):
    point = lab_disk(lab.base, HOST, "SNHOO-OLD", "192.0.2.20")  # its state says plugged
    res = run_cli("disks", "--forget-stale", env=lab.env, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    (old,) = read_folder(lab.config.state_dir, lab.base)
    assert (old.mountpoint, old.state) == (point, "unplugged") and "since the host started" in old.reason

"""Two real disks (loop devices holding ext4 with real videos) attached by the hot-plug
program, a real ``snhoo-dask serve`` reading them: one is pulled out (its loop device
detached), the web's disk list says so within seconds, a job on it is refused with the
reason and a run of the command line on it fails with one line, while a job on the other
disk completes with its frames; then the web's eject of that one, refused while a process
sits in it, done once it has gone.  (What udev and NFS add is the container lab's and a real
lab's to prove: docs/deploy.md.)"""

from __future__ import annotations

import os
import subprocess

import pytest
from helpers import run_cli, start_embedded_serve
from test_hotplug import Lab, sh, wait_for  # the loop-device lab of the hot-plug tests
from videos import make_video

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        os.geteuid() != 0 or subprocess.run(["which", "losetup"], capture_output=True).returncode != 0,
        reason="needs root and losetup (loop devices and mount)",
    ),
]


def disk_with_videos(lab: Lab, label: str, src) -> str:
    """An ext4 image made from the folder ``src`` (``mkfs.ext4 -d``) on a loop device; its
    kernel name (``loop3``), as udev would pass it."""
    img = str(lab.tmp / f"{label}.img")
    sh("truncate", "-s", "32M", img)
    sh("mkfs.ext4", "-q", "-L", label, "-d", str(src), img)
    loop = sh("losetup", "--find", "--show", img)
    lab.loops.append(loop)
    return os.path.basename(loop)


def two_disks_served(lab: Lab):
    """Disks SNHOO-one and SNHOO-two made from lab.tmp/src-one and src-two, attached and
    plugged, and a real ``serve`` allowed to read them: (loop names, their disks, the
    output base, the service)."""
    k1 = disk_with_videos(lab, "SNHOO-one", lab.tmp / "src-one")
    k2 = disk_with_videos(lab, "SNHOO-two", lab.tmp / "src-two")
    lab.attach(k1)
    lab.attach(k2)
    one, two = lab.wait_state(k1, "plugged"), lab.wait_state(k2, "plugged")
    frames = lab.tmp / "frames"
    frames.mkdir()
    env = {k: lab.env[k] for k in ("SNHOO_DISKS_BASE", "SNHOO_HOTPLUG_CONFIG", "SNHOO_BUSY_COMMAND")}
    svc = start_embedded_serve(str(lab.tmp), [lab.base], [str(frames)], env=env)
    return k1, k2, one, two, frames, svc


def test_a_pulled_disk_is_listed_unplugged_and_its_job_fails_with_a_reason_while_the_other_runs(lab):
    for name in ("one", "two"):
        make_video(str(lab.tmp / f"src-{name}" / "cam" / "a.mp4"), seconds=1)
    k1, k2, one, two, frames, svc = two_disks_served(lab)
    try:

        def disks() -> dict:
            status, answer = svc.call("/api/disks")
            assert status == 200, answer
            return {d["name"]: d for d in answer["disks"]}

        assert {n: (d["state"], d["videos"]) for n, d in disks().items()} == {
            "SNHOO-one": ("plugged", 1),
            "SNHOO-two": ("plugged", 1),
        }
        sh("losetup", "-d", f"/dev/{k1}")  # pulled out, no eject
        wait_for("the web's list to say unplugged", lambda: disks()["SNHOO-one"]["state"] == "unplugged", 5)
        assert disks()["SNHOO-two"]["state"] == "plugged"

        status, refused = svc.call("/api/jobs", "POST", {"roots": [one.mountpoint], "out": "from-one"})
        assert status in (400, 403, 409), refused
        assert "on disk SNHOO-one of storage2, which is unplugged" in refused["error"], refused
        assert not (frames / "from-one").exists()
        res = run_cli("run", one.mountpoint, "--out", str(frames / "cli-one"), env=lab.env, timeout=120)
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert "on disk SNHOO-one of storage2, which is unplugged" in res.stderr
        assert "Traceback" not in res.stderr and not (frames / "cli-one").exists()

        status, job = svc.call("/api/jobs", "POST", {"roots": [two.mountpoint], "out": "from-two"})
        assert status == 201, job
        done = svc.wait_job(job["id"], timeout=120)
        assert done["state"] == "done" and done["ok"] == 1 and done["failed"] == 0, done
        assert [
            n for n in os.listdir(frames / "from-two" / "SNHOO-two" / "cam" / "a.mp4") if n.endswith(".jpg")
        ]

        # The web's Eject: refused while a process sits in the disk (named), then done.
        sitter = subprocess.Popen(["sleep", "60"], cwd=two.mountpoint)
        try:
            status, answer = svc.call("/api/disks/eject", "POST", {"name": "SNHOO-two"})
            assert status == 409 and "still in use" in answer["error"] and "sleep" in answer["error"], answer
            assert os.path.ismount(two.mountpoint)
        finally:
            sitter.kill()
            sitter.wait()
        status, answer = svc.call("/api/disks/eject", "POST", {"name": "SNHOO-two"})
        assert status == 200 and "ejected" in answer["message"], answer
        assert not os.path.ismount(two.mountpoint)
        assert disks()["SNHOO-two"]["state"] == "ejected"
        status, answer = svc.call("/api/disks/eject", "POST", {"name": "SNHOO-one"})
        assert status == 409 and "not plugged" in answer["error"], answer
    finally:
        svc.stop()


def test_a_disk_pulled_out_while_its_job_runs_fails_what_it_could_not_read_with_a_reason(lab):
    for i in range(12):
        make_video(str(lab.tmp / "src-one" / "cam" / f"v{i:02d}.mp4"), seconds=4, size="320x240")
    make_video(str(lab.tmp / "src-two" / "cam" / "a.mp4"), seconds=1)
    k1, k2, one, two, frames, svc = two_disks_served(lab)
    try:
        status, job = svc.call("/api/jobs", "POST", {"roots": [one.mountpoint], "out": "from-one"})
        assert status == 201, job
        wait_for("the first video done", lambda: svc.call(f"/api/jobs/{job['id']}")[1]["ok"] >= 1, 60)
        sh("losetup", "-d", f"/dev/{k1}")  # pulled out mid-job
        status, other = svc.call("/api/jobs", "POST", {"roots": [two.mountpoint], "out": "from-two"})
        assert status == 201, other
        done = svc.wait_job(job["id"], timeout=180)
        assert svc.wait_job(other["id"], timeout=120)["ok"] == 1
        _, rows = svc.call(f"/api/jobs/{job['id']}")
        videos = rows["videos"]
        assert len(videos) == 12 and done["state"] == "done_failures", done
        failed = [v for v in videos if v["status"] == "failed"]
        assert failed and all(v["reason"] for v in failed), failed
        for v in videos:
            assert v["status"] in ("ok", "failed"), v
            if v["status"] == "ok":  # done before it went, or read from what was open: all there
                out = frames / "from-one" / "SNHOO-one" / "cam" / os.path.basename(v["out_rel"])
                assert len([n for n in os.listdir(out) if n.endswith(".jpg")]) == 100, v
    finally:
        svc.stop()

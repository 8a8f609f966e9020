"""Work runs where the disk is: a video on a disk of storage host H is read in place by a
worker on H, and staged by another worker only when H's are busy or gone.

One machine stands for two: real ``dask worker`` processes bound to 127.0.0.2 ("lab-a") and
127.0.0.3 ("lab-b"), the scheduler on 127.0.0.1, and a disk of each host as a folder under a
disks base with its state file naming the host's address (what the hot-plug unit writes).
"""

from __future__ import annotations

import os

import pytest
from distributed import Client
from helpers import lab_disk, manifest, run_cli, start_dask, wait_until
from videos import X264_GOP_25, encode, make_video

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

A, B = "127.0.0.2", "127.0.0.3"


@pytest.fixture
def lab(tmp_path):
    """Two hosts' disks, two short clips each; a worker of two threads on each host."""
    base = tmp_path / "disks"
    disks = {A: lab_disk(base, "lab-a", "alpha", A), B: lab_disk(base, "lab-b", "beta", B)}
    for point in disks.values():
        for name in ("one.mp4", "two.mp4"):
            make_video(os.path.join(point, "cam", name), seconds=1)
    dask = start_dask(str(tmp_path), hosts=[A, B], nthreads=2)
    try:
        yield base, disks, dask
    finally:
        dask.stop()


def run(base, dask, out, *roots: str, extra: tuple[str, ...] = ()) -> dict[str, dict]:
    env = dict(os.environ, SNHOO_DISKS_BASE=str(base))
    r = run_cli("run", *roots, "--out", str(out), "--scheduler", dask.address, "-q", *extra, env=env)
    assert r.returncode == 0, r.stderr
    return {os.path.join(rec["root"], rec["video"]): rec for rec in manifest(out)}


def test_each_video_is_read_in_place_on_its_disks_host(lab, tmp_path):
    base, disks, dask = lab
    # As many videos per host as its worker has threads: none waits, so none is taken by
    # the other host's idle worker (which Dask may do, and should, when one host is busy).
    records = run(base, dask, tmp_path / "out", *disks.values(), extra=("--split-seconds", "0"))
    assert len(records) == 4
    for path, rec in records.items():
        host = A if path.startswith(disks[A]) else B
        assert rec["status"] == "ok" and rec["frames"] == 25, rec
        assert (rec["read_on"], rec["local"], rec["staged"]) == (host, True, False), rec


def test_a_hosts_videos_go_to_the_other_host_when_its_workers_are_gone(lab, tmp_path):
    base, disks, dask = lab
    # A long video on each disk too: cut into pieces, each piece is read where it runs.
    for point in disks.values():
        encode(os.path.join(point, "long", "long.mp4"), *X264_GOP_25, seconds=8)
    dask.workers[0].terminate()
    dask.workers[0].wait(timeout=30)
    with Client(dask.address, timeout=30) as c:
        wait_until(
            lambda: len(c.scheduler_info()["workers"]) == 1, 30, "the scheduler to lose lab-a's worker"
        )
    records = run(
        base, dask, tmp_path / "out", *disks.values(), extra=("--every", "3", "--split-seconds", "2")
    )
    assert len(records) == 6
    for path, rec in records.items():
        on_a = path.startswith(disks[A])
        assert rec["status"] == "ok", rec
        assert rec["read_on"] == B and rec["local"] is (not on_a), rec
        # Whole videos from lab-a's disk are copied first (NFS for lab-b); pieces never are.
        assert rec["staged"] is (on_a and rec["pieces"] == 0), rec
    long_ones = [r for p, r in records.items() if p.endswith("long.mp4")]
    assert [r["pieces"] > 1 for r in long_ones] == [True, True], long_ones

"""Which storage host a video's task is meant for: the plugged disk's host, else none."""

from __future__ import annotations

import os

from helpers import lab_disk

from snhoo_dask.disks.locate import host_addresses


def test_each_path_gets_its_plugged_disks_host(tmp_path):
    base = tmp_path / "disks"
    a = lab_disk(base, "lab-a", "alpha", "192.0.2.10")
    b = lab_disk(base, "lab-b", "beta", "192.0.2.11", state="unplugged")
    c = lab_disk(base, "lab-c", "gamma", None)
    paths = [
        os.path.join(a, "cam", "x.mp4"),
        os.path.join(b, "y.mp4"),  # unplugged: nothing to gain from its host
        os.path.join(c, "z.mp4"),  # a host with no address
        str(tmp_path / "elsewhere" / "w.mp4"),
        os.path.join(a + "-not", "v.mp4"),  # a sibling folder whose name starts the same
    ]
    assert host_addresses(paths, str(base)) == ["192.0.2.10", None, None, None, None]

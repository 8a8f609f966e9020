"""Which storage host each video is on: what ``jobs/tasks.py`` restricts its task to.

Only the state folders of the hosts that hold the job's videos are read: each is NFS from
that host, so a storage host that is down delays the jobs that read its disks, not the others.
"""

from __future__ import annotations

import os

from .state import STATE_DIR, disk_of, read_folder


def host_addresses(paths: list[str], base: str) -> list[str | None]:
    """For each path, the address of the storage host whose plugged disk holds it (None:
    on no disk of ``base``, on one that is not plugged, or on a host with no address)."""
    base = os.path.abspath(base)
    inside = [os.path.normpath(os.path.abspath(p)) for p in paths]
    folders = {
        os.path.join(base, p[len(base) + 1 :].split("/")[0], STATE_DIR)
        for p in inside
        if p.startswith(base.rstrip("/") + "/")
    }
    if not folders:
        return [None] * len(paths)
    # The listed disks' states sit beside the hosts' folders, at the base itself.
    folders.add(os.path.join(base, STATE_DIR))
    states = [s for folder in sorted(folders) for s in read_folder(folder, base)]
    hosts = []
    for p in inside:
        disk = disk_of(p, base, states)
        hosts.append(disk.address if disk is not None and disk.state == "plugged" else None)
    return hosts

"""Which filesystem a path is on, from /proc/self/mountinfo, and whether reading it
crosses the network (what ``--stage auto`` decides by)."""

from __future__ import annotations

import os

# Filesystems whose reads cross the network.  FUSE filesystems other than fuseblk (ntfs-3g,
# exfat on a USB disk) are mostly remote (sshfs, rclone, s3fs), and an unknown one is
# staged too: a needless copy is only slower, a flaky share read in place fails videos.
NETWORK_FILESYSTEMS = frozenset(
    "nfs nfs4 cifs smb3 smbfs ncpfs 9p afs ceph glusterfs lustre gpfs beegfs davfs coda".split()
)
LOCAL_FUSE = frozenset({"fuseblk"})
MOUNTINFO = "/proc/self/mountinfo"


def should_stage(path: str, mode: str) -> bool:
    """Whether to copy ``path`` to scratch: ``always``, ``never``, or ``auto`` (network only)."""
    if mode != "auto":
        return mode == "always"
    return on_network(path) is not False


def on_network(path: str) -> bool | None:
    """Whether reading ``path`` crosses the network; None if its filesystem cannot be told."""
    fstype = filesystem_type(path)
    if fstype is None:
        return None
    if fstype.startswith("fuse"):
        return fstype not in LOCAL_FUSE
    return fstype in NETWORK_FILESYSTEMS


def filesystem_type(path: str) -> str | None:
    """The type of the filesystem ``path`` is on (Linux), or None if it cannot be told."""
    try:
        st = os.stat(path)
        with open(MOUNTINFO, encoding="utf-8", errors="replace") as f:
            mounts = parse_mountinfo(f.read())
    except OSError:
        return None
    device = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    by_device = [fstype for dev, _, fstype in mounts if dev == device]
    if by_device:
        return by_device[-1]  # the last mount of a device is the visible one
    # Some filesystems (btrfs subvolumes) report another device than their mount: the
    # longest mount point holding the path decides.
    real = os.path.realpath(path)
    best = None
    for _, point, fstype in mounts:
        if (real == point or real.startswith(point.rstrip("/") + "/")) and (
            best is None or len(point) >= len(best[0])
        ):
            best = (point, fstype)
    return best[1] if best else None


def parse_mountinfo(text: str) -> list[tuple[str, str, str]]:
    """(major:minor, mount point, filesystem type) per line of /proc/self/mountinfo."""
    mounts = []
    for line in text.splitlines():
        head, sep, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if not sep or len(fields) < 5 or not rest:
            continue
        point = fields[4].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
        mounts.append((fields[2], point, rest[0]))
    return mounts

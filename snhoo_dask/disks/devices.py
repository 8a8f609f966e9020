"""What a block device is and whether it is still there, read from the device itself
(``blkid -p``), ``/sys/class/block`` and this namespace's mount table: the facts the hot-plug
unit (``hotplug``) decides from."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class Probe:
    fstype: str | None
    label: str | None
    uuid: str | None


def _decode(value: str) -> str:
    r"""blkid's ``_ENC`` values: every byte that is not plainly safe written as ``\xNN``."""
    raw = re.sub(rb"\\x([0-9a-fA-F]{2})", lambda m: bytes([int(m.group(1), 16)]), value.encode("utf-8"))
    return raw.decode("utf-8", "replace")


def probe(device: str) -> Probe:
    """What filesystem ``device`` holds, read from the device itself."""
    proc = subprocess.run(["blkid", "-p", "-o", "udev", device], capture_output=True, text=True, timeout=30)
    fields = dict(ln.split("=", 1) for ln in proc.stdout.splitlines() if "=" in ln)
    label = fields.get("ID_FS_LABEL_ENC")
    uuid = fields.get("ID_FS_UUID_ENC")
    return Probe(
        fields.get("ID_FS_TYPE"),
        _decode(label) if label is not None else None,
        _decode(uuid) if uuid is not None else None,
    )


def _sys(kernel_name: str, rel: str) -> str | None:
    try:
        with open(f"/sys/class/block/{kernel_name}/{rel}", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return None


def size_bytes(kernel_name: str) -> int | None:
    """The device's size in bytes (None: no size to read)."""
    sectors = _sys(kernel_name, "size")
    return int(sectors) * 512 if sectors and sectors.isdigit() else None


def presence(kernel_name: str) -> tuple[str | None, str | None, str | None]:
    """What says the device is still the one that was attached: (size, diskseq, loop autoclear)."""
    return _sys(kernel_name, "size"), _sys(kernel_name, "diskseq"), _sys(kernel_name, "loop/autoclear")


def gone(kernel_name: str, seen: tuple[str | None, str | None, str | None]) -> str | None:
    """Why the device attached as ``seen`` is no longer there, or None.

    A USB disk pulled out leaves no /sys entry; a loop device detached while mounted keeps
    its size until unmounted but is marked to clear itself (``losetup -d``): both are gone.
    """
    size, seq, autoclear = presence(kernel_name)
    if size is None or size == "0":
        return "the device went away"
    if seq != seen[1]:
        return "the device was replaced by another"
    if autoclear == "1" and seen[2] == "0":
        return "the loop device was detached"
    return None


def mounts_of(device: str) -> list[str]:
    """Mount points of ``device`` (by device number) in this namespace."""
    try:
        rdev = os.stat(device).st_rdev
    except OSError:
        return []
    want = f"{os.major(rdev)}:{os.minor(rdev)}"
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            parts = line.split()
            if len(parts) > 4 and parts[2] == want:
                points.append(parts[4])
    return points


def is_mount(path: str) -> bool:
    try:
        return os.path.ismount(path)
    except OSError:
        return True  # a mount whose device is gone answers EIO: treat it as mounted

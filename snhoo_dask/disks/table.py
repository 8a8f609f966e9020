"""The live disk table: every disk the storage hosts have seen, with its free space and how
many videos it holds, for ``snhoo-dask disks`` and the web's ``GET /api/disks``.

The state files say what each host did with a disk (plugged, unplugged, ejected, refused);
free space (``statvfs``) and the video count are read live from its mount point.  A disk
whose host or USB link hangs blocks every call on its mount for ever, so each read runs in
a thread of its own and is waited for a bounded time: a disk that has not answered is shown
``not responding``, and while its read is still stuck no second one is started.  The count
stops itself after ``COUNT_SECONDS`` (shown as "at least N").
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

from ..errors import SnhooError
from ..fs.bounded import Call, start
from ..fs.fsafe import open_dir
from .state import DiskState, read_states

PLUGGED = "plugged"
NOT_RESPONDING = "not responding"
WAIT_SECONDS = 3.0  # the longest a table waits for any disk
COUNT_SECONDS = 2.0  # a count stops after this long (shown as at least N)
COUNT_TTL = 30.0  # a finished count is reused this long: a web page refreshes every few s
SPACE_TTL = 2.0
MAX_DEPTH = 64
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
STATES_TTL = 1.0


class DiskTableError(SnhooError, OSError):
    """The disks' state files could not be read in time (the message says which)."""


@dataclass(frozen=True)
class DiskRow:
    """One row of the table: the state file's facts and what was read live."""

    host: str | None
    address: str | None
    name: str
    label: str | None
    fstype: str | None
    mountpoint: str
    state: str  # the state file's, or "not responding" for a plugged disk that does not answer
    reason: str | None
    since: str | None
    size_bytes: int | None
    free_bytes: int | None
    videos: int | None  # None: not counted (not plugged, or not answering)
    videos_complete: bool  # False: the count stopped at its time bound

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _read(key: tuple, fn: Callable[[], Any], ttl: float) -> Call:
    """The read of ``key`` (one of the disks table's) still running or done less than
    ``ttl`` s ago, else a new one, in a thread of its own (``fs.bounded``)."""
    return start(("disks", *key), fn, ttl)


def _wait(read: Call, deadline: float) -> bool:
    return read.wait(deadline)


def disk_table(base: str, extensions: tuple[str, ...], wait: float = WAIT_SECONDS) -> list[DiskRow]:
    """Every disk under ``base``, by host then name; videos are files ending in one of
    ``extensions`` (lower case, no dot), counted below the mount point with no link
    followed.  Returns within about ``wait`` s whatever the disks do; DiskTableError if
    the state files themselves do not answer (a storage host gone)."""
    deadline = time.monotonic() + wait
    states = _read(("states", base), lambda: read_states(base), STATES_TTL)
    if not _wait(states, deadline):
        raise DiskTableError(f"the disks' state files under {base} did not answer within {wait:g} s")
    if states.error is not None:
        raise DiskTableError(f"cannot read the disks' state files under {base}: {states.error}")
    disks: list[DiskState] = sorted(states.value, key=lambda d: (d.host or "", d.name))
    exts = tuple("." + e.lower() for e in extensions)
    reads = {}
    for d in disks:
        if d.state == PLUGGED:
            reads[d.mountpoint] = (
                _read(("space", d.mountpoint), partial(os.statvfs, d.mountpoint), SPACE_TTL),
                _read(("count", d.mountpoint, d.since), partial(count_videos, d.mountpoint, exts), COUNT_TTL),
            )
    return [_row(d, reads.get(d.mountpoint), deadline) for d in disks]


def _row(d: DiskState, reads: tuple[Call, Call] | None, deadline: float) -> DiskRow:
    state, free, size, videos, complete = d.state, None, d.size_bytes, None, True
    if reads is not None:
        space, count = reads
        if _wait(space, deadline) and space.error is None:
            vfs = space.value
            free = vfs.f_bavail * vfs.f_frsize
            size = size or vfs.f_blocks * vfs.f_frsize
        else:
            state = NOT_RESPONDING
        if state != NOT_RESPONDING and _wait(count, deadline) and count.error is None:
            videos, complete = count.value
        elif state != NOT_RESPONDING:
            complete = False
    return DiskRow(
        d.host,
        d.address,
        d.name,
        d.label,
        d.fstype,
        d.mountpoint,
        state,
        d.reason,
        d.since,
        size,
        free,
        videos,
        complete,
    )


def count_videos(folder: str, exts: tuple[str, ...], seconds: float = COUNT_SECONDS) -> tuple[int, bool]:
    """(files below ``folder`` ending in one of ``exts``, any case; whether every folder was
    read within ``seconds``).  Walked by descriptor, depth first, at most MAX_DEPTH folders
    open at once: a link is neither followed nor counted."""
    return count_open(open_dir(os.path.realpath(folder)), exts, time.monotonic() + seconds)


def count_open(top: int, exts: tuple[str, ...], stop: float) -> tuple[int, bool]:
    """``count_videos`` below the open folder ``top`` (closed when done) until the monotonic
    time ``stop``: for a folder already reached by descriptor (the web's folder picker)."""
    found = 0
    try:
        stack = [(top, os.scandir(top))]
    except OSError:
        os.close(top)
        raise
    try:
        while stack:
            if time.monotonic() > stop:
                return found, False
            fd, entries = stack[-1]
            try:
                entry = next(entries, None)
            except OSError:
                entry = None
            if entry is None:
                entries.close()
                os.close(fd)
                stack.pop()
                continue
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
                if stat.S_ISREG(mode):
                    found += entry.name.lower().endswith(exts)
                elif stat.S_ISDIR(mode) and len(stack) < MAX_DEPTH:
                    child = os.open(entry.name, _DIR, dir_fd=fd)
                    try:
                        stack.append((child, os.scandir(child)))
                    except OSError:
                        os.close(child)
            except OSError:
                continue
        return found, True
    finally:
        for fd, entries in stack:
            entries.close()
            os.close(fd)

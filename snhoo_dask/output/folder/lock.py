"""One run at a time per output folder (two runs on one output would race on every video)."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time

from ...errors import UsageError
from ...fs.fsafe import open_plain
from .names import LOCK_FILE
from .opened import OutputDir


class OutputBusy(UsageError):
    """Another run holds the output folder's lock."""


class OutputLock:
    """An exclusive ``flock`` on OUT/.snhoo.lock for the life of a run.

    The kernel drops the lock when the process dies, so a killed run never leaves
    a stale lock behind.
    """

    def __init__(self, out: OutputDir) -> None:
        self.out = out
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = open_plain(self.out.fd, LOCK_FILE, os.O_RDWR | os.O_CREAT, where=self.out.path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096).decode("utf-8", "replace")
            os.close(fd)
            try:
                h = json.loads(holder)
                who = f"pid {h['pid']} on {h['host']}, started {h['started']}"
            except (ValueError, KeyError):
                who = "another process"
            raise OutputBusy(
                f"the output folder is in use by another snhoo-dask run ({who}); "
                "wait for it to finish or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.write(
            fd,
            json.dumps(
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                }
            ).encode(),
        )
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.close(fd)
            except OSError:
                pass  # the disk went away: the lock went with it

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

"""The run fence: which run's tasks may publish into OUT now.  A task of an earlier run
(interrupted, still running on the cluster) finds another run's token in OUT/.snhoo-run and
discards its work instead of replacing what the run now on OUT decides on."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from ...fs.fsafe import UnsafePath, open_plain
from .names import RUN_FILE
from .opened import OutputDir


class StaleRun(UnsafePath):
    """A task of a run that no longer holds OUT (another run took it since): it publishes nothing."""


def flock_within(fd: int, how: int, timeout: float) -> None:
    """``flock`` within ``timeout`` s (TimeoutError after); a filesystem without locks
    (ENOLCK, EOPNOTSUPP) is not locked, the fence then checked without one."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, how | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise TimeoutError from None
            time.sleep(0.01)
        except OSError as e:
            if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                return
            raise


def take_over(out: OutputDir, run_id: str, wait: float = 30.0) -> str:
    """Make ``run_id`` the run whose tasks may publish into OUT; return its fence token.

    Called under the run's lock.  The token is written into OUT/.snhoo-run under an
    exclusive ``flock`` that every publish takes shared around its check and its rename:
    once this returns, a task of an earlier run (interrupted, its tasks still running on
    the cluster) finds another token there and discards its work instead of replacing
    what this run decides on.
    """
    token = f"{run_id}/{uuid.uuid4().hex}"
    fd = open_plain(out.fd, RUN_FILE, os.O_RDWR | os.O_CREAT, where=out.path)
    try:
        flock_within(fd, fcntl.LOCK_EX, wait)
        data = json.dumps({"run": run_id, "fence": token, "started": time.strftime("%Y-%m-%d %H:%M:%S")})
        os.ftruncate(fd, 0)
        os.pwrite(fd, data.encode(), 0)
        os.fsync(fd)
    finally:
        os.close(fd)  # and the lock with it
    return token


@contextmanager
def fenced(out: OutputDir) -> Iterator[None]:
    """Held around a publish's rename: StaleRun unless OUT's fence is still ``out.fence``, and
    no other run can take OUT over until it is released."""
    if not out.fence:
        yield
        return
    run = out.fence.partition("/")[0]
    try:
        fd = open_plain(out.fd, RUN_FILE, where=out.path)
    except FileNotFoundError:
        fd = None
    try:
        current: dict = {}
        if fd is not None:
            flock_within(fd, fcntl.LOCK_SH, 60.0)
            try:
                current = json.loads(os.pread(fd, 4096, 0) or b"{}")
            except ValueError:
                current = {}
        if not isinstance(current, dict) or current.get("fence") != out.fence:
            now = current.get("run") if isinstance(current, dict) else None
            since = f"run {now} started on it since" if now else "another run took it since"
            raise StaleRun(
                f"this run ({run}) no longer holds the output folder {out.path} ({since}); "
                "its frames of this video were discarded"
            )
        yield
    finally:
        if fd is not None:
            os.close(fd)

"""The video a task reads: the very file discovery saw, opened once and read by descriptor.

Discovery records where a video really is (its resolved path) and what it is (``Identity``).
The task opens that path walking from ``/`` with no link followed, checks ``fstat`` of the
descriptor against the identity, and from then on everything - the header probe, the copy to
scratch, ffmpeg - reads that descriptor (``/proc/self/fd/N``), never the path again.  A
folder swapped for a link, a file replaced or edited between discovery and the task: the
video fails with "changed since discovery" instead of decoding whatever is there now.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from ..errors import VideoError
from ..fs.fsafe import Identity, UnsafePath, fd_path, identity, open_dir, open_file
from ..model import Video

T = TypeVar("T")
SOURCE_DISK = "the source disk"


class SourceError(VideoError):
    """The video cannot be read as discovered; the message is the human reason."""


class SourceHung(SourceError):
    """A read of the video's disk that did not return within --timeout (see ``bounded``)."""


def bounded(
    seconds: float,
    what: str,
    read: Callable[[], T],
    disk: str = SOURCE_DISK,
    late: Callable[[T], object] | None = None,
) -> T:
    """``read()`` run in a thread of its own and waited for at most ``seconds``: its result,
    or its exception, or SourceHung ("<disk> did not answer for S s while <what>").

    A read of a disk that stopped answering (a FUSE daemon stopped, a hung NFS or SMB
    share) blocks in the kernel, where no Python code can interrupt it.  On timeout that
    thread is abandoned: it is a daemon thread, it ends by itself if the disk ever
    answers, and it does not keep the process from exiting.  A result that comes after the
    wait gave up is handed to ``late`` (to close a descriptor it opened), else dropped.
    The task itself goes on and records the video as failed.  Costs one thread start per
    call (tens of microseconds).
    """
    done = threading.Event()
    lock = threading.Lock()
    outcome: list = []
    gave_up: list[bool] = []

    def run() -> None:
        try:
            value = read()
        except BaseException as e:  # noqa: BLE001 - handed to the waiting task as it was
            with lock:
                if not gave_up:
                    outcome.append((False, e))
                    done.set()
            return
        with lock:
            if not gave_up:
                outcome.append((True, value))
                done.set()
                return
        if late is not None:
            late(value)

    threading.Thread(target=run, name="snhoo-source-read", daemon=True).start()
    if not done.wait(seconds):
        with lock:
            if not outcome:
                gave_up.append(True)
                raise SourceHung(f"{disk} did not answer for {seconds:g} s while {what}")
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


@dataclass(frozen=True)
class Source:
    """An open video: read it through ``path`` (in this process) or ``fd`` (``pass_fds``)."""

    fd: int
    ident: Identity
    name: str  # the file's own name (its extension tells ffmpeg's probe what to expect)

    @property
    def path(self) -> str:
        return fd_path(self.fd)

    def check_unchanged(self) -> None:
        """SourceError if the file was written to while it was read (same file, new content)."""
        now = identity(os.fstat(self.fd))
        if (now.size, now.mtime_ns) != (self.ident.size, self.ident.mtime_ns):
            raise SourceError(
                f"the video changed while it was read ({self.ident.differences(now)}); "
                "is it still being written?"
            )


@contextmanager
def open_video(video: Video, timeout: float | None = None) -> Iterator[Source]:
    """The discovered file, open for reading; SourceError says why it cannot be.  With a
    ``timeout``, a disk that does not answer within it is SourceHung (``bounded``)."""
    if timeout is None:
        fd, ident = _opened(video)
    else:
        fd, ident = bounded(timeout, "opening it", lambda: _opened(video), late=lambda got: os.close(got[0]))
    try:
        yield Source(fd, ident, os.path.basename(video.real or video.rel))
    finally:
        os.close(fd)


def _opened(video: Video) -> tuple[int, Identity]:
    fd = _open(video)
    try:
        return fd, _check(fd, video)
    except BaseException:
        os.close(fd)
        raise


def _open(video: Video) -> int:
    if video.real is None or video.ident is None:
        if os.path.islink(video.path):
            raise SourceError(
                f"broken link: {video.path} points to {os.readlink(video.path)!r}, which does not exist"
            )
        raise SourceError("video not found (moved or deleted since the job started?)")
    parent, name = os.path.split(video.real)
    try:
        folder = open_dir(parent)
        try:
            return open_file(folder, name, where=parent)
        finally:
            os.close(folder)
    except UnsafePath as e:
        raise SourceError(f"changed since discovery: {e}") from None
    except FileNotFoundError:
        raise SourceError("video not found (moved or deleted since the job started?)") from None
    except OSError as e:
        raise SourceError(f"cannot read the video: {e.strerror or e}") from None


def _check(fd: int, video: Video) -> Identity:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise SourceError("not a regular file (a pipe, device or socket cannot be processed)")
    now = identity(st)
    assert video.ident is not None  # _open refused a video without one
    if not video.ident.same_file(now):
        # The same inode with another size or time is a file being written, not a swap.
        hint = " (is it still being written?)" if now.ino == video.ident.ino else ""
        raise SourceError(
            f"changed since discovery ({video.ident.differences(now)}){hint}; "
            "rerun to process it as it is now"
        )
    if st.st_size == 0:
        raise SourceError("the file is empty (0 bytes)")
    try:
        os.pread(fd, 1, 0)
    except OSError as e:
        raise SourceError(f"cannot read the video: {e.strerror}") from None
    return now

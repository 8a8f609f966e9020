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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ..errors import VideoError
from ..fs.fsafe import Identity, UnsafePath, fd_path, identity, open_dir, open_file
from ..model import Video


class SourceError(VideoError):
    """The video cannot be read as discovered; the message is the human reason."""


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
def open_video(video: Video) -> Iterator[Source]:
    """The discovered file, open for reading; SourceError says why it cannot be."""
    fd = _open(video)
    try:
        yield Source(fd, _check(fd, video), os.path.basename(video.real or video.rel))
    finally:
        os.close(fd)


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

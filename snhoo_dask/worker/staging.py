"""Copy a video to the worker's local disk before decoding it, and decide whether to.

Decoding straight off a network share makes every seek a network round trip and
lets a flaky share fail half way through ffmpeg; one sequential copy is cheap and
turns share trouble into a clear "could not copy" reason.  A video on a local disk
gains nothing from a copy, so by default (``auto``) only network filesystems are staged.

A video on a lab disk (``Video.disk_host``: its storage host's address) is read in place by
a worker on that host, and staged by any other, which reaches it over NFS; the worker's
host is the one in its Dask address, the host the scheduler's restriction names.

The scratch folder is shared ground (``/tmp``), so nothing in it is trusted by name: the
base must be a folder of the worker's own user with mode 0700 (made so when missing, and
refused otherwise: another local user could have made it, and then rename what is in it),
the private folder of one copy is made and entered by descriptor, and the copy is read
back through the descriptor it was written by (``/proc/self/fd/N``), so a folder or link
swapped in afterwards cannot change what is decoded.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial

from ..errors import VideoError
from ..fs.mounts import on_network, should_stage
from .source import Source, SourceError

COPY_CHUNK = 1 << 20
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class StagingError(VideoError):
    pass


@dataclass(frozen=True)
class Read:
    """How a worker reads one video: a staged copy or in place; on which host; whether the
    read stays on the machine the file is on."""

    staged: bool
    read_on: str | None  # this worker's host address (None outside a Dask worker)
    local: bool | None  # None: neither a lab disk nor a filesystem whose kind can be told


def worker_host() -> str | None:
    """The host of this Dask worker's address (what host restrictions match), or None."""
    try:
        from distributed import get_worker
        from distributed.comm import get_address_host

        return get_address_host(get_worker().address)
    except (ImportError, ValueError):
        return None


def how_to_read(path: str, disk_host: str | None, mode: str, here: str | None) -> Read:
    """Stage or not (``mode``: --stage's ``auto``, ``always`` or ``never``) the video at
    ``path``, on a lab disk of the host at ``disk_host`` if not None, read by a worker on
    ``here`` (``worker_host()``, asked on the task's own thread: Dask tells no other)."""
    if disk_host is not None and here is not None:
        local = here == disk_host
        return Read(mode == "always" or (mode == "auto" and not local), here, local)
    network = on_network(path)
    return Read(should_stage(path, mode), here, None if network is None else not network)


def scratch_dir(configured: str | None = None) -> str:
    """The worker-local scratch folder: option, then $SNHOO_SCRATCH, then a folder of this
    user's in the temp dir (``snhoo-scratch-<uid>``: another user's cannot be in the way of it
    by accident)."""
    return (
        configured
        or os.environ.get("SNHOO_SCRATCH")
        or os.path.join(tempfile.gettempdir(), f"snhoo-scratch-{os.geteuid()}")
    )


def open_scratch_base(base: str) -> int:
    """A descriptor of ``base``, a folder of this user's with mode 0700 (made so if missing);
    StagingError if it is anything else (a link, a file, another user's, open to others)."""
    try:
        os.mkdir(base, 0o700)
        made = True
    except FileExistsError:
        made = False
    except OSError as e:
        raise StagingError(f"could not copy the video to local scratch {base}: {e.strerror or e}") from None
    try:
        fd = os.open(base, _DIR)
    except OSError as e:
        if e.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise StagingError(
                f"could not copy the video to local scratch {base}: {e.strerror or e}"
            ) from None
        raise _not_private(base, "it is a symbolic link or not a folder") from None
    st = os.fstat(fd)
    if made and st.st_uid == os.geteuid():
        os.fchmod(fd, 0o700)  # mkdir's mode went through the umask
        st = os.fstat(fd)
    problem = None
    if st.st_uid != os.geteuid():
        problem = f"it belongs to uid {st.st_uid}, not to this worker's user (uid {os.geteuid()})"
    elif stat.S_IMODE(st.st_mode) & 0o077:
        problem = f"its mode is {stat.S_IMODE(st.st_mode):04o}, not 0700"
    if problem:
        os.close(fd)
        raise _not_private(base, problem)
    return fd


def _not_private(base: str, problem: str) -> StagingError:
    return StagingError(
        f"could not copy the video to local scratch {base}: {problem}, so another user could "
        "change what is decoded; remove it, or make it a folder of this user's with mode 0700 "
        "(or choose another with --scratch or $SNHOO_SCRATCH)"
    )


@contextmanager
def staged(
    source: Source, scratch: str | None, bound: Callable[[Callable[[], None]], None] | None = None
) -> Iterator[int]:
    """Yield a descriptor of a local copy of an open video (removed afterwards), or raise
    StagingError.  Read it as ``fd_path(fd)`` in this process, and hand it to ffmpeg with
    ``pass_fds``: never by its name in the scratch folder.

    The copy is read from the video's descriptor and written into a fresh private folder
    (mode 0700) of the checked base by a descriptor of a file made there, so neither end can
    be redirected.  ``bound(copy)`` runs the copy (the task's: in a thread waited for at most
    --timeout, as the source's disk may stop answering); without it, the copy runs here.
    """
    base = scratch_dir(scratch)
    base_fd = open_scratch_base(base)
    folder = "tmp" + secrets.token_hex(8)
    folder_fd = fd = -1
    try:
        try:
            os.mkdir(folder, 0o700, dir_fd=base_fd)
            folder_fd = os.open(folder, _DIR, dir_fd=base_fd)
            # A plain ASCII name: the original may start with "-" or hold bytes ffmpeg mangles.
            name = "video" + os.path.splitext(source.name)[1].lower()
            flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(name, flags, 0o600, dir_fd=folder_fd)
        except OSError as e:
            raise StagingError(
                f"could not copy the video to local scratch {base}: {e.strerror or e}"
            ) from None
        copy = partial(_copy, source, fd, base)
        if bound is None:
            copy()
        else:
            bound(copy)
        yield fd
    finally:
        # A copy abandoned by ``bound`` may still be writing: into this file once it is
        # unlinked here, so its space comes back when the copy ends.
        if folder_fd >= 0:
            for entry in os.listdir(folder_fd):
                with suppress(OSError):
                    os.unlink(entry, dir_fd=folder_fd)
            os.close(folder_fd)
        with suppress(OSError):
            os.rmdir(folder, dir_fd=base_fd)
        if fd >= 0:
            os.close(fd)
        os.close(base_fd)


def _copy(source: Source, fd: int, base: str) -> None:
    """Copy the open video into the new file ``fd``; StagingError says why it could not be."""
    try:
        with open(os.dup(fd), "wb") as dst, open(os.dup(source.fd), "rb", closefd=True) as src:
            src.seek(0)
            shutil.copyfileobj(src, dst, COPY_CHUNK)
    except OSError as e:
        raise StagingError(f"could not copy the video to local scratch {base}: {e.strerror or e}") from None
    try:
        source.check_unchanged()
    except SourceError:
        raise StagingError("the video changed size while being copied (is it still being written?)") from None
    if os.fstat(fd).st_size != source.ident.size:
        raise StagingError("the video changed size while being copied (is it still being written?)")

"""Copy a video to the worker's local disk before decoding it, and decide whether to.

Decoding straight off a network share makes every seek a network round trip and
lets a flaky share fail half way through ffmpeg; one sequential copy is cheap and
turns share trouble into a clear "could not copy" reason.  A video on a local disk
gains nothing from a copy, so by default (``auto``) only network filesystems are staged.

A video on a lab disk (``Video.disk_host``: its storage host's address) is read in place by
a worker on that host, and staged by any other, which reaches it over NFS; the worker's
host is the one in its Dask address, the host the scheduler's restriction names.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

from ..errors import VideoError
from ..fs.mounts import on_network, should_stage
from .source import Source, SourceError

COPY_CHUNK = 1 << 20


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
    """The worker-local scratch folder: option, then $SNHOO_SCRATCH, then the temp dir."""
    return (
        configured or os.environ.get("SNHOO_SCRATCH") or os.path.join(tempfile.gettempdir(), "snhoo-scratch")
    )


@contextmanager
def staged(
    source: Source, scratch: str | None, bound: Callable[[Callable[[], None]], None] | None = None
) -> Iterator[str]:
    """Yield the path of a local copy of an open video (removed afterwards), or raise StagingError.

    The copy is read from the video's descriptor and written into a fresh private folder
    (mode 0700) by a descriptor of a file made there, so neither end can be redirected.
    ``bound(copy)`` runs the copy (the task's: in a thread waited for at most --timeout, as
    the source's disk may stop answering); without it, the copy runs here.
    """
    base = scratch_dir(scratch)
    try:
        os.makedirs(base, exist_ok=True)
        folder = tempfile.mkdtemp(dir=base)
    except OSError as e:
        raise StagingError(f"could not copy the video to local scratch {base}: {e.strerror or e}") from None
    # A plain ASCII name: the original may start with "-" or hold bytes ffmpeg mangles.
    name = "video" + os.path.splitext(source.name)[1].lower()
    local = os.path.join(folder, name)
    try:
        copy = partial(_copy, source, local, base)
        if bound is None:
            copy()
        else:
            bound(copy)
        yield local
    finally:
        # A copy abandoned by ``bound`` may still be writing: into this file once it is
        # unlinked here, so its space comes back when the copy ends.
        shutil.rmtree(folder, ignore_errors=True)


def _copy(source: Source, local: str, base: str) -> None:
    """Copy the open video into ``local`` (a new file); StagingError says why it could not be."""
    try:
        fd = os.open(local, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with open(fd, "wb") as dst, open(os.dup(source.fd), "rb", closefd=True) as src:
            src.seek(0)
            shutil.copyfileobj(src, dst, COPY_CHUNK)
    except OSError as e:
        raise StagingError(f"could not copy the video to local scratch {base}: {e.strerror or e}") from None
    try:
        source.check_unchanged()
    except SourceError:
        raise StagingError("the video changed size while being copied (is it still being written?)") from None
    if os.path.getsize(local) != source.ident.size:
        raise StagingError("the video changed size while being copied (is it still being written?)")

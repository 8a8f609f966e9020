"""Copy a video to the worker's local disk before decoding it (old problem 3).

Decoding straight off a network share makes every seek a network round trip and
lets a flaky share fail half way through ffmpeg; one sequential copy is cheap and
turns share trouble into a clear "could not copy" reason.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager


class StagingError(Exception):
    pass


def scratch_dir(configured: str | None = None) -> str:
    """The worker-local scratch folder: option, then $SNHOO_SCRATCH, then the temp dir."""
    return (
        configured or os.environ.get("SNHOO_SCRATCH") or os.path.join(tempfile.gettempdir(), "snhoo-scratch")
    )


@contextmanager
def staged(path: str, scratch: str | None) -> Iterator[str]:
    """Yield a local copy of ``path`` (removed afterwards), or raise StagingError."""
    folder = os.path.join(scratch_dir(scratch), uuid.uuid4().hex)
    # A plain ASCII name: the original may start with "-" or hold bytes ffmpeg mangles.
    local = os.path.join(folder, "video" + os.path.splitext(path)[1].lower())
    try:
        os.makedirs(folder, exist_ok=True)
        before = os.stat(path).st_size
        shutil.copyfile(path, local)
        after = os.stat(path).st_size
    except OSError as e:
        shutil.rmtree(folder, ignore_errors=True)
        what = e.strerror or str(e)
        if e.filename == path:
            raise StagingError(f"cannot read the video: {what}") from None
        raise StagingError(
            f"could not copy the video to local scratch {os.path.dirname(folder)}: {what}"
        ) from None
    try:
        if before != after or os.path.getsize(local) != after:
            raise StagingError("the video changed size while being copied (is it still being written?)")
        yield local
    finally:
        shutil.rmtree(folder, ignore_errors=True)

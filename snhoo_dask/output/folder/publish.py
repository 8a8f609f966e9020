"""The one-rename publish of a video's frames.  Everything under OUT that snhoo-dask
replaces, it created itself: a publish replaces only a finished snhoo-dask output."""

from __future__ import annotations

import errno
import os
import stat
import uuid

from ...fs.fsafe import UnsafePath, disk_errors, parts_of, remove_tree, walk
from .done import complete, read_done, same_source
from .fence import fenced
from .names import RUN_MARKERS
from .opened import OutputDir, holds, safe_dirs
from .tmp import TmpDir


def publish(
    tmp: TmpDir,
    finished: tuple[int, str],
    out: OutputDir,
    out_rel: str,
    signature: dict,
    size: int,
    source: str | None = None,
) -> bool:
    """Move a finished folder or tar (``finished``: its folder's descriptor and its name) into
    place in one rename; False if an equal, complete result is already there.

    Only a finished snhoo-dask output is ever replaced: anything else at the target (a
    source video, a user's folder or file, a link, another run's output folder) makes this
    raise UnsafePath and stays as it was.  With ``out.fence``, only while this task's run
    still holds OUT (StaleRun, nothing moved, if another run took it since).
    """
    parts = parts_of(out_rel)
    final = os.path.join(out.path, *parts)  # for messages only
    with disk_errors(final):
        return _publish(tmp, finished, out, parts, final, signature, size, source)


def _publish(
    tmp: TmpDir,
    finished: tuple[int, str],
    out: OutputDir,
    parts: list[str],
    final: str,
    signature: dict,
    size: int,
    source: str | None,
) -> bool:
    parent = safe_dirs(out, parts[:-1])
    trash = None
    try:
        name = parts[-1]
        with fenced(out):
            try:
                mode = os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
            except FileNotFoundError:
                mode = None
            if mode is not None:
                if stat.S_ISLNK(mode):
                    raise UnsafePath(
                        f"{final} is a symbolic link; snhoo-dask never replaces a link inside the output folder"
                    )
                marker = _run_marker(parent, name) if stat.S_ISDIR(mode) else None
                if marker:
                    raise UnsafePath(
                        f"{final} is the output folder of another snhoo-dask run (it holds {marker}); "
                        "snhoo-dask never replaces it"
                    )
                done = read_done(parent, name)
                if done is None:
                    raise UnsafePath(
                        f"{final} already exists and is not a finished snhoo-dask output; "
                        "move it away or choose another output folder"
                    )
                if (
                    done.get("signature") == signature
                    and same_source(done.get("record") or {}, size, source)
                    and complete(parent, name, done)
                ):
                    # Already complete for this selection (e.g. a task recomputed after a worker
                    # died): keep the published folder rather than swapping it for an equal one.
                    return False
                trash = "old-" + uuid.uuid4().hex
                os.rename(name, trash, src_dir_fd=parent, dst_dir_fd=tmp.base)
            src_fd, src_name = finished
            try:
                os.rename(src_name, name, src_dir_fd=src_fd, dst_dir_fd=parent)
            except OSError as e:
                if trash:  # put back what was there: the video keeps its last output
                    try:
                        os.rename(trash, name, src_dir_fd=tmp.base, dst_dir_fd=parent)
                        trash = None
                    except OSError:
                        pass
                if e.errno == errno.ENAMETOOLONG:
                    raise UnsafePath(f"the output name {name!r} is too long for the output disk") from None
                raise
        return True
    finally:
        os.close(parent)
        if trash:
            remove_tree(tmp.base, trash)  # after the fence is let go: this may take a while


def _run_marker(parent: int, name: str) -> str | None:
    try:
        folder = walk(parent, [name])
    except OSError:
        return None
    try:
        return holds(folder, RUN_MARKERS)
    finally:
        os.close(folder)

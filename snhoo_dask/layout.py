"""Where things live in the output folder, and the one-rename publish of a video's frames.

    OUT/manifest.jsonl                 one record per video per run
    OUT/report.html                    the job's report
    OUT/<root name>/<rel video path>/  finished frames of one video (appears whole or not at all)
        000123.jpg ... frames.csv .snhoo-done.json
    OUT/<root name>/<rel video path>.tar   the same, packed (--pack tar; see tar_sink)
    OUT/.snhoo-tmp/                    folders being written; swept at start and end of a run

Everything under OUT that snhoo-dask replaces or deletes, it created itself: a publish
replaces only a finished snhoo-dask folder, and nothing here follows a symbolic link
found inside OUT (a link there could point anywhere on the machine).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import uuid

from .record import VideoRecord
from .tar_sink import is_tar_output, read_tar_done

TMP_DIR = ".snhoo-tmp"
DONE_FILE = ".snhoo-done.json"
MANIFEST = "manifest.jsonl"
REPORT = "report.html"
LOCK_FILE = ".snhoo.lock"
# Names a root's output folder may not take: they are the job's own files.
RESERVED_NAMES = frozenset({TMP_DIR, DONE_FILE, MANIFEST, REPORT, REPORT + ".tmp", LOCK_FILE})


class UnsafePath(OSError):
    """A path under OUT that snhoo-dask will not write through or replace; the message says why."""


def video_dir(out: str, out_rel: str) -> str:
    return os.path.join(out, *out_rel.split("/"))


def _is_real_dir(path: str) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def safe_dirs(out: str, rel_parts: list[str]) -> str:
    """Create OUT/part1/part2/... one level at a time, refusing any symlink or file on the way."""
    path = out
    for part in rel_parts:
        if part in ("", ".", ".."):
            raise UnsafePath(f"refusing the path component {part!r} under {out}")
        path = os.path.join(path, part)
        try:
            os.mkdir(path)
            continue
        except FileExistsError:
            pass
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            raise UnsafePath(
                f"{path} is a symbolic link; snhoo-dask never writes through a link inside the output folder"
            )
        if not stat.S_ISDIR(st.st_mode):
            raise UnsafePath(f"{path} is in the way: it is a file, not a folder snhoo-dask made")
    return path


def new_tmp_dir(out: str) -> str:
    """A fresh folder on the output filesystem, so the final rename is atomic."""
    base = safe_dirs(out, [TMP_DIR])
    path = os.path.join(base, uuid.uuid4().hex)
    os.mkdir(path)
    return path


def read_done(final: str) -> dict | None:
    """The completion record of a published folder or tar, or None if it is not complete."""
    if is_tar_output(final):
        return read_tar_done(final)
    if not _is_real_dir(final):
        return None
    try:
        with open(os.path.join(final, DONE_FILE), encoding="utf-8") as f:
            done = json.load(f)
    except (OSError, ValueError):
        return None
    return done if isinstance(done, dict) else None


def finished_record(out: str, out_rel: str, signature: dict, size: int) -> VideoRecord | None:
    """The record of a published output made with these settings from a source of this size."""
    done = read_done(video_dir(out, out_rel))
    if not done or done.get("signature") != signature:
        return None
    try:
        previous = VideoRecord.from_dict(done.get("record") or {})
    except (TypeError, ValueError):
        return None
    return previous if previous.size == size else None  # else the source changed since


def _remove(path: str) -> None:
    """Delete a folder or file that snhoo-dask made (never a link's target)."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except OSError:
            pass


def publish(tmp: str, out: str, out_rel: str, signature: dict, size: int) -> bool:
    """Move a finished folder or tar into place in one rename; False if an equal result is
    already there.

    Only a finished snhoo-dask output is ever replaced: anything else at the target (a
    source video, a user's folder or file, a link) makes this raise UnsafePath and stays
    as it was.
    """
    parts = out_rel.split("/")
    parent = safe_dirs(out, parts[:-1])
    final = os.path.join(parent, parts[-1])
    trash = None
    if os.path.lexists(final):
        if os.path.islink(final):
            raise UnsafePath(
                f"{final} is a symbolic link; snhoo-dask never replaces a link inside the output folder"
            )
        done = read_done(final)
        if done is None:
            raise UnsafePath(
                f"{final} already exists and is not a finished snhoo-dask output; "
                "move it away or choose another output folder"
            )
        previous = done.get("record") or {}
        if done.get("signature") == signature and previous.get("size") == size:
            # Already complete for this selection (e.g. a task recomputed after a worker
            # died): keep the published folder rather than swapping it for an equal one.
            _remove(tmp)
            return False
        trash = os.path.join(os.path.dirname(tmp), "old-" + uuid.uuid4().hex)
        os.rename(final, trash)
    os.rename(tmp, final)
    if trash:
        _remove(trash)
    return True


def sweep_tmp(out: str) -> int:
    """Remove folders left by interrupted runs or killed workers; return how many."""
    base = os.path.join(out, TMP_DIR)
    if not _is_real_dir(base):
        return 0  # absent, or a link/file a user put there: never list or delete through it
    try:
        names = os.listdir(base)
    except OSError:
        return 0
    for name in names:
        # Rename first: a task of an interrupted run may still be writing into its folder.
        # After the (atomic) rename its next write or its publish fails, instead of racing
        # the removal and publishing a folder with some images deleted.
        path = os.path.join(base, name)
        trash = os.path.join(base, "swept-" + uuid.uuid4().hex)
        try:
            os.rename(path, trash)
            path = trash
        except OSError:
            pass
        if os.path.islink(path):
            os.unlink(path)
        else:
            shutil.rmtree(path, ignore_errors=True)
    try:
        os.rmdir(base)
    except OSError:
        pass
    return len(names)

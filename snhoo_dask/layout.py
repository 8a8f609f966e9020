"""Where things live in the output folder, and the one-rename publish of a video's frames.

    OUT/manifest.jsonl                 one record per video per run
    OUT/report.html                    the job's report
    OUT/<root name>/<rel video path>/  finished frames of one video (appears whole or not at all)
        000123.jpg ... frames.csv .snhoo-done.json
    OUT/<root name>/<rel video path>.tar   the same, packed (--pack tar; see tar_sink)
    OUT/.snhoo-tmp/                    folders being written; swept at start and end of a run

OUT is opened once (``OutputDir``) and everything below it is made, read, renamed and
deleted relative to that descriptor, one component at a time with no link followed
(``fsafe``): a folder under OUT swapped for a link while a job runs cannot redirect a
write.  Everything under OUT that snhoo-dask replaces or deletes, it created itself: a
publish replaces only a finished snhoo-dask folder.
"""

from __future__ import annotations

import json
import os
import stat
import uuid

from .fsafe import UnsafePath, is_dir_at, open_dir, open_file, parts_of, remove_tree, walk
from .record import VideoRecord
from .tar_sink import TAR_SUFFIX, read_tar_done

__all__ = ["UnsafePath"]  # raised by everything here; importers name it from this module

TMP_DIR = ".snhoo-tmp"
DONE_FILE = ".snhoo-done.json"
MANIFEST = "manifest.jsonl"
REPORT = "report.html"
LOCK_FILE = ".snhoo.lock"
# Names a root's output folder may not take: they are the job's own files.
RESERVED_NAMES = frozenset({TMP_DIR, DONE_FILE, MANIFEST, REPORT, REPORT + ".tmp", LOCK_FILE})


class OutputDir:
    """OUT opened by descriptor; ``path`` is resolved (no link on it) and names it in messages.

    ``ino``: the folder the job started with.  A task opening OUT again (on any worker)
    refuses a folder that is not that one: OUT renamed away and another put in its place.
    """

    def __init__(self, path: str, ino: int | None = None) -> None:
        self.path = path
        self.fd = open_dir(path)
        self.ino = os.fstat(self.fd).st_ino
        if ino is not None and ino != self.ino:
            self.close()
            raise UnsafePath(f"the output folder {path} was replaced since the job started")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> OutputDir:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def video_dir(out: str, out_rel: str) -> str:
    return os.path.join(out, *out_rel.split("/"))


def safe_dirs(out: OutputDir, rel_parts: list[str]) -> int:
    """A descriptor of OUT/part1/part2/..., made one level at a time; a link or a file on the
    way is refused (UnsafePath), never followed or replaced.  The caller closes it."""
    return walk(out.fd, rel_parts, create=True, where=out.path)


class TmpDir:
    """A fresh folder in OUT/.snhoo-tmp (on the output filesystem, so the publish rename is
    atomic): ``fd`` is the folder, ``base`` its parent, both open until ``remove``."""

    def __init__(self, out: OutputDir) -> None:
        self.base = safe_dirs(out, [TMP_DIR])
        self.name = uuid.uuid4().hex
        self.path = os.path.join(out.path, TMP_DIR, self.name)  # for messages only
        try:
            os.mkdir(self.name, 0o755, dir_fd=self.base)
            self.fd = walk(self.base, [self.name])
        except BaseException:
            os.close(self.base)
            raise

    def remove(self) -> None:
        """Delete the folder and what is left in it (after a publish: nothing), close both."""
        remove_tree(self.base, self.name)
        os.close(self.fd)
        os.close(self.base)

    def keep(self) -> None:
        """Close both, leaving the folder for another task to take over (a piece's images,
        which the video's join moves out); a sweep removes it if none does."""
        os.close(self.fd)
        os.close(self.base)


def read_done(parent_fd: int, name: str) -> dict | None:
    """The completion record of the published folder or tar ``name`` in ``parent_fd``, or
    None if it is not a complete snhoo-dask output (a link is never one)."""
    try:
        mode = os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode
    except OSError:
        return None
    try:
        if stat.S_ISREG(mode) and name.endswith(TAR_SUFFIX):
            fd = open_file(parent_fd, name)
            with open(fd, "rb") as f:
                return read_tar_done(f)
        if not stat.S_ISDIR(mode):
            return None
        folder = walk(parent_fd, [name])
        try:
            fd = open_file(folder, DONE_FILE)
        finally:
            os.close(folder)
        with open(fd, encoding="utf-8") as f:
            done = json.load(f)
    except (OSError, ValueError):
        return None
    return done if isinstance(done, dict) else None


def _same_source(previous: dict, size: int, source: str | None) -> bool:
    """Whether a finished output was made from this source file: its identity when both
    records have one (outputs of older versions carry only the size)."""
    if source and previous.get("source"):
        return previous.get("source") == source
    return previous.get("size") == size


def finished_record(
    out: OutputDir, out_rel: str, signature: dict, size: int, source: str | None = None
) -> VideoRecord | None:
    """The record of a published output made with these settings from this source file."""
    parts = parts_of(out_rel)
    try:
        parent = walk(out.fd, parts[:-1], where=out.path)
    except OSError:
        return None  # not there yet, or a link in the way: nothing of ours is finished there
    try:
        done = read_done(parent, parts[-1])
    finally:
        os.close(parent)
    if not done or done.get("signature") != signature:
        return None
    record = done.get("record") or {}
    if not isinstance(record, dict) or not _same_source(record, size, source):
        return None  # the source changed since
    try:
        return VideoRecord.from_dict(record)
    except (TypeError, ValueError):
        return None


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
    place in one rename; False if an equal result is already there.

    Only a finished snhoo-dask output is ever replaced: anything else at the target (a
    source video, a user's folder or file, a link) makes this raise UnsafePath and stays
    as it was.
    """
    parts = parts_of(out_rel)
    parent = safe_dirs(out, parts[:-1])
    try:
        name = parts[-1]
        final = os.path.join(out.path, *parts)  # for messages only
        trash = None
        try:
            mode = os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
        except FileNotFoundError:
            mode = None
        if mode is not None:
            if stat.S_ISLNK(mode):
                raise UnsafePath(
                    f"{final} is a symbolic link; snhoo-dask never replaces a link inside the output folder"
                )
            done = read_done(parent, name)
            if done is None:
                raise UnsafePath(
                    f"{final} already exists and is not a finished snhoo-dask output; "
                    "move it away or choose another output folder"
                )
            if done.get("signature") == signature and _same_source(done.get("record") or {}, size, source):
                # Already complete for this selection (e.g. a task recomputed after a worker
                # died): keep the published folder rather than swapping it for an equal one.
                return False
            trash = "old-" + uuid.uuid4().hex
            os.rename(name, trash, src_dir_fd=parent, dst_dir_fd=tmp.base)
        src_fd, src_name = finished
        os.rename(src_name, name, src_dir_fd=src_fd, dst_dir_fd=parent)
        if trash:
            remove_tree(tmp.base, trash)
        return True
    finally:
        os.close(parent)


def sweep_tmp(out: OutputDir) -> int:
    """Remove folders left by interrupted runs or killed workers; return how many."""
    if not is_dir_at(out.fd, TMP_DIR):
        return 0  # absent, or a link/file a user put there: never list or delete through it
    try:
        base = walk(out.fd, [TMP_DIR])
    except OSError:
        return 0
    try:
        names = os.listdir(base)
        for name in names:
            # Rename first: a task of an interrupted run may still be writing into its folder.
            # After the (atomic) rename its next write or its publish fails, instead of racing
            # the removal and publishing a folder with some images deleted.
            trash = "swept-" + uuid.uuid4().hex
            try:
                os.rename(name, trash, src_dir_fd=base, dst_dir_fd=base)
            except OSError:
                trash = name
            remove_tree(base, trash)
    except OSError:
        return 0
    finally:
        os.close(base)
    try:
        os.rmdir(TMP_DIR, dir_fd=out.fd)
    except OSError:
        pass
    return len(names)

"""Done records: what a finished output says it was made from, whether it still holds what
it lists, and whether a rerun may keep it (resume)."""

from __future__ import annotations

import csv
import json
import os
import stat
import tarfile
from typing import BinaryIO

from ...fs.fsafe import open_plain, parts_of, walk
from ...model import VideoRecord
from .names import DONE_FILE, DONE_MEMBER, TAR_SUFFIX
from .opened import OutputDir


def read_done(parent_fd: int, name: str) -> dict | None:
    """The completion record of the published folder or tar ``name`` in ``parent_fd``, or
    None if it is not a complete snhoo-dask output (a link is never one)."""
    try:
        mode = os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode
    except OSError:
        return None
    try:
        if stat.S_ISREG(mode) and name.endswith(TAR_SUFFIX):
            fd = open_plain(parent_fd, name)
            with open(fd, "rb") as f:
                return read_tar_done(f)
        if not stat.S_ISDIR(mode):
            return None
        folder = walk(parent_fd, [name])
        try:
            fd = open_plain(folder, DONE_FILE)
        finally:
            os.close(folder)
        with open(fd, encoding="utf-8") as f:
            done = json.load(f)
    except (OSError, ValueError):
        return None
    return done if isinstance(done, dict) else None


def complete(parent_fd: int, name: str, done: dict) -> bool:
    """Whether the published folder ``name`` still holds what its done record lists: every
    file by name and size (``files``, written by the sink's ``seal``), plain files, no link.
    Records of older versions list no files: then what frames.csv names must be there.  A tar
    needs no look: its record is its last member, and a tar cut short has none."""
    try:
        if not stat.S_ISDIR(os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode):
            return True
        folder = walk(parent_fd, [name])
    except OSError:
        return False
    try:
        files = done.get("files")
        if not isinstance(files, dict):
            files = _listed_in_csv(folder)
            if files is None:
                return True  # an old record and no frames.csv to go by: as before, trusted
        for file, size in files.items():
            try:
                st = os.stat(file, dir_fd=folder, follow_symlinks=False)
            except (OSError, ValueError, TypeError):
                return False
            if not stat.S_ISREG(st.st_mode) or (size is not None and st.st_size != size):
                return False
        return True
    finally:
        os.close(folder)


def _listed_in_csv(folder: int) -> dict[str, None] | None:
    try:
        fd = open_plain(folder, "frames.csv")
    except OSError:
        return None
    with open(fd, encoding="utf-8", newline="") as f:
        try:
            return {row["file"]: None for row in csv.DictReader(f) if row.get("file")}
        except (csv.Error, KeyError, ValueError):
            return {"frames.csv": None, "": None}  # unreadable: not complete


def same_source(previous: dict, size: int, source: str | None) -> bool:
    """Whether a finished output was made from this source file: its identity when both
    records have one (outputs of older versions carry only the size)."""
    if source and previous.get("source"):
        return previous.get("source") == source
    return previous.get("size") == size


def finished_record(
    out: OutputDir, out_rel: str, signature: dict, size: int, source: str | None = None
) -> VideoRecord | None:
    """The record of a published output made with these settings from this source file."""
    return previous_output(out, out_rel, signature, size, source)[0]


# The signature's parts in a user's words, for why an earlier output is redone.
SIGNED = {"selection": "the frame selection", "format": "the image format", "quality": "the quality"}


def previous_output(
    out: OutputDir, out_rel: str, signature: dict, size: int, source: str | None = None
) -> tuple[VideoRecord | None, str | None]:
    """(the record of a published output made with these settings from this source file,
    None), or (None, why a finished output of an earlier run there is not one: other
    settings, another file, images changed), or (None, None) when there is none."""
    parts = parts_of(out_rel)
    try:
        parent = walk(out.fd, parts[:-1], where=out.path)
    except OSError:
        return None, None  # not there yet, or a link in the way: nothing of ours is finished there
    try:
        done = read_done(parent, parts[-1])
        if not done:
            return None, None
        old = done.get("signature")
        if old != signature:
            if not isinstance(old, dict):
                return None, "made by another version"
            changed = [k for k in dict.fromkeys([*old, *signature]) if old.get(k) != signature.get(k)]
            said = [SIGNED.get(k, k.replace("_", " ")) for k in changed]
            return None, f"made with other settings ({', '.join(said)})"
        record = done.get("record") or {}
        if not isinstance(record, dict) or not same_source(record, size, source):
            return None, "from a file that has changed since"
        if not complete(parent, parts[-1], done):
            return None, "with images changed or deleted since"  # the folder is ours to replace
    finally:
        os.close(parent)
    try:
        return VideoRecord.from_dict(record), None
    except (TypeError, ValueError):
        return None, None


def read_tar_done(file: BinaryIO) -> dict | None:
    """The completion record of a published tar (an open file), or None if it has none (not
    ours, or cut)."""
    try:
        with tarfile.open(fileobj=file, mode="r:") as tar:
            done = None
            for member in tar:
                if member.name == DONE_MEMBER and member.isreg():
                    f = tar.extractfile(member)
                    done = json.loads(f.read().decode("utf-8")) if f else None
    except (OSError, tarfile.TarError, ValueError):
        return None
    return done if isinstance(done, dict) else None

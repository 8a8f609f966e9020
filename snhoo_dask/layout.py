"""Where things live in the output folder, and the one-rename publish of a video's frames.

OUT/manifest.jsonl                 one record per video per run
OUT/<root name>/<rel video path>/  finished frames of one video (appears whole or not at all)
    000123.jpg ... frames.csv .snhoo-done.json
OUT/.snhoo-tmp/                    folders being written; swept at start and end of a run
"""

from __future__ import annotations

import json
import os
import shutil
import uuid

TMP_DIR = ".snhoo-tmp"
DONE_FILE = ".snhoo-done.json"
MANIFEST = "manifest.jsonl"
LOCK_FILE = ".snhoo.lock"


def video_dir(out: str, out_rel: str) -> str:
    return os.path.join(out, *out_rel.split("/"))


def new_tmp_dir(out: str) -> str:
    """A fresh folder on the output filesystem, so the final rename is atomic."""
    path = os.path.join(out, TMP_DIR, uuid.uuid4().hex)
    os.makedirs(path)
    return path


def publish(tmp: str, final: str) -> None:
    """Move a finished folder into place in one rename, replacing an older result."""
    os.makedirs(os.path.dirname(final), exist_ok=True)
    trash = None
    if os.path.lexists(final):
        trash = os.path.join(os.path.dirname(tmp), "old-" + uuid.uuid4().hex)
        os.rename(final, trash)
    os.rename(tmp, final)
    if trash:
        shutil.rmtree(trash, ignore_errors=True)


def read_done(final: str) -> dict | None:
    """The completion record of a published folder, or None if it is not complete."""
    try:
        with open(os.path.join(final, DONE_FILE), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def sweep_tmp(out: str) -> int:
    """Remove folders left by interrupted runs or killed workers; return how many."""
    base = os.path.join(out, TMP_DIR)
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
        shutil.rmtree(path, ignore_errors=True)
    try:
        os.rmdir(base)
    except OSError:
        pass
    return len(names)

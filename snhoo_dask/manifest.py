"""OUT/manifest.jsonl: one JSON line per video per run, appended as results arrive."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from .fsafe import UnsafePath, open_beneath
from .layout import MANIFEST, OutputDir
from .record import VideoRecord


class ManifestWriter:
    """Appends whole lines, each handed to the OS at once; syncs to disk at most once a second.

    A line is written with one flush, so a killed client never leaves half a record.
    The sync (which survives a machine crash too) is batched: on an NFS output one sync
    can cost tens of milliseconds, which per record would pace a job of short clips.
    The last records are synced when the writer closes.
    """

    SYNC_EVERY = 1.0  # seconds

    def __init__(self, out: OutputDir) -> None:
        self.path = os.path.join(out.path, MANIFEST)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        self._f = open(os.open(MANIFEST, flags, 0o644, dir_fd=out.fd), "a", encoding="utf-8")
        self._synced = time.monotonic()
        self._dirty = False

    def write(self, record: VideoRecord) -> None:
        self._f.write(record.to_json() + "\n")
        self._f.flush()
        self._dirty = True
        if time.monotonic() - self._synced >= self.SYNC_EVERY:
            self.sync()

    def sync(self) -> None:
        if self._dirty:
            os.fsync(self._f.fileno())
            self._dirty = False
        self._synced = time.monotonic()

    def close(self) -> None:
        try:
            self.sync()
        except OSError:
            pass  # every line already reached the OS; a write error was reported with its record
        finally:
            self._f.close()

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_manifest(out: str) -> Iterator[VideoRecord]:
    """Every record in OUT/manifest.jsonl (a torn or foreign line is ignored)."""
    try:
        f = open(open_beneath(os.path.realpath(out), MANIFEST), encoding="utf-8")
    except (FileNotFoundError, UnsafePath):
        return  # none yet, or a link put in its place: no record of ours
    with f:
        for line in f:
            try:
                yield VideoRecord.from_json(line)
            except (ValueError, TypeError):
                continue


def latest_run(out: str) -> list[VideoRecord]:
    """The records of the most recent run in the manifest."""
    records = list(read_manifest(out))
    if not records:
        return []
    last = records[-1].run
    return [r for r in records if r.run == last]

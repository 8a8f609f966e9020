"""OUT/manifest.jsonl: one JSON line per video per run, appended as results arrive."""

from __future__ import annotations

import os
from collections.abc import Iterator

from .layout import MANIFEST
from .record import VideoRecord


class ManifestWriter:
    """Appends whole lines and syncs each, so a crash never leaves a half record."""

    def __init__(self, out: str) -> None:
        self.path = os.path.join(out, MANIFEST)
        self._f = open(self.path, "a", encoding="utf-8")

    def write(self, record: VideoRecord) -> None:
        self._f.write(record.to_json() + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_manifest(out: str) -> Iterator[VideoRecord]:
    """Every record in OUT/manifest.jsonl (a torn or foreign line is ignored)."""
    try:
        f = open(os.path.join(out, MANIFEST), encoding="utf-8")
    except FileNotFoundError:
        return
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

"""OUT/manifest.jsonl: one JSON line per video per run, appended as results arrive."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

from .layout import MANIFEST

# The keys every record carries; README documents each.
RECORD_KEYS = (
    "run",
    "root",
    "video",
    "out",
    "status",
    "frames",
    "error",
    "missing",
    "worker",
    "seconds",
    "size",
    "codec",
    "width",
    "height",
    "fps",
    "duration",
    "selection",
    "staged",
    "finished_at",
)


def encode(record: dict) -> str:
    line = json.dumps(record, ensure_ascii=False)
    try:
        line.encode("utf-8")
        return line
    except UnicodeEncodeError:
        # A file name with bytes that are not UTF-8 (kept by Python as surrogates):
        # ASCII escapes keep the line valid UTF-8 and still round-trip to the name.
        return json.dumps(record, ensure_ascii=True)


class ManifestWriter:
    """Appends whole lines and syncs each, so a crash never leaves a half record."""

    def __init__(self, out: str) -> None:
        self.path = os.path.join(out, MANIFEST)
        self._f = open(self.path, "a", encoding="utf-8")

    def write(self, record: dict) -> None:
        self._f.write(encode(record) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_manifest(out: str) -> Iterator[dict]:
    """Every record in OUT/manifest.jsonl (a torn last line is ignored)."""
    try:
        f = open(os.path.join(out, MANIFEST), encoding="utf-8")
    except FileNotFoundError:
        return
    with f:
        for line in f:
            try:
                yield json.loads(line)
            except ValueError:
                continue


def latest_run(out: str) -> list[dict]:
    """The records of the most recent run in the manifest."""
    records = list(read_manifest(out))
    if not records:
        return []
    last = records[-1].get("run")
    return [r for r in records if r.get("run") == last]

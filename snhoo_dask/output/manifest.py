"""OUT/manifest.jsonl: one JSON line per video per run, appended as results arrive.

The file outlives the runs that write it, and a run can be killed, or meet a full disk,
in the middle of a line.  So a writer starts on a fresh line (a torn last line is ended
first, and costs only itself), and a reader takes every line on its own: one that is not
a record of ours, or whose fields have the wrong types, is skipped, counted and named
(``Manifest.problem``), never allowed to stop the report or the next run.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any

from ..fs.fsafe import UnsafePath, open_beneath, open_plain
from ..model import VideoRecord
from .folder import MANIFEST, OutputDir

# Far above any record (the missing list is summarised), far below a memory problem.
MAX_LINE = 4 * 1024 * 1024
SHOWN_LINES = 10  # how many bad line numbers a message names
# Numbers a record holds (times, sizes, counts) stay well inside a float's exact range.
MAX_NUMBER = 2**53


class ManifestWriter:
    """Appends whole lines, each handed to the OS in one unbuffered write; syncs to disk at
    most once a second.

    Nothing is kept in a buffer: a write that fails (a full disk) raises at once, with the
    record that did not make it, and leaves nothing behind for ``close`` to fail on again.
    A line the disk cut short is ended before the next record, as is a torn last line left
    by an earlier run, so no record is ever appended onto a broken one.
    The sync (which survives a machine crash too) is batched: on an NFS output one sync
    can cost tens of milliseconds, which per record would pace a job of short clips.
    The last records are synced when the writer closes.
    """

    SYNC_EVERY = 1.0  # seconds

    def __init__(self, out: OutputDir) -> None:
        self.path = os.path.join(out.path, MANIFEST)
        # Read as well as append: the last byte says whether the file ends a line.
        self._fd = open_plain(out.fd, MANIFEST, os.O_RDWR | os.O_APPEND | os.O_CREAT, where=out.path)
        self._line_ended = _ends_a_line(self._fd)
        self._synced = time.monotonic()
        self._dirty = False
        self.close_error: str | None = None  # a delayed write error (NFS) reported by close

    def write(self, record: VideoRecord) -> None:
        data = (record.to_json() + "\n").encode("utf-8")
        if not self._line_ended:
            data = b"\n" + data
        try:
            _write_all(self._fd, data)
        except OSError:
            self._line_ended = _ends_a_line(self._fd)
            raise
        self._line_ended = True
        self._dirty = True
        if time.monotonic() - self._synced >= self.SYNC_EVERY:
            self.sync()

    def sync(self) -> None:
        if self._dirty:
            os.fsync(self._fd)
            self._dirty = False
        self._synced = time.monotonic()

    def close(self) -> None:
        """Never raises: every line already reached the OS, and a write error was raised
        with its record.  An error the OS reports only now is kept in ``close_error``."""
        if self._fd < 0:
            return
        try:
            self.sync()
        except OSError as e:
            self.close_error = f"could not sync {self.path}: {e.strerror or e}"
        try:
            os.close(self._fd)
        except OSError as e:
            self.close_error = self.close_error or f"could not close {self.path}: {e.strerror or e}"
        self._fd = -1

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _ends_a_line(fd: int) -> bool:
    """True if the file is empty or its last byte is a newline."""
    try:
        size = os.fstat(fd).st_size
        return size == 0 or os.pread(fd, 1, size - 1) == b"\n"
    except OSError:
        return False  # unknown: a newline first costs at most an empty line


@dataclass
class Manifest:
    """What a manifest holds: its records, and the lines that were not records."""

    records: list[VideoRecord] = field(default_factory=list)
    bad_lines: list[int] = field(default_factory=list)  # 1-based line numbers

    @property
    def problem(self) -> str | None:
        """One line naming the skipped lines, or None when every line was a record."""
        n = len(self.bad_lines)
        if not n:
            return None
        shown = ", ".join(str(i) for i in self.bad_lines[:SHOWN_LINES])
        if n > SHOWN_LINES:
            shown += f" and {n - SHOWN_LINES} more"
        return f"{MANIFEST}: {n} unreadable line{'s' if n > 1 else ''} skipped (line{'s' if n > 1 else ''} {shown})"

    def latest_run(self) -> list[VideoRecord]:
        if not self.records:
            return []
        last = self.records[-1].run
        return [r for r in self.records if r.run == last]


def open_manifest(out: str) -> int:
    """A descriptor of OUT/manifest.jsonl for reading.  FileNotFoundError when there is none,
    UnsafePath when it (or OUT) is a link or not a plain file."""
    return open_beneath(os.path.realpath(out), MANIFEST, regular=True)


def load_manifest(out: str, missing_ok: bool = True) -> Manifest:
    """Every record in OUT/manifest.jsonl, and the numbers of the lines that were not one.

    With ``missing_ok``, no manifest (or a link put in its place) is an empty one."""
    try:
        fd = open_manifest(out)
    except (FileNotFoundError, UnsafePath):
        if missing_ok:
            return Manifest()
        raise
    manifest = Manifest()
    with open(fd, "rb") as f:
        for number, line in enumerate(_lines(f), start=1):
            if line is not None and not line.strip():
                continue
            rec = parse_line(line) if line is not None else None
            if rec is None:
                manifest.bad_lines.append(number)
            else:
                manifest.records.append(rec)
    return manifest


def _lines(f) -> Iterator[bytes | None]:
    """The file's lines; None for one longer than MAX_LINE (read past, never kept)."""
    while True:
        line = f.readline(MAX_LINE + 1)
        if not line:
            return
        if len(line) > MAX_LINE and not line.endswith(b"\n"):
            while True:
                rest = f.readline(MAX_LINE)
                if not rest or rest.endswith(b"\n"):
                    break
            yield None
        else:
            yield line


def parse_line(line: bytes) -> VideoRecord | None:
    """One line as a record, or None if it is not one of ours with fields of the right types."""
    try:
        rec = VideoRecord.from_json(line.decode("utf-8"))
    except (ValueError, TypeError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    return rec if _well_typed(rec) else None


def _number(value: object, integer: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if integer and not isinstance(value, int):
        return False
    return math.isfinite(value) and abs(value) <= MAX_NUMBER


# Per field annotation (model.py's VideoRecord writes them as text: postponed annotations), what a value may be.
_CHECKS = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: _number(v, True),
    "float": lambda v: _number(v, False),
    "bool": lambda v: isinstance(v, bool),
    "list[str]": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "dict[str, int]": lambda v: isinstance(v, dict) and all(_number(x, True) for x in v.values()),
}


def _check(annotation: object) -> Callable[[Any], bool] | None:
    kinds = [k.strip() for k in str(annotation).split("|")]
    optional = "None" in kinds
    checks = [_CHECKS[k] for k in kinds if k in _CHECKS]
    if not checks:
        return None  # a type this reader does not know: taken as it is
    return lambda v: (optional and v is None) or any(c(v) for c in checks)


_FIELD_CHECKS = {f.name: c for f in fields(VideoRecord) if (c := _check(f.type)) is not None}


def _well_typed(rec: VideoRecord) -> bool:
    return all(check(getattr(rec, name)) for name, check in _FIELD_CHECKS.items())


BLOCK = 1 << 16  # what a backward read takes at a time


def _lines_backward(fd: int) -> Iterator[tuple[int, bytes | None]]:
    """The file's lines, last first, each with its offset; None for one longer than MAX_LINE
    (as ``_lines`` judges it; read past, never kept whole)."""
    start = os.fstat(fd).st_size  # the file offset of buf[0]
    buf = b""
    stop = 0  # buf[:stop] is what is left to yield
    while start + stop > 0:
        # The line ending at ``stop`` begins after the last newline before its own last byte.
        i = buf.rfind(b"\n", 0, max(stop - 1, 0))
        while i < 0 and start > 0 and stop <= MAX_LINE + 1:
            n = min(BLOCK, start)
            start -= n
            buf = os.pread(fd, n, start) + buf[:stop]
            stop = len(buf)
            i = buf.rfind(b"\n", 0, max(stop - 1, 0))
        if i >= 0 or start == 0:
            line = buf[i + 1 : stop]
            too_long = len(line) > MAX_LINE and not (len(line) == MAX_LINE + 1 and line.endswith(b"\n"))
            yield start + i + 1, None if too_long else line
            stop = i + 1
            continue
        # Longer than MAX_LINE: find where it begins without holding it.
        while True:
            n = min(BLOCK, start)
            start -= n
            buf = os.pread(fd, n, start)
            i = buf.rfind(b"\n")
            if i >= 0 or start == 0:
                break
        yield start + i + 1, None
        stop = i + 1


def _newlines(fd: int, start: int, stop: int) -> int:
    """How many newlines the file holds in [start, stop)."""
    count, pos = 0, start
    while pos < stop:
        chunk = os.pread(fd, min(1 << 20, stop - pos), pos)
        if not chunk:
            break
        count += chunk.count(b"\n")
        pos += len(chunk)
    return count


def load_latest(out: str, missing_ok: bool = True) -> Manifest:
    """The records of the most recent run in OUT/manifest.jsonl, and the numbers of the lines
    among them that were not records: read from the file's end back to the line before that
    run's first record, so the cost is this run's, whatever the history before it.

    A run's records are one block at the end of the file: the output folder's lock lets one
    run at a time append.  The latest run is the run of the last record; the block ends at
    a record of another run.  Unreadable lines inside the block are named by their line
    numbers in the whole file (counted only when there are some)."""
    try:
        fd = open_manifest(out)
    except (FileNotFoundError, UnsafePath):
        if missing_ok:
            return Manifest()
        raise
    try:
        run = None
        seen: list[tuple[int, VideoRecord | None]] = []  # the block's lines, last first; empty ones left out
        for offset, line in _lines_backward(fd):
            if line is not None and not line.strip():
                continue
            rec = parse_line(line) if line is not None else None
            if rec is not None:
                if run is None:
                    run = rec.run
                elif rec.run != run:
                    break
            seen.append((offset, rec))
        seen.reverse()
        manifest = Manifest(records=[rec for _, rec in seen if rec is not None])
        # A line's number is one more than the newlines before it: counted only when a line
        # is to be named, from the file's start to each bad line, once.
        number, pos = 1, 0
        for offset, rec in seen:
            if rec is None:
                number += _newlines(fd, pos, offset)
                pos = offset
                manifest.bad_lines.append(number)
        return manifest
    finally:
        os.close(fd)


def latest_records(out: str) -> list[VideoRecord]:
    """The latest record of each video of OUT's most recent run, in the order they were
    written: what report.html and a job's page show.

    Cheap whatever OUT's history: only that run's block at the end of manifest.jsonl is read
    (``load_latest``), never the runs before it.  Every video a run discovers gets a record
    in it (``skipped`` for one already done, carrying what the run that made its output
    found), so this is every video of the run.  A video the run did not see (a root not
    given again) is not in it.  Lines that are not records are skipped; ``load_latest``
    counts them.  No manifest, or a link in its place: an empty list."""
    return latest_per_video(load_latest(out).records)


def latest_of(
    out: str, wanted: set[tuple[str, str]], lines_per_video: int = 10
) -> dict[tuple[str, str], VideoRecord]:
    """The latest record of each wanted (root, video) in OUT/manifest.jsonl: read from the
    end back until every one was found, or ``lines_per_video`` lines per wanted video were
    read (about that many runs of this size back), so a rerun of the same folders reads one
    run's block whatever the history, and a video never recorded costs a bounded look.
    No manifest (or a link in its place): empty.  Unreadable lines are passed over."""
    try:
        fd = open_manifest(out)
    except (FileNotFoundError, UnsafePath):
        return {}
    found: dict[tuple[str, str], VideoRecord] = {}
    budget = max(1, len(wanted)) * lines_per_video
    try:
        for _, line in _lines_backward(fd):
            budget -= 1
            if budget < 0 or len(found) == len(wanted):
                break
            rec = parse_line(line) if line is not None and line.strip() else None
            if rec is not None and (key := (rec.root, rec.video)) in wanted:
                found.setdefault(key, rec)
    finally:
        os.close(fd)
    return found


def latest_per_video(records: Iterable[VideoRecord]) -> list[VideoRecord]:
    """The last of ``records`` for each (root, video), in the order those were written."""
    latest: dict[tuple[str, str], VideoRecord] = {}
    for rec in records:
        latest.pop((rec.root, rec.video), None)
        latest[(rec.root, rec.video)] = rec
    return list(latest.values())


def read_manifest(out: str) -> Iterator[VideoRecord]:
    """Every record in OUT/manifest.jsonl (a torn or foreign line is skipped: see
    ``load_manifest`` for their count)."""
    yield from load_manifest(out).records


def latest_run(out: str) -> list[VideoRecord]:
    """The records of the most recent run in the manifest (``load_latest``)."""
    return load_latest(out).records

"""The service's record of jobs: SQLite (standard library), one file in the state folder.

It survives restarts: a job still marked running when the service starts again was
cut off, and is shown as interrupted so it can be resumed.
"""

from __future__ import annotations

import builtins
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, unquote_to_bytes

from ..jobs.summary import DONE, DONE_FAILURES, ERROR, INTERRUPTED, RUNNING, Summary
from ..model import VideoRecord

DB_NAME = "jobs.sqlite"

STATE_LABELS = {
    RUNNING: "running",
    DONE: "done",
    DONE_FAILURES: "done with failures",
    INTERRUPTED: "interrupted",
    ERROR: "error",
}
QUEUED = "queued"  # a video not finished in the current run (yet)
UNFINISHED = "unfinished"  # a video the run ended without (an error, a stop, a restart)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, created REAL NOT NULL, state TEXT NOT NULL, spec TEXT NOT NULL,
    out TEXT NOT NULL, roots TEXT NOT NULL, selection TEXT NOT NULL, run TEXT,
    runs INTEGER NOT NULL DEFAULT 0, total INTEGER NOT NULL DEFAULT 0, ok INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,
    images INTEGER NOT NULL DEFAULT 0, started REAL, finished REAL, elapsed REAL NOT NULL DEFAULT 0,
    message TEXT, reset_seq INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS videos (
    job_id TEXT NOT NULL, out_rel TEXT NOT NULL, root TEXT NOT NULL, video TEXT NOT NULL,
    status TEXT NOT NULL, worker TEXT, frames INTEGER, seconds REAL, reason TEXT, finished REAL,
    raw BLOB NOT NULL, seq INTEGER NOT NULL DEFAULT 0, record TEXT, PRIMARY KEY (job_id, raw));
"""
# A video is known by its folder's bytes (``raw``): its text (``out_rel``) shows a byte that is
# not UTF-8 as ``\xNN``, which a real name can also spell, so two videos can share a text.
_VIDEO_COLUMNS = "job_id, out_rel, root, video, status, worker, frames, seconds, reason, finished"
# Columns added since the first schema: a database made before them gets them on open.
_ADDED = (
    ("jobs", "reset_seq", "INTEGER NOT NULL DEFAULT 0"),
    ("videos", "seq", "INTEGER NOT NULL DEFAULT 0"),
    ("videos", "record", "TEXT"),
    # "partial_videos": the API's "partial" already says an answer holds only changes.
    ("jobs", "partial_videos", "INTEGER NOT NULL DEFAULT 0"),
)
_LISTED = "out_rel, root, video, status, worker, frames, seconds, reason, finished, raw"
# Failures first, then what is not finished, then the rest by name: what a reader looks for.
_ORDER = (
    "ORDER BY CASE status WHEN 'failed' THEN 0 WHEN 'queued' THEN 1 WHEN 'unfinished' THEN 1 "
    "ELSE 2 END, out_rel, raw"
)


def video_key(raw: bytes) -> str:
    """A video's name in URLs and the API (``?v=``): its bytes percent-encoded, so every
    folder has its own key; a plain ASCII name is its own key."""
    return quote(raw, safe="/")


def text(value: str | None) -> str | None:
    """Text SQLite and JSON can hold: a file name that is not UTF-8 (its bad bytes came in
    as surrogates) shows those bytes as ``\\xNN``, as the command line's messages do."""
    if value is None:
        return None
    return os.fsencode(value).decode("utf-8", "backslashreplace")


class JobStore:
    """Thread-safe: job threads write records while the web loop reads."""

    def __init__(self, state_dir: str) -> None:
        os.makedirs(state_dir, exist_ok=True)
        self.path = os.path.join(state_dir, DB_NAME)
        # 0600: the jobs name every user's folders and files.  Made (or set) before SQLite
        # opens it; its -wal and -shm files take the database file's mode.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
            self._upgrade_videos()
            for table, column, kind in _ADDED:
                have = {r["name"] for r in self._db.execute(f"PRAGMA table_info({table})")}
                if column not in have:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            # Every change to a video row takes the next number: a page asks for the rows
            # changed since the last one it saw (``changes``), not the whole job each time.
            self._seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM videos").fetchone()[0]

    def _upgrade_videos(self) -> None:
        """A database from before videos were known by their bytes (no ``raw`` column, or
        one that was not the key): the table is rebuilt in one transaction."""
        columns = {r["name"]: r for r in self._db.execute("PRAGMA table_info(videos)")}
        if "raw" in columns and columns["raw"]["pk"]:
            return
        raw = "COALESCE(raw, CAST(out_rel AS BLOB))" if "raw" in columns else "CAST(out_rel AS BLOB)"
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute("ALTER TABLE videos RENAME TO videos_old")
            self._db.execute(_SCHEMA.split(";")[1])  # the videos table as it is now
            self._db.execute(
                f"INSERT OR IGNORE INTO videos ({_VIDEO_COLUMNS}, raw) "
                f"SELECT {_VIDEO_COLUMNS}, {raw} FROM videos_old"
            )
            self._db.execute("DROP TABLE videos_old")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """All writes inside commit together or not at all; the connection is never left
        inside a transaction (the next write would fail for good)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _next(self) -> int:
        """The next change number (the lock is held: called inside a transaction)."""
        self._seq += 1
        return self._seq

    def _write(self, *statements: tuple[str, tuple]) -> None:
        with self._transaction() as db:
            for sql, args in statements:
                db.execute(sql, args)

    def recover(self) -> int:
        """Mark jobs left running by a previous service process as interrupted."""
        with self._transaction() as db:
            db.execute(
                "UPDATE videos SET status=?, seq=? WHERE status=? AND job_id IN "
                "(SELECT id FROM jobs WHERE state=?)",
                (UNFINISHED, self._next(), QUEUED, RUNNING),
            )
            cur = db.execute(
                "UPDATE jobs SET state=?, message=? WHERE state=?",
                (INTERRUPTED, "the service stopped while this job was running; resume it to finish", RUNNING),
            )
            return cur.rowcount

    def create(self, job_id: str, spec: dict, out: str, roots: list[str], selection: str) -> None:
        self._write(
            (
                "INSERT INTO jobs (id, created, state, spec, out, roots, selection) VALUES (?,?,?,?,?,?,?)",
                (job_id, time.time(), RUNNING, json.dumps(spec), text(out), json.dumps(roots), selection),
            )
        )

    def begin_run(self, job_id: str, run_id: str, videos: list[tuple[str, str, str]]) -> None:
        """A (re)started run: its videos are queued until their records arrive; a video of an
        earlier run that this one did not find (moved away since) is no longer the job's."""
        with self._transaction() as db:
            seq = self._next()
            # A page that saw the job before this run must reload all of it (rows went away).
            db.execute(
                "UPDATE jobs SET state=?, run=?, runs=runs+1, total=?, ok=0, partial_videos=0, skipped=0, failed=0, "
                "images=0, started=?, finished=NULL, elapsed=0, message=NULL, reset_seq=? WHERE id=?",
                (RUNNING, run_id, len(videos), time.time(), seq, job_id),
            )
            db.execute("UPDATE videos SET status=? WHERE job_id=?", (_STALE, job_id))
            db.executemany(
                "INSERT INTO videos (job_id, out_rel, root, video, status, raw, seq) VALUES (?,?,?,?,?,?,?) "
                "ON CONFLICT (job_id, raw) DO UPDATE SET status=excluded.status, out_rel=excluded.out_rel, "
                "root=excluded.root, video=excluded.video, seq=excluded.seq, worker=NULL, frames=NULL, "
                "seconds=NULL, reason=NULL, finished=NULL, record=NULL",
                [
                    (job_id, text(out_rel), text(root), text(rel), QUEUED, os.fsencode(out_rel), seq)
                    for out_rel, root, rel in videos
                ],
            )
            db.execute("DELETE FROM videos WHERE job_id=? AND status=?", (job_id, _STALE))

    def record(self, job_id: str, rec: VideoRecord, summary: Summary) -> None:
        line = rec.to_json()
        with self._transaction() as db:
            db.execute(
                "UPDATE videos SET status=?, worker=?, frames=?, seconds=?, reason=?, finished=?, seq=?, "
                "record=? WHERE job_id=? AND raw=?",
                (
                    rec.status,
                    None if rec.worker is None else text(str(rec.worker)),
                    rec.frames,
                    rec.seconds,
                    text(rec.reason or None),
                    rec.finished_at,
                    self._next(),
                    line,
                    job_id,
                    os.fsencode(rec.out),
                ),
            )
            db.execute(
                "UPDATE jobs SET ok=?, partial_videos=?, skipped=?, failed=?, images=?, elapsed=? WHERE id=?",
                (
                    summary.ok,
                    summary.partial,
                    summary.skipped,
                    summary.failed,
                    summary.images,
                    summary.elapsed,
                    job_id,
                ),
            )

    def finish(
        self, job_id: str, state: str, message: str | None = None, elapsed: float | None = None
    ) -> None:
        """The job's final state; a video still queued is then unfinished (it never will be)."""
        sets, args = "state=?, message=?, finished=?", [state, text(message), time.time()]
        if elapsed is not None:
            sets += ", elapsed=?"
            args.append(elapsed)
        with self._transaction() as db:
            db.execute(f"UPDATE jobs SET {sets} WHERE id=?", (*args, job_id))
            if state != RUNNING:
                db.execute(
                    "UPDATE videos SET status=?, seq=? WHERE job_id=? AND status=?",
                    (UNFINISHED, self._next(), job_id, QUEUED),
                )

    def get(self, job_id: str) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        return _job(row) if row else None

    def list(self) -> list[dict]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM jobs ORDER BY created DESC").fetchall()
        return [_job(r) for r in rows]

    # The method ``list`` above hides the builtin in the rest of the class body.
    def videos(self, job_id: str) -> builtins.list[dict]:
        """The job's videos; ``key`` names each one in a sheet's URL (``video_path``)."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_LISTED} FROM videos WHERE job_id=? {_ORDER}", (job_id,)
            ).fetchall()
        return [_video(r) for r in rows]

    def changes(self, job_id: str, since: int) -> tuple[builtins.list[dict], int, bool]:
        """(the videos changed after change number ``since``, the number to ask from next
        time, whether that is every video of the job): a page polling a running job gets
        what finished since its last look, not the whole job again.  Every video when
        ``since`` is before the job's current run began (its list may have changed)."""
        with self._lock:
            row = self._db.execute("SELECT reset_seq FROM jobs WHERE id=?", (job_id,)).fetchone()
            whole = row is None or since < row["reset_seq"] or since > self._seq
            query = f"SELECT {_LISTED} FROM videos WHERE job_id=?"
            if whole:
                rows = self._db.execute(f"{query} {_ORDER}", (job_id,)).fetchall()
            else:
                rows = self._db.execute(f"{query} AND seq>? {_ORDER}", (job_id, since)).fetchall()
            cursor = self._seq
        return [_video(r) for r in rows], cursor, whole

    def videos_named(self, job_id: str, names: builtins.list[str]) -> builtins.list[dict]:
        """The job's videos whose text (``out_rel``) is one of ``names``."""
        rows = []
        with self._lock:
            for i in range(0, len(names), 500):  # SQLite's bound on parameters
                chunk = names[i : i + 500]
                rows += self._db.execute(
                    f"SELECT {_LISTED} FROM videos WHERE job_id=? AND out_rel IN ({','.join('?' * len(chunk))})",
                    (job_id, *chunk),
                ).fetchall()
        return [_video(r) for r in rows]

    def video(self, job_id: str, raw: bytes) -> dict | None:
        """One video of the job by its folder's bytes, with its full record (``record``: the
        manifest's line, None until it is finished)."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {_LISTED}, record FROM videos WHERE job_id=? AND raw=?", (job_id, raw)
            ).fetchone()
        if row is None:
            return None
        v = _video(row)
        v["raw"] = row["raw"]
        return v

    def video_path(self, job_id: str, key: str) -> str | None:
        """The video's folder under the output (as on disk, any bytes), or None if it is not
        one of this job's videos: names come from the job, never a path from a URL.  ``key``
        is the video's ``key``; its text (``out_rel``) is taken too when only one video has it."""
        with self._lock:
            row = self._db.execute(
                "SELECT raw FROM videos WHERE job_id=? AND raw=?", (job_id, unquote_to_bytes(key))
            ).fetchone()
            if row is None:
                rows = self._db.execute(
                    "SELECT raw FROM videos WHERE job_id=? AND out_rel=? LIMIT 2", (job_id, key)
                ).fetchall()
                row = rows[0] if len(rows) == 1 else None
        return None if row is None else os.fsdecode(row["raw"])


_STALE = "stale"  # only inside begin_run's transaction


def _video(row: sqlite3.Row) -> dict:
    v = dict(row)
    v["key"] = video_key(v.pop("raw"))
    return v


def _job(row: sqlite3.Row) -> dict:
    job = dict(row)
    job["spec"] = json.loads(job["spec"])
    job["roots"] = json.loads(job["roots"])
    job["state_label"] = STATE_LABELS.get(job["state"], job["state"])
    if job["state"] == RUNNING and job["started"]:
        job["elapsed"] = time.time() - job["started"]  # live, not the last record's time
    job["done"] = job["ok"] + job["partial_videos"] + job["skipped"] + job["failed"]
    return job

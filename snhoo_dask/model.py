"""The work unit and its result: ``Video`` (one file a task processes) and ``VideoRecord``
(what a task returns, what manifest.jsonl stores, what reports show).

The one place its fields are named.  ``to_json``/``from_json`` are the manifest's line
format; ``from_json`` ignores keys it does not know, so manifests written by older or
newer versions still read.
"""

from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import dataclass, field, fields
from typing import Any

from .errors import SnhooError
from .fs.fsafe import Identity

OK, FAILED, SKIPPED = "ok", "failed", "skipped"
# A video that ended early (a cut-off copy) whose decoded frames were kept (--keep-partial):
# never ``ok``; its record says why and how far it got.
PARTIAL = "partial"

# The fields of a record that say which run, which video and what this run did with it.  A
# skipped video's record keeps every other field from the run that made its output, so a
# field added to the record is carried over without anyone listing it.
THIS_RUN = frozenset(
    {
        "run",
        "root",
        "video",
        "out",
        "size",
        "status",
        "error",
        "seconds",
        "selection",
        "staged",
        "read_on",
        "local",
        "finished_at",
    }
)
STATUSES = (OK, PARTIAL, FAILED, SKIPPED)
# Statuses whose output is published: images on disk that the record describes.
WRITTEN = (OK, PARTIAL)


@dataclass(frozen=True)
class Video:
    """One video: where it lives and where its frames go, relative to the output folder."""

    root: str  # absolute root folder as given (normalised)
    root_name: str  # folder name under the output for this root
    rel: str  # path of the video relative to its root, with "/" separators
    size: int
    suffix: str = ""  # after the output name: ".tar" when the frames are packed
    # The file discovery saw: its resolved path (no link left on it) and what it is.  The task
    # opens exactly that path with no link followed and reads it only if it is still that
    # file (``source.open_video``).  None for a broken link (the task then says so).
    real: str | None = None
    ident: Identity | None = None
    # The address of the storage host whose disk holds it (the Dask host its task is meant
    # for), or None: not on a lab disk, or a cluster on one machine (jobs/tasks.py).
    disk_host: str | None = None

    @property
    def path(self) -> str:
        return os.path.join(self.root, *self.rel.split("/"))

    @property
    def out_rel(self) -> str:
        """The video's output relative to OUT: <root name>/<rel path incl. extension>[.tar]."""
        return f"{self.root_name}/{self.rel}{self.suffix}"


@dataclass
class VideoRecord:
    run: str  # run id, e.g. 20261125T150102-ab12cd
    root: str  # the root as an absolute path
    video: str  # the video's path relative to its root, "/"-separated
    out: str  # the video's output (folder or .tar) relative to OUT
    status: str | None = None  # ok, partial, failed or skipped once final
    frames: int = 0  # images written (skipped: images already there)
    error: str | None = None  # the human reason when failed (or partial)
    missing: list[str] = field(default_factory=list)  # requested frames/times not in the video
    worker: str | None = None
    seconds: float = 0.0
    size: int = 0  # source size in bytes
    source: str | None = None  # the file read, "inode:size:mtime_ns" (resume compares it)
    codec: str | None = None
    width: int | None = None  # the source picture
    height: int | None = None
    fps: float | None = None
    duration: float | None = None
    stream: int | None = None  # the index of the video stream read (ffmpeg's own choice)
    selection: str = ""
    staged: bool = True
    # The host address of the worker that read the source (pieces: every one, comma
    # separated), and whether that read stayed on the machine the file is on.
    read_on: str | None = None
    local: bool | None = None
    finished_at: float | None = None
    out_width: int | None = None  # the written images (after --max-side/--square)
    out_height: int | None = None
    dropped: int = 0  # near-duplicates dropped by --dedup
    undecoded: int = 0  # frames never decoded: not asked for, and no other frame needs them
    pieces: int = 0  # a long video cut into pieces extracted at once (0: one task)
    # Of a video cut into pieces: images written by each worker that extracted a piece.
    # Empty for one task (``worker`` wrote them all); see ``frames_by_worker``.
    worker_frames: dict[str, int] = field(default_factory=dict)
    decoder: str | None = None  # cpu, cuda, or "cpu (cuda failed: why)" (hwaccel.py)
    # Which path made the images and why: "fast: ..." (fewer packets decoded, every image
    # proven) or "plain (<why no fast path ran>)".
    path: str | None = None
    warnings: list[str] = field(default_factory=list)  # what ffmpeg reported (damage)
    # A partial video: the pictures decoded before it ended and the seconds they reach.
    reached_frames: int | None = None
    reached_seconds: float | None = None

    def finish(self, status: str, **changes: Any) -> VideoRecord:
        """Set the final status (and any other fields), stamped with the time."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        for key, value in changes.items():
            setattr(self, key, value)
        self.status = status
        self.finished_at = time.time()
        return self

    def carry_over(self, previous: VideoRecord) -> VideoRecord:
        """This run's record of a video, with everything the run that made its output
        recorded about it (frames, stream facts, path, warnings...); see ``THIS_RUN``."""
        for f in fields(self):
            if f.name not in THIS_RUN:
                setattr(self, f.name, copy.deepcopy(getattr(previous, f.name)))
        return self

    def to_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: its deep copy costs a millisecond per record, and the
        # only field that is not a plain value is the list of missing frames.
        data = dict(self.__dict__)
        data["missing"] = list(self.missing)
        data["warnings"] = list(self.warnings)
        data["worker_frames"] = dict(self.worker_frames)
        return data

    def to_json(self) -> str:
        line = json.dumps(self.to_dict(), ensure_ascii=False)
        try:
            line.encode("utf-8")
            return line
        except UnicodeEncodeError:
            # A file name with bytes that are not UTF-8 (kept by Python as surrogates):
            # ASCII escapes keep the line valid UTF-8 and still round-trip to the name.
            return json.dumps(self.to_dict(), ensure_ascii=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VideoRecord:
        known = {f.name for f in fields(cls)}
        missing = [k for k in ("run", "root", "video", "out") if k not in data]
        if missing:
            raise ValueError(f"not a video record (no {', '.join(missing)})")
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_json(cls, line: str) -> VideoRecord:
        data = json.loads(line)
        if not isinstance(data, dict):
            raise ValueError("not a video record (not a JSON object)")
        return cls.from_dict(data)

    def frames_by_worker(self) -> dict[str, int]:
        """Images written per worker: each piece's under the worker that extracted it.

        A record of a cut video from before ``worker_frames`` names its workers in one text
        (``"1, 0"``); its images are then shared out evenly among them, not counted under a
        worker of that name."""
        if isinstance(self.worker_frames, dict) and self.worker_frames:
            return {str(w): n for w, n in self.worker_frames.items() if isinstance(n, int)}
        if not self.worker:
            return {}
        names = [w for w in dict.fromkeys(str(self.worker).split(", ")) if w] if self.pieces else []
        if len(names) < 2:
            return {str(self.worker): self.frames or 0}
        share, extra = divmod(self.frames or 0, len(names))
        return {w: share + (1 if i < extra else 0) for i, w in enumerate(names)}

    @property
    def reason(self) -> str:
        """What a reader should know about this video: the error, or the missing frames."""
        if self.error:
            return self.error
        return ("missing: " + "; ".join(self.missing)) if self.missing else ""


class VideoFailed(SnhooError):
    """Raised by a task whose video produced no trustworthy output; carries its ``failed``
    record (the Dask task shows as erred, not as a green success)."""

    def __init__(self, record: VideoRecord) -> None:
        super().__init__(record.error)
        self.record = record

    def __reduce__(self):
        return (VideoFailed, (self.record,))

"""A job's running totals, and its one outcome: exit code for the CLI, state for the web."""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field

from ..model import FAILED, OK, PARTIAL, SKIPPED, VideoRecord

# Exit codes of `snhoo-dask run` (README "Exit status").
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

# How many videos a closing line names before "and N more".
EXAMPLES = 3

# Job states shown by the web service.
RUNNING, DONE, DONE_FAILURES, INTERRUPTED, ERROR = (
    "running",
    "done",
    "done_failures",
    "interrupted",
    "error",
)


def reason_of(record: VideoRecord) -> str:
    """A failure's reason without the video's own path in it, so that videos that failed
    the same way (a broken link, each naming itself) count as one reason."""
    reason = record.error or "no reason recorded"
    return reason.replace(os.path.join(record.root, *record.video.split("/")), "<video>")


def failure_reasons(records: list[VideoRecord]) -> Counter:
    """How many of ``records`` failed for each reason (``reason_of``)."""
    return Counter(reason_of(r) for r in records)


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    state: str
    message: str | None  # one line on why the job is not a clean "done"; None when it is


@dataclass
class Summary:
    total: int = 0
    ok: int = 0
    skipped: int = 0
    failed: int = 0
    partial: int = 0  # ended early, its frames kept (--keep-partial): not ok, not failed
    images: int = 0
    started: float = field(default_factory=time.monotonic)
    elapsed: float = 0.0
    interrupted: bool = False
    scheduler_lost: str | None = None
    failures: list[VideoRecord] = field(default_factory=list)
    partials: list[VideoRecord] = field(default_factory=list)
    # Folders discovery could not read: videos in them were never seen, so not a success.
    unsearched: list[tuple[str, str]] = field(default_factory=list)
    # Hard-linked duplicates decoded once (discovery's ``merged``: path left out, path taken).
    merged: list[tuple[str, str]] = field(default_factory=list)
    manifest_error: str | None = None
    # report.html could not be written: the frames are fine, a file the run promises is not.
    report_error: str | None = None
    # What did not happen, for the closing lines: requested frames a video does not have
    # (what -> in how many videos), the first few videos of each kind, and the earlier
    # outputs this run replaced (video path -> why).
    missing: Counter = field(default_factory=Counter)
    missing_videos: list[str] = field(default_factory=list)
    missing_count: int = 0  # videos with any
    missing_frames: int = 0  # requested frames (or times) not there, over all videos
    skipped_videos: list[str] = field(default_factory=list)
    redone: dict[str, str] = field(default_factory=dict)

    @property
    def done(self) -> int:
        return self.ok + self.partial + self.skipped + self.failed

    def add(self, record: VideoRecord) -> None:
        if record.status == OK:
            self.ok += 1
            self.images += record.frames
            if record.missing:
                self._missed(record)
        elif record.status == PARTIAL:
            self.partial += 1
            self.images += record.frames
            self.partials.append(record)
        elif record.status == SKIPPED:
            self.skipped += 1
            if len(self.skipped_videos) < EXAMPLES:
                self.skipped_videos.append(f"{record.root}/{record.video}")
        elif record.status == FAILED:
            self.failed += 1
            self.failures.append(record)
        else:
            raise ValueError(f"a record without a final status: {record.out}")
        self.elapsed = time.monotonic() - self.started

    def _missed(self, record: VideoRecord) -> None:
        self.missing_count += 1
        if len(self.missing_videos) < EXAMPLES:
            self.missing_videos.append(f"{record.root}/{record.video}")
        for what in record.missing:
            more = re.fullmatch(r"and (\d+) more", what)
            self.missing_frames += int(more[1]) if more else 1
            # "frame 99999 (video has 300 frames)": what is missing, without this video's length
            self.missing["more frames" if more else what.split(" (")[0]] += 1

    @property
    def unsearched_message(self) -> str:
        return f"{len(self.unsearched)} path(s) under the roots could not be searched for videos: " + (
            "; ".join(f"{p}: {r}" for p, r in self.unsearched[:5])
        )

    @property
    def outcome(self) -> Outcome:
        """The job's result, decided here only (CLI exit code and web state alike)."""
        outcome = self._videos_outcome
        if self.report_error is None:
            return outcome
        if outcome.exit_code == EXIT_OK:
            # Not a clean "done": a script that goes on to mail report.html must not find it missing.
            return Outcome(EXIT_FAILED, DONE_FAILURES, self.report_error)
        return Outcome(outcome.exit_code, outcome.state, f"{outcome.message}; {self.report_error}")

    @property
    def _videos_outcome(self) -> Outcome:
        if self.interrupted:
            return Outcome(
                EXIT_INTERRUPTED,
                INTERRUPTED,
                f"stopped with {self.done} of {self.total} videos finished; resume to do the rest",
            )
        if self.scheduler_lost:
            return Outcome(EXIT_FAILED, ERROR, self.scheduler_lost)
        if self.manifest_error:
            return Outcome(EXIT_FAILED, ERROR, self.manifest_error)
        if self.done < self.total:
            return Outcome(EXIT_FAILED, ERROR, f"only {self.done} of {self.total} videos finished")
        if self.unsearched:
            return Outcome(EXIT_FAILED, DONE_FAILURES, self.unsearched_message)
        if self.failed or self.partial:
            said = [f"{self.failed} of {self.total} videos failed"] if self.failed else []
            if self.partial:
                said.append(
                    f"{self.partial} of {self.total} videos partial (they end early; their frames were kept)"
                )
            return Outcome(EXIT_FAILED, DONE_FAILURES, "; ".join(said))
        return Outcome(EXIT_OK, DONE, None)

    @property
    def exit_code(self) -> int:
        return self.outcome.exit_code

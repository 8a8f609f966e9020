"""What the terminal shows while a job runs and when it ends."""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from typing import TextIO

from ..jobs.progress import Progress
from ..jobs.summary import EXAMPLES, Summary, failure_reasons
from ..model import VideoRecord
from .grouped import reason_lines
from .text import plural, shown


class ProgressBar:
    """One redrawn line on a terminal; a line every few seconds when output is a file.

    Frames done of frames expected (``~`` while the total is partly extrapolated), the rate
    and the time left, then the videos finished: redrawn as tasks report while they decode
    (``update_frames``, from Dask's event loop thread) and as each record arrives (``update``).
    """

    def __init__(self, summary_total: int, stream: TextIO = sys.stderr, enabled: bool = True) -> None:
        self.total = summary_total
        self.stream = stream
        self.enabled = enabled
        self.tty = stream.isatty()
        self._last = 0.0
        self._lock = threading.Lock()
        self._summary: Summary | None = None
        self._progress: Progress | None = None
        self._ended = False

    def update(self, s: Summary, force: bool = False) -> None:
        with self._lock:
            self._summary = s
            self._draw(force or s.done >= self.total)

    def update_frames(self, p: Progress) -> None:
        with self._lock:
            self._progress = p
            self._draw(False)

    def _draw(self, force: bool) -> None:
        if not self.enabled or self._ended or self._summary is None and self._progress is None:
            return
        now = time.monotonic()
        if not force and now - self._last < (REDRAW_TTY if self.tty else REDRAW_FILE):
            return
        self._last = now
        line = bar_line(self._summary, self._progress, self.total)
        done = self._summary is not None and self._summary.done >= self.total
        if self.tty:
            self.stream.write("\r" + line + "\x1b[K")  # clear what a longer line left
            if done:
                self.stream.write("\n")
                self._ended = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        with self._lock:
            if self.enabled and self.tty and not self._ended:
                self.stream.write("\n")
                self.stream.flush()
            self._ended = True


REDRAW_TTY, REDRAW_FILE = 0.2, 5.0  # seconds between redraws, at a terminal and into a file
WIDTH = 30


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def bar_line(s: Summary | None, p: Progress | None, total: int) -> str:
    """``[####......] 1,234/~3,600 frames, 110 fps, ETA 0:21; 3/8 videos, 0 failed``."""
    videos = s.done if s is not None else 0
    failed = s.failed if s is not None else 0
    parts = []
    if p is not None and p.frames_expected:
        fraction = min(1.0, p.frames_done / p.frames_expected)
        parts.append(f"{p.frames_done:,}/{'~' if p.estimated else ''}{p.frames_expected:,} frames")
    else:
        fraction = videos / max(1, total)
        if p is not None:
            parts.append(f"{p.frames_done:,} frames")
    if p is not None and p.rate_fps:
        parts.append(f"{p.rate_fps:,.0f} fps")
    if p is not None and p.eta_s is not None and videos < total:
        parts.append(f"ETA {_clock(p.eta_s)}")
    filled = int(WIDTH * fraction)
    head = f"[{'#' * filled}{'.' * (WIDTH - filled)}] "
    tail = f"{videos}/{total} videos, {failed} failed"
    return head + (", ".join(parts) + "; " if parts else "") + tail


FIRST_FAILURES = 20  # rows of the closing failure table; the rest are counted by reason


def failure_table(failures: list[VideoRecord], head: str = "FAILED VIDEO", what: str = "failed") -> str:
    """The first ``FIRST_FAILURES`` rows; beyond them, how many more and a count by reason
    (every one stays in manifest.jsonl, report.html and ``--json``)."""
    rows = [(shown(f"{r.root}/{r.video}"), shown(r.error or "")) for r in failures[:FIRST_FAILURES]]
    width = min(60, max(len(v) for v, _ in rows))
    lines = [f"{head:<{width}}  REASON"]
    lines += [f"{v:<{width}}  {reason}" for v, reason in rows]
    more = len(failures) - len(rows)
    if more > 0:
        lines.append(f"... and {more:,} more {what} videos: all in manifest.jsonl and report.html")
        lines += reason_lines(failures, what)
    return "\n".join(lines)


def _some(names: list[str], total: int) -> str:
    """The first names, and how many more there are."""
    more = total - len(names)
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


def _names(whats: list[str], shown: int = 5) -> str:
    """``frame 100``, ``frame 101`` as ``frames 100, 101``; at most ``shown`` of them."""
    more = f" and {len(whats) - shown} more" if len(whats) > shown else ""
    whats = sorted(whats, key=lambda w: (len(w), w))[:shown]
    if len(whats) > 1 and all(w.startswith("frame ") for w in whats):
        return "frames " + ", ".join(w.removeprefix("frame ") for w in whats) + more
    return ", ".join(whats) + more


def not_done_lines(s: Summary) -> list[str]:
    """What the run did not do, said rather than left to the manifest: requested frames a
    video does not have, videos skipped as done, earlier outputs replaced."""
    lines = []
    if s.missing:
        by_count: dict[int, list[str]] = {}
        for what, n in s.missing.most_common():
            by_count.setdefault(n, []).append(what)
        kinds = [f"{_names(whats)} in {plural(n, 'video')}" for n, whats in list(by_count.items())[:3]]
        if len(by_count) > 3:
            kinds.append("more")
        lines.append(
            f"missing: {plural(s.missing_frames, 'requested frame')} the videos do not have: "
            f"{'; '.join(kinds)} ({_some(s.missing_videos, s.missing_count)}); "
            "each video's record in manifest.jsonl lists them"
        )
    if s.redone:
        for why, n in Counter(s.redone.values()).most_common():
            names = [out for out, w in s.redone.items() if w == why][:EXAMPLES]
            lines.append(f"redone: {plural(n, 'video')}, the earlier output {why}: {_some(names, n)}")
    if s.skipped:
        lines.append(
            f"skipped: {plural(s.skipped, 'video')} already done with these settings "
            f"({_some(s.skipped_videos, s.skipped)}); --overwrite redoes them"
        )
    return lines


def closing_lines(s: Summary) -> list[str]:
    """What the terminal says after the last record, before the summary line."""
    lines = not_done_lines(s)
    if s.failures:
        lines.append("\n" + failure_table(s.failures))
    if s.partials:
        lines.append("\n" + failure_table(s.partials, "PARTIAL VIDEO", "partial"))
    if s.interrupted:
        lines.append(
            f"\ninterrupted: {s.done} of {s.total} videos finished; rerun the same command to do the rest"
        )
    for problem in (s.scheduler_lost, s.manifest_error):
        if problem:
            lines.append(f"snhoo-dask: error: {problem}")
    if s.unsearched:
        lines.append(f"snhoo-dask: error: {s.unsearched_message}")
    if s.merged:
        lines.append(merged_note(s.merged))
    return lines


def merged_note(merged: list[tuple[str, str]], first: int = 3) -> str:
    """One line for the hard-linked duplicates a run decoded once."""
    pairs = "; ".join(f"{shown(a)} is {shown(b)}" for a, b in merged[:first])
    more = f"; and {len(merged) - first} more" if len(merged) > first else ""
    return (
        f"note: {plural(len(merged), 'video')} {'is a hard link' if len(merged) == 1 else 'are hard links'} to a file found under another name, "
        f"decoded once under that name: {pairs}{more}"
    )


def summary_line(s: Summary) -> str:
    rate = s.images / s.elapsed if s.elapsed > 0 else 0.0
    return (
        f"{s.ok} ok, {s.skipped} skipped, {s.failed} failed"
        + (f", {s.partial} partial" if s.partial else "")
        + f" of {plural(s.total, 'video')}; "
        f"{plural(s.images, 'image')} in {s.elapsed:.1f} s ({rate:.1f} images/s)"
    )


def summary_json(s: Summary, out: str, report: str | None) -> dict:
    """The run's summary for scripts (``--json``; schema in docs/output.md)."""
    outcome = s.outcome
    return {
        "status": outcome.state,
        "exit_code": outcome.exit_code,
        "message": outcome.message,
        "out": out,
        "report": report,
        "videos": {
            "total": s.total,
            "ok": s.ok,
            "skipped": s.skipped,
            "failed": s.failed,
            "partial": s.partial,
        },
        "images": s.images,
        "elapsed_s": round(s.elapsed, 3),
        "missing": {
            "frames": s.missing_frames,
            "videos": s.missing_count,
            "what": dict(s.missing),
            "first_videos": s.missing_videos,
        },
        "redone": dict(s.redone),
        "failures": [{"video": f"{r.root}/{r.video}", "out": r.out, "reason": r.error} for r in s.failures],
        "failure_reasons": dict(failure_reasons(s.failures).most_common()),
        "unsearched": [{"path": p, "reason": r} for p, r in s.unsearched],
        "merged": [{"path": p, "same_as": same} for p, same in s.merged],
    }

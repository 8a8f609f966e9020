"""What the terminal shows while a job runs and when it ends."""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import TextIO

from ..jobs.summary import EXAMPLES, Summary
from ..model import VideoRecord


class ProgressBar:
    """One redrawn line on a terminal; a line every few seconds when output is a file."""

    def __init__(self, summary_total: int, stream: TextIO = sys.stderr, enabled: bool = True) -> None:
        self.total = summary_total
        self.stream = stream
        self.enabled = enabled
        self.tty = stream.isatty()
        self._last = 0.0

    def update(self, s: Summary, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and not self.tty and now - self._last < 5 and s.done < self.total:
            return
        self._last = now
        width = 30
        filled = int(width * s.done / max(1, self.total))
        line = (
            f"[{'#' * filled}{'.' * (width - filled)}] {s.done}/{self.total} videos, "
            f"{s.images} images, {s.failed} failed"
        )
        if self.tty:
            self.stream.write("\r" + line)
            if s.done >= self.total:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def failure_table(failures: list[VideoRecord]) -> str:
    rows = [(f"{r.root}/{r.video}", r.error or "") for r in failures]
    width = min(60, max(len(v) for v, _ in rows))
    lines = [f"{'FAILED VIDEO':<{width}}  REASON"]
    lines += [f"{v:<{width}}  {reason}" for v, reason in rows]
    return "\n".join(lines)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


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
            f"missing: {'; '.join(kinds)} ({_some(s.missing_videos, s.missing_count)}); "
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
    if s.interrupted:
        lines.append(
            f"\ninterrupted: {s.done} of {s.total} videos finished; rerun the same command to do the rest"
        )
    for problem in (s.scheduler_lost, s.manifest_error):
        if problem:
            lines.append(f"snhoo-dask: error: {problem}")
    if s.unsearched:
        lines.append(f"snhoo-dask: error: {s.unsearched_message}")
    return lines


def summary_line(s: Summary) -> str:
    rate = s.images / s.elapsed if s.elapsed > 0 else 0.0
    return (
        f"{s.ok} ok, {s.skipped} skipped, {s.failed} failed of {s.total} videos; "
        f"{s.images} images in {s.elapsed:.1f} s ({rate:.1f} images/s)"
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
        "videos": {"total": s.total, "ok": s.ok, "skipped": s.skipped, "failed": s.failed},
        "images": s.images,
        "elapsed_s": round(s.elapsed, 3),
        "missing": {"videos": s.missing_count, "what": dict(s.missing), "first_videos": s.missing_videos},
        "redone": dict(s.redone),
        "failures": [{"video": f"{r.root}/{r.video}", "out": r.out, "reason": r.error} for r in s.failures],
        "unsearched": [{"path": p, "reason": r} for p, r in s.unsearched],
    }

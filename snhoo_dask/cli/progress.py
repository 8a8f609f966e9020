"""What the terminal shows while a job runs and when it ends."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from ..jobs.summary import Summary
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


def closing_lines(s: Summary) -> list[str]:
    """What the terminal says after the last record, before the summary line."""
    lines = []
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

"""Long lists on a terminal said as counts: a warning repeated for 500 folders is one line
with its count and the first few paths; failures are counted by reason.  The full lists
stay where they are complete (manifest.jsonl, report.html, ``--json``)."""

from __future__ import annotations

from collections import Counter

from ..jobs.summary import failure_reasons
from ..model import VideoRecord
from .text import shown

PATHS_SHOWN = 3  # paths named per grouped warning
WARNINGS_SHOWN = 10  # distinct warnings, then one line for the rest
REASONS_SHOWN = 10  # failure reasons counted one a line, then one line for the rest


def warning_lines(problems: list[tuple[str, str]]) -> list[str]:
    """``warning: skipped PATH: REASON`` once per reason: with the count and the first
    paths when several paths share it."""
    by_reason: dict[str, list[str]] = {}
    for path, reason in problems:
        by_reason.setdefault(reason, []).append(path)
    lines = []
    for reason, paths in list(by_reason.items())[:WARNINGS_SHOWN]:
        if len(paths) == 1:
            lines.append(f"warning: skipped {shown(paths[0])}: {shown(reason)}")
            continue
        first = ", ".join(shown(p) for p in paths[:PATHS_SHOWN])
        more = f" and {len(paths) - PATHS_SHOWN:,} more" if len(paths) > PATHS_SHOWN else ""
        lines.append(f"warning: skipped {len(paths):,} paths: {shown(reason)} ({first}{more})")
    rest = list(by_reason.values())[WARNINGS_SHOWN:]
    if rest:
        lines.append(
            f"warning: skipped {sum(len(p) for p in rest):,} more paths for {len(rest):,} other reasons"
        )
    return lines


def reason_lines(records: list[VideoRecord], what: str = "failed") -> list[str]:
    """``25 failed videos by reason:`` then ``  20  the file is empty (0 bytes)`` per reason."""
    counts: Counter = failure_reasons(records)
    lines = [f"{len(records):,} {what} videos by reason:"]
    width = len(f"{counts.most_common(1)[0][1]:,}") if counts else 1
    for reason, n in counts.most_common(REASONS_SHOWN):
        lines.append(f"  {n:>{width},}  {shown(reason)}")
    rest = counts.most_common()[REASONS_SHOWN:]
    if rest:
        lines.append(f"  {sum(n for _, n in rest):>{width},}  {len(rest):,} other reasons")
    return lines

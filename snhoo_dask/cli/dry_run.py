"""``snhoo-dask run --dry-run``: what a run would do, as a summary a terminal can hold.

A summary on stderr (videos, per root, per extension, total size, new/skip/redo counts with
why, the files known to fail), then one line per video on stdout for the first
``FIRST_VIDEOS`` (every one with ``--list``): its verdict, where its frames would go, and why.
Whatever the number of videos, the default is a few dozen lines.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import click

from ..jobs.job import Job
from ..jobs.planning import EMPTY, NEW, REDO, SKIP, UNREADABLE_BEFORE, Planned, Preview, plan
from ..jobs.summary import EXIT_OK
from ..output.shard_index import SHARDS_DIR
from .disks import size_text
from .grouped import warning_lines
from .text import plural, shown

FIRST_VIDEOS = 20  # videos listed without --list
ROOTS_SHOWN = 10  # roots summarised one a line, then "and N more"
REASONS_SHOWN = 5  # redo reasons named, then "other reasons"
FLAGGED_SHOWN = 3  # flagged files named per kind


def _say(line: str) -> None:
    click.echo(line, err=True)


def _some(items: list[Planned], total: int) -> str:
    names = ", ".join(shown(p.video.path) for p in items)
    return names + (f" and {total - len(items):,} more" if total > len(items) else "")


def summary_lines(preview: Preview, job: Job) -> list[str]:
    """The dry run's summary, each line bounded (names are capped, not listed)."""
    total = len(preview.planned)
    lines = [
        f"{plural(total, 'video')}, {size_text(preview.bytes)} under {plural(len(preview.roots), 'root')}; "
        f"{job.settings.describe()}; output {shown(job.settings.out)}; nothing processed (dry run)"
    ]
    for root, (videos, size) in list(preview.roots.items())[:ROOTS_SHOWN]:
        lines.append(f"  {shown(root)}: {plural(videos, 'video')}, {size_text(size)}")
    if len(preview.roots) > ROOTS_SHOWN:
        rest = list(preview.roots.values())[ROOTS_SHOWN:]
        lines.append(
            f"  and {plural(len(rest), 'more root')}: {plural(sum(v for v, _ in rest), 'video')}, "
            f"{size_text(sum(s for _, s in rest))}"
        )
    exts = ", ".join(f"{shown(e)} {n:,}" for e, n in preview.extensions.most_common())
    lines.append(f"  by extension: {exts}")
    a = preview.actions
    line = f"would do: {a[NEW]:,} new, {a[SKIP]:,} skip (already done with these settings), {a[REDO]:,} redo"
    if preview.whys:
        whys = [f"{n:,} {shown(why)}" for why, n in preview.whys.most_common(REASONS_SHOWN)]
        others = sum(preview.whys.values()) - sum(n for _, n in preview.whys.most_common(REASONS_SHOWN))
        if others:
            whys.append(f"{others:,} for other reasons")
        line += f" ({'; '.join(whys)})"
    lines.append(line)
    for flag, noun, words in (
        (EMPTY, "empty file", " (0 bytes)"),
        (UNREADABLE_BEFORE, "file", " unreadable when last tried"),
    ):
        n = preview.flags[flag]
        if n:
            lines.append(
                f"known to fail: {plural(n, noun)}{words}: {_some(preview.flagged(flag, FLAGGED_SHOWN), n)}"
            )
    if preview.manifest_problem:
        lines.append(f"warning: {shown(preview.manifest_problem)}")
    return lines


def video_line(p: Planned, out: str, shards: bool = False) -> str:
    """``redo  /v/a.mp4<TAB>-> /out/v/a.mp4/  (why: ...)  [known: ...]``; with ``shards``,
    its frames go into OUT/shards/ (a shard's tar holds many videos)."""
    if shards:
        target = os.path.join(out, SHARDS_DIR) + "/"
    else:
        target = os.path.join(out, p.video.out_rel) + ("" if p.video.suffix else "/")
    line = f"{p.action:<4}  {shown(p.video.path)}\t-> {shown(target)}"
    if p.why:
        line += f"  (why: {shown(p.why)})"
    if p.flag == EMPTY:
        line += "  [empty: 0 bytes, it will fail]"
    elif p.flag == UNREADABLE_BEFORE:
        # The reason is said once: in the why when the why is that failure.
        said = bool(p.why and p.known and p.known in p.why)
        line += (
            "  [unreadable when last tried]" if said else f"  [unreadable when last tried: {shown(p.known)}]"
        )
    return line


def dry_run(job: Job, list_all: bool = False, say: Callable[[str], None] = _say) -> int:
    """Say what a run would do; process nothing.  ``list_all``: every video, not the first few."""
    for line in warning_lines(job.found.problems):
        say(line)
    preview = plan(job.videos, job.settings, job.overwrite)
    for line in summary_lines(preview, job):
        say(line)
    shown_videos = preview.planned if list_all else preview.planned[:FIRST_VIDEOS]
    for p in shown_videos:
        click.echo(video_line(p, job.settings.out, job.settings.pack == "shards"))
    if len(shown_videos) < len(preview.planned):
        more = len(preview.planned) - len(shown_videos)
        say(f"... and {plural(more, 'more video')}: --list lists every one")
    return EXIT_OK

"""``snhoo-dask disks``: the lab's disk table on a terminal, and the safe eject.

Labels and names come from whoever formatted a disk: anything a terminal would act on
(a newline, an escape sequence, a bidi override) is shown escaped, never sent as is.
"""

from __future__ import annotations

import json
import unicodedata

import click

from ..disks.state import disks_base
from ..disks.table import NOT_RESPONDING, DiskRow, DiskTableError, disk_table
from ..jobs.discover import DEFAULT_EXTENSIONS
from ..jobs.summary import EXIT_FAILED
from .text import shown

COLUMNS = ("HOST", "NAME", "LABEL", "SIZE", "FREE", "STATE", "VIDEOS")


def width(text: str) -> int:
    """Terminal columns: wide (CJK) characters take two, combining marks none."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text
    )


def size_text(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def videos_text(row: DiskRow) -> str:
    if row.videos is None:
        return "-"
    return f"{row.videos}" if row.videos_complete else f">= {row.videos}"


def state_text(row: DiskRow) -> str:
    if row.state == NOT_RESPONDING:
        return row.state
    return f"{row.state} ({row.reason})" if row.reason and row.state != "plugged" else row.state


def render(rows: list[DiskRow], base: str) -> str:
    """The table as text lines, columns aligned on a terminal."""
    if not rows:
        return f"no disks under {shown(base)} (no storage host has written a state file there)"
    cells = [COLUMNS] + [
        (
            shown(r.host),
            shown(r.name),
            shown(r.label),
            size_text(r.size_bytes),
            size_text(r.free_bytes),
            shown(state_text(r)),
            videos_text(r),
        )
        for r in rows
    ]
    widths = [max(width(row[i]) for row in cells) for i in range(len(COLUMNS))]
    lines = []
    for row in cells:
        padded = [cell + " " * (widths[i] - width(cell)) for i, cell in enumerate(row)]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def disks_command(as_json: bool, eject: str | None) -> int:
    """What ``snhoo-dask disks`` prints and its exit status."""
    base = disks_base()
    if eject is not None:
        return _eject(eject, base)
    try:
        rows = disk_table(base, DEFAULT_EXTENSIONS)
    except DiskTableError as e:
        click.echo(f"snhoo-dask: error: {shown(str(e))}", err=True)
        return EXIT_FAILED
    if as_json:
        click.echo(json.dumps({"base": base, "disks": [r.to_dict() for r in rows]}))
    else:
        click.echo(render(rows, base))
    return 0


def _eject(name: str, base: str) -> int:
    try:
        from ..disks.eject import eject
    except ImportError:
        click.echo("snhoo-dask: error: eject runs on the disk's storage host", err=True)
        return EXIT_FAILED
    result = eject(name, base)
    # Line by line: the busy processes' list is several lines, each escaped on its own.
    for line in str(result).splitlines():
        click.echo(shown(line), err=not result.ok)
    return 0 if result.ok else EXIT_FAILED

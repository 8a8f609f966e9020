"""What in OUT snhoo-dask may replace, delete or append to: only what it can tell it made.

A folder that holds no run's lock or fence (``RUN_MARKERS``: snhoo-dask makes them before it
writes anything else) has never been a run's output, so a manifest.jsonl, report.html or
.snhoo-tmp there is a user's: the job is refused (``foreign``) instead of appending to,
replacing or emptying it.  In a run's output folder, .snhoo-tmp holds only entries named as
snhoo-dask names them (``made_in_tmp``), and a report.html is replaced only if it is one
snhoo-dask wrote (``is_report``); anything else there is left as it is.
"""

from __future__ import annotations

import os
import re

from ...fs.fsafe import open_plain
from .names import FRAGMENTS, MANIFEST, REPORT, RUN_MARKERS, TMP_DIR
from .opened import OutputDir, holds

# The names snhoo-dask gives in .snhoo-tmp: a temporary folder (uuid4 hex, ``TmpDir``), a
# replaced output on its way out (``publish``), a swept folder (``sweep_tmp``), the shards'
# fragments (``FRAGMENTS``).
_MADE_IN_TMP = re.compile(rf"(?:(?:old-|swept-)?[0-9a-f]{{32}}|{FRAGMENTS})\Z")
# The start of every report snhoo-dask writes (templates/report.html), in its first bytes.
REPORT_MARK = b"<title>snhoo-dask report: "
_HEAD = 1024

# What the job would do to each of its own files, were a user's file in its place.
_DONE_TO = {MANIFEST: "append to", REPORT: "replace", TMP_DIR: "empty"}


def made_in_tmp(name: str) -> bool:
    """Whether ``name`` in OUT/.snhoo-tmp is one snhoo-dask gives (a user's file there is not)."""
    return bool(_MADE_IN_TMP.match(name))


def foreign(out: OutputDir) -> str | None:
    """Why a job may not use OUT: it is no run's output folder yet, and holds a file of the
    job's own name that a run would append to, replace or empty.  None if it may."""
    if holds(out.fd, RUN_MARKERS):
        return None
    name = holds(out.fd, tuple(_DONE_TO))
    if name is None:
        return None
    return (
        f"the output folder {out.path} holds {name}, which no snhoo-dask run wrote (it is not the "
        f"output folder of a run) and a run would {_DONE_TO[name]}; move it away or choose another "
        "output folder"
    )


def is_report(dir_fd: int, name: str, empty_too: bool = False) -> bool:
    """Whether ``name`` in ``dir_fd`` is a plain file that starts like a report snhoo-dask
    writes (``empty_too``: or is empty, as a report cut short before its first write is)."""
    try:
        fd = open_plain(dir_fd, name)
    except OSError:
        return False
    try:
        head = os.pread(fd, _HEAD, 0)
    except OSError:
        return False
    finally:
        os.close(fd)
    return REPORT_MARK in head or (empty_too and not head)

"""What the service reads from a job's output folder to send it: the report and sheets.

The output folder is writable by the people who run jobs, and the service may run as
another user: anything in it can be swapped for a symbolic link between two requests.  So
``job["out"]`` (resolved when the job was created) is walked from ``/`` by descriptor with
``O_NOFOLLOW`` (``fsafe.open_dir``) and every file below it is opened the same way; a link
anywhere, or a file that is not a plain file, is simply not there (the handler says 404).
"""

from __future__ import annotations

import os
import stat

from ..fs import fsafe
from ..output.layout import REPORT
from ..output.sheets import video_sheet


def read_report(out: str) -> bytes:
    """OUT/report.html's bytes.  FileNotFoundError when there is none (yet); UnsafePath when
    it, or a folder on the way to it, is a link or not a plain file."""
    return fsafe.read_beneath(out, REPORT)


def has_report(out: str) -> bool:
    """Whether ``read_report`` would find a report (what the pages show as a link)."""
    try:
        with fsafe.opened_dir(out) as out_fd:
            return stat.S_ISREG(os.stat(REPORT, dir_fd=out_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def job_sheet(out: str, out_rel: str) -> bytes | None:
    """The contact sheet of one video of a job (``out_rel`` from the job's own records)."""
    try:
        with fsafe.opened_dir(out) as out_fd:
            return video_sheet(out_fd, out_rel)
    except OSError:
        return None

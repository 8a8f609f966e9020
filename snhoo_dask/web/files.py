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
from ..output import sheets
from ..output.folder import REPORT
from ..output.sheets import Listing, video_sheet


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


def _in_out(out: str, read):
    try:
        with fsafe.opened_dir(out) as out_fd:
            return read(out_fd)
    except OSError:
        return None


def listing(out: str, out_rel: str, start: int, count: int) -> Listing | None:
    """A page of one video's images (``sheets.frame_listing``), from the job's output folder."""
    return _in_out(out, lambda fd: sheets.frame_listing(fd, out_rel, start, count))


def frame_file(out: str, out_rel: str, name: str, limit: int) -> bytes | None:
    """One image, or frames.csv, of one video of a job; None if it is not there (or not a
    plain file reached without a link, or larger than ``limit``)."""
    return _in_out(out, lambda fd: sheets.frame_file(fd, out_rel, name, limit))


def frame_thumb(out: str, out_rel: str, name: str) -> bytes | None:
    """One image of one video of a job as a small JPEG."""
    return _in_out(out, lambda fd: sheets.frame_thumb(fd, out_rel, name))

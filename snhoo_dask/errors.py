"""The error hierarchy: every error snhoo-dask raises on purpose is one of three kinds.

- ``UsageError``: the job cannot start as asked (a bad option, a root that is no folder,
  an output that is busy).  One line for the user; exit status 2 on the CLI, 400/409 on
  the web.  ``JobError`` is the name the job's own checks raise it by.
- ``VideoError``: one video cannot be processed (not a video, its disk went away, a link
  in the way, ffmpeg did not decode what was planned).  The message is the reason its
  ``failed`` record gives; the job goes on with the other videos.  ``model.VideoFailed``
  is what a task raises once that record is written (it carries the record to the client).
- ``FastPathError``: a decode-less plan cannot prove itself on a file.  Never shown to a
  user as a failure: the video is decoded the plain way and its record says why.

Anything else is a bug; it is not caught by these bases.
"""

from __future__ import annotations


class SnhooError(Exception):
    """Base of every error raised on purpose."""


class UsageError(SnhooError):
    """The job cannot start as asked; the message is one line for the user."""


class JobError(UsageError):
    """The job cannot start (a usage problem); the message is one line for the user."""


class VideoError(SnhooError):
    """One video cannot be processed; the message is its record's reason."""


class FastPathError(SnhooError):
    """A decode-less plan cannot be proven on this file: decode it the plain way."""

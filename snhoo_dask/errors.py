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

from collections.abc import Callable
from typing import Any


def flag(name: str) -> str:
    """How the command line spells the option behind a job spec field: ``max_side`` is
    ``--max-side``, ``fmt`` is ``--format``."""
    return "--" + {"fmt": "format"}.get(name, name).replace("_", "-")


class SnhooError(Exception):
    """Base of every error raised on purpose."""


class UsageError(SnhooError):
    """The job cannot start as asked; the message is one line for the user.

    ``field`` names the job spec field at fault (``jobs/spec.py``), when one is.  A message
    that names options is made by ``naming``: it keeps its template, and each side words it
    with its own names for them, ``str()`` the command line's (``--max-side``) and
    ``worded(name)`` anyone else's (the web: ``max side``).  No side rewrites another's text.
    """

    field: str | None = None
    template: str | None = None
    options: tuple[str, ...] = ()
    values: dict[str, Any] | None = None

    @classmethod
    def naming(cls, template: str, *options: str, field: str | None = None, **values: Any):
        """An error whose ``template`` holds a ``{}`` for each of ``options`` (job spec field
        names, ``"max_side"``) and ``{name}`` for each of ``values`` (quoted as they are:
        a value holding braces is not read as a template).  ``field`` defaults to the first
        option."""
        error = cls(template.format(*map(flag, options), **values))
        error.template, error.options, error.values = template, options, values
        error.field = field if field is not None else (options[0] if options else None)
        return error

    def worded(self, name: Callable[[str], str]) -> str:
        """The message with every option it names spelled by ``name``."""
        if self.template is None:
            return str(self)
        return self.template.format(*map(name, self.options), **(self.values or {}))


class JobError(UsageError):
    """The job cannot start (a usage problem); the message is one line for the user."""


class VideoError(SnhooError):
    """One video cannot be processed; the message is its record's reason."""


class FastPathError(SnhooError):
    """A decode-less plan cannot be proven on this file: decode it the plain way."""

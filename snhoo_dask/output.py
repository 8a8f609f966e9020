"""The output folder: made ready for a job, and kept apart from the roots it reads."""

from __future__ import annotations

import os

from .errors import JobError


def _real(path: str) -> str:
    return os.path.realpath(os.path.abspath(os.path.expanduser(path)))


def _inside(path: str, base: str) -> bool:
    return path == base or os.path.commonpath([path, base]) == base


def _named(out: str) -> None:
    # "" is the current folder to every path function: an unset shell variable would
    # scatter a job's folders and manifest wherever the command happened to run.
    if not out.strip():
        raise JobError("--out is empty: name the output folder")


def check_apart(out: str, roots: list[str]) -> str:
    """The resolved output folder; JobError if it is, lies inside, or contains a root
    (symlinks resolved).

    Frames written among the videos would be found as input by the next run, and a
    video's output folder could take the place of a source file.
    """
    _named(out)
    out_real = _real(out)
    for root in roots:
        root_real = _real(root)
        if out_real == root_real:
            raise JobError(
                f"the output folder {out} is the root {root} itself; choose an output folder outside it"
            )
        if _inside(out_real, root_real):
            raise JobError(f"the output folder {out} lies inside the root {root}; choose one outside it")
        if _inside(root_real, out_real):
            raise JobError(
                f"the root {root} lies inside the output folder {out}; choose another output folder"
            )
    return out_real


def prepare_output(out: str, roots: list[str] | None = None) -> str:
    """The resolved output folder (no link left on it: tasks open it with none followed),
    created if needed; JobError if it cannot be used."""
    _named(out)
    out = os.path.abspath(os.path.expanduser(out))
    if roots:
        check_apart(out, roots)
    if os.path.islink(out) and not os.path.isdir(out):
        raise JobError(f"the output folder {out} is a broken symbolic link")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise JobError(f"cannot create the output folder {out}: {e.strerror}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise JobError(f"the output folder {out} is not writable (permission denied)")
    return _real(out)

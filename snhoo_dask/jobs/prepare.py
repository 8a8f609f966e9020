"""The output folder: made ready for a job, and kept apart from the roots it reads."""

from __future__ import annotations

import os

from ..errors import JobError
from ..fs.bounded import beat
from ..fs.fsafe import open_dir
from ..output.layout import DONE_FILE, OUT_MARKERS, run_below


def _real(path: str) -> str:
    return os.path.realpath(os.path.abspath(os.path.expanduser(path)))


def _inside(path: str, base: str) -> bool:
    return path == base or os.path.commonpath([path, base]) == base


def _named(out: str) -> None:
    # "" is the current folder to every path function: an unset shell variable would
    # scatter a job's folders and manifest wherever the command happened to run.
    if not out.strip():
        raise JobError.naming("{} is empty: name the output folder", "out")


def nested_in(out_real: str) -> str | None:
    """Why the resolved folder ``out_real`` cannot be an output folder: it lies inside another
    snhoo-dask run's output (a folder above it holds that run's lock or fence, or a video's
    done record), or it is a video's own output folder.  None if it can.

    Inside another output, this run's folders would be replaced by that run's publishes, or
    swept with its temporary folders, and that run's manifest would no longer say what is there.
    """
    parts = [p for p in out_real.split(os.sep) if p]
    for i in range(1, len(parts)):  # from the top: the outermost output is the one to name
        above = os.sep + os.sep.join(parts[:i])
        marker = next((m for m in OUT_MARKERS if os.path.lexists(os.path.join(above, m))), None)
        if marker:
            return (
                f"the output folder {out_real} lies inside {above}, the output of another snhoo-dask "
                f"run (it holds {marker}); choose an output folder outside it"
            )
    if os.path.lexists(os.path.join(out_real, DONE_FILE)):
        return (
            f"the output folder {out_real} is one video's folder in the output of another snhoo-dask "
            f"run (it holds {DONE_FILE}); choose another output folder"
        )
    try:
        fd = open_dir(out_real)
    except OSError:
        return None  # not there yet (made empty), or refused when it is opened for the job
    try:
        return run_below(fd, out_real)
    finally:
        os.close(fd)


def check_not_nested(out_real: str) -> None:
    problem = nested_in(out_real)
    if problem:
        raise JobError(problem)


def check_apart(out: str, roots: list[str]) -> str:
    """The resolved output folder; JobError if it is, lies inside, or contains a root
    (symlinks resolved).

    Frames written among the videos would be found as input by the next run, and a
    video's output folder could take the place of a source file.
    """
    _named(out)
    beat("the output folder", out)
    out_real = _real(out)
    for root in roots:
        beat("the root", root)
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
    check_not_nested(out_real)
    return out_real


def prepare_output(out: str, roots: list[str] | None = None) -> str:
    """The resolved output folder (no link left on it: tasks open it with none followed),
    created if needed; JobError if it cannot be used."""
    _named(out)
    out = os.path.abspath(os.path.expanduser(out))
    if roots:
        check_apart(out, roots)
    else:
        check_not_nested(_real(out))
    beat("the output folder", out)
    if os.path.islink(out) and not os.path.isdir(out):
        raise JobError(f"the output folder {out} is a broken symbolic link")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise JobError(f"cannot create the output folder {out}: {e.strerror}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise JobError(f"the output folder {out} is not writable (permission denied)")
    return _real(out)

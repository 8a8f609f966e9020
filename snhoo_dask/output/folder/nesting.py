"""Which folder lies in which: an output folder is kept apart from the roots it reads, and
never made inside, around or into another snhoo-dask run's output (checked one way: ``problem``).

Inside another output, this run's folders would be replaced by that run's publishes, or
swept with its temporary folders, and that run's manifest would no longer say what is there;
around one, that run could never be rerun or resumed.  Frames written among the videos
would be found as input by the next run, and a video's output folder could take the place
of a source file.
"""

from __future__ import annotations

import os

from ...errors import JobError
from ...fs.bounded import beat
from ...fs.fsafe import open_dir, parts_of, walk
from ...fs.paths import contains
from .names import DONE_FILE, OUT_MARKERS, RUN_MARKERS, TMP_DIR
from .opened import holds


def apart(given: str, out_real: str, roots: list[str]) -> None:
    """JobError if the output folder (``given`` as typed, ``out_real`` resolved) is, lies
    inside, or contains a root (symlinks resolved)."""
    for root in roots:
        beat("the root", root)
        root_real = os.path.realpath(os.path.abspath(os.path.expanduser(root)))
        if out_real == root_real:
            raise JobError(
                f"the output folder {given} is the root {root} itself; choose an output folder outside it"
            )
        if contains(root_real, out_real):
            raise JobError(f"the output folder {given} lies inside the root {root}; choose one outside it")
        if contains(out_real, root_real):
            raise JobError(
                f"the root {root} lies inside the output folder {given}; choose another output folder"
            )


def problem(out_real: str, fd: int | None = None, rels: list[str] | None = None) -> str | None:
    """Why the resolved folder ``out_real`` (open as ``fd``, if it is) cannot be this job's
    output folder, or None: it lies inside another run's output (``_above``), it holds another
    run's output below it (``run_below``), or a folder on the way to one of the job's outputs
    (``rels``, relative to OUT) is another run's output (``_into``)."""
    found = _above(out_real)
    if found:
        return found
    if fd is None:
        try:
            fd = open_dir(out_real)
        except OSError:
            return None  # not there yet (made empty), or refused when it is opened for the job
        try:
            return run_below(fd, out_real)
        finally:
            os.close(fd)
    return run_below(fd, out_real) or (_into(fd, out_real, rels) if rels else None)


def _above(out_real: str) -> str | None:
    """Why ``out_real`` lies inside another snhoo-dask run's output: a folder above it holds
    that run's lock or fence, or a video's done record; or it is a video's own output folder."""
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
    return None


RUN_SEARCH_DEPTH = 6  # levels of folders below OUT searched for another run's output
RUN_SEARCH_FOLDERS = 5000  # folders looked into at most (a huge tree is searched that far)


def run_below(dir_fd: int, where: str) -> str | None:
    """Why the folder ``dir_fd`` (at ``where``) cannot be an output folder: a folder below it,
    up to RUN_SEARCH_DEPTH levels down and RUN_SEARCH_FOLDERS folders in all, holds another
    run's lock or fence (``RUN_MARKERS``).  Written around, that run could never be rerun or
    resumed: its folder would be the outer run's to replace.  Links are not followed, and a
    video's finished folder (it holds ``DONE_FILE``) or ``.snhoo-tmp`` is not searched."""
    level: list[list[str]] = [[]]  # folders as names below dir_fd: one descriptor open at a time
    seen = 0
    for _ in range(RUN_SEARCH_DEPTH):
        below: list[list[str]] = []
        for parts in level:
            try:
                fd = walk(dir_fd, parts) if parts else os.dup(dir_fd)
            except OSError:
                continue
            try:
                names = sorted(e.name for e in os.scandir(fd) if e.is_dir(follow_symlinks=False))
                for name in names:
                    if name == TMP_DIR or seen >= RUN_SEARCH_FOLDERS:
                        continue
                    seen += 1
                    try:
                        sub = walk(fd, [name])
                    except OSError:
                        continue
                    try:
                        marker = holds(sub, RUN_MARKERS)
                        finished = holds(sub, (DONE_FILE,))
                    finally:
                        os.close(sub)
                    if marker:
                        return (
                            f"the output folder {where} contains {os.path.join(where, *parts, name)}, "
                            f"the output folder of another snhoo-dask run (it holds {marker}); choose "
                            "one that does not contain it, so that run can still be rerun"
                        )
                    if not finished:
                        below.append([*parts, name])
            except OSError:
                pass  # a folder that cannot be listed holds nothing this can see
            finally:
                os.close(fd)
        level = below
    return None


def _into(out_fd: int, out_path: str, rels: list[str]) -> str | None:
    """Why a job writing these outputs (paths relative to OUT) would write into another run's
    output: a folder on the way to one of them that is there already holds another run's
    markers (``OUT_MARKERS``).  None if none does.  Each folder is looked at once; the
    outputs themselves are left to ``publish``, which replaces none but a finished video's."""
    tree: dict[str, dict] = {}
    for rel in rels:
        node = tree
        for part in parts_of(rel)[:-1]:
            node = node.setdefault(part, {})

    def visit(fd: int, node: dict[str, dict], where: str) -> str | None:
        for name, below in node.items():
            try:
                sub = walk(fd, [name])
            except OSError:
                continue  # not there yet (or a link or a file in the way: the task says so)
            try:
                path = os.path.join(where, name)
                marker = holds(sub, OUT_MARKERS)
                if marker:
                    return (
                        f"{path} is the output of another snhoo-dask run (it holds {marker}), and this "
                        f"job would write into it; choose another output folder than {out_path}"
                    )
                found = visit(sub, below, path)
                if found:
                    return found
            finally:
                os.close(sub)
        return None

    return visit(out_fd, tree, out_path)

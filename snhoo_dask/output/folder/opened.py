"""OUT opened once by descriptor: everything below it is made, read, renamed and deleted
relative to that descriptor, one component at a time with no link followed (``fsafe``), so
a folder under OUT swapped for a link while a job runs cannot redirect a write."""

from __future__ import annotations

import os

from ...fs.fsafe import UnsafePath, disk_errors, open_dir, walk


class OutputDir:
    """OUT opened by descriptor; ``path`` is resolved (no link on it) and names it in messages.

    ``ino``: the folder the job started with.  A task opening OUT again (on any worker)
    refuses a folder that is not that one: OUT renamed away and another put in its place.
    ``fence``: the token its run wrote into OUT/.snhoo-run when it took OUT (``take_over``);
    with one, ``publish`` moves nothing into place unless that run still holds OUT.
    """

    def __init__(self, path: str, ino: int | None = None, fence: str = "") -> None:
        self.path = path
        self.fence = fence
        with disk_errors(path):
            self.fd = open_dir(path)
            self.ino = os.fstat(self.fd).st_ino
        if ino is not None and ino != self.ino:
            self.close()
            raise UnsafePath(f"the output folder {path} was replaced since the job started")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> OutputDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def holds(dir_fd: int, names: tuple[str, ...]) -> str | None:
    """The first of ``names`` present in the folder ``dir_fd`` (a link counts), or None."""
    for name in names:
        try:
            os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            return name
        except OSError:
            pass
    return None


def safe_dirs(out: OutputDir, rel_parts: list[str]) -> int:
    """A descriptor of OUT/part1/part2/..., made one level at a time; a link or a file on the
    way is refused (UnsafePath), never followed or replaced.  The caller closes it."""
    return walk(out.fd, rel_parts, create=True, where=out.path)

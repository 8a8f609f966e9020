"""Files opened the way they were checked: by descriptor, one path component at a time,
never through a symbolic link.

A path checked and later opened again can be swapped in between (a folder replaced by a
link to somewhere else), so nothing here resolves a path a user could change twice:

* ``open_dir(path)`` walks an absolute, already resolved path from ``/`` with
  ``O_NOFOLLOW`` on every component; a link anywhere on the way is an ``UnsafePath``.
* ``walk(dir_fd, parts)`` goes down from an open folder the same way, creating folders
  when asked; ``open_beneath`` opens a file below a base folder the same way.
* ``Identity`` is what a file *is* (inode, size, modification time, and the device where it
  means something): taken at discovery, compared on the descriptor that is then read.

Every descriptor is close-on-exec; a child process gets one only through ``pass_fds``.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import NamedTuple

from ..errors import VideoError

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a named pipe put where a video was must not wait for a writer.
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


class UnsafePath(VideoError, OSError):
    """A path snhoo-dask will not go through (a link, a file in the way, '..'); says why."""


class DiskGone(UnsafePath):
    """The disk under a path went away (a FUSE or network mount whose server is gone): says so
    in words instead of ``[Errno 107] Transport endpoint is not connected``."""


def disk_gone(e: OSError, where: str = "") -> OSError:
    """``e`` as a DiskGone if it says the disk went away (ENOTCONN), else ``e`` itself."""
    if e.errno != errno.ENOTCONN or isinstance(e, UnsafePath):
        return e
    where = where or e.filename or ""
    return DiskGone(
        f"the disk went away ({e.strerror or 'Transport endpoint is not connected'})"
        + (f": {where}" if where else "")
    )


@contextmanager
def disk_errors(where: str = "") -> Iterator[None]:
    """Raise an OSError that says the disk went away as a DiskGone naming ``where``."""
    try:
        yield
    except OSError as e:
        gone = disk_gone(e, where)
        if gone is e:
            raise
        raise gone from None


class Identity(NamedTuple):
    """What a file is, as ``fstat`` tells it.

    ``dev`` is compared only on the machine that recorded it (``host``): the same NFS file
    has another device number on every client, and a USB disk plugged in again may get
    another one.  Inode, size and modification time are the file's own on every machine.
    """

    dev: int
    ino: int
    size: int
    mtime_ns: int
    host: str = ""

    def same_file(self, other: Identity) -> bool:
        if (self.ino, self.size, self.mtime_ns) != (other.ino, other.size, other.mtime_ns):
            return False
        return self.dev == other.dev if self.host and self.host == other.host else True

    def differences(self, other: Identity) -> str:
        """What changed from ``self`` to ``other``, in words (for a failure reason)."""
        said = []
        if self.ino != other.ino or (self.host == other.host and self.dev != other.dev):
            said.append("another file is now at its path")
        if self.size != other.size:
            said.append(f"size {self.size} -> {other.size} bytes")
        if self.mtime_ns != other.mtime_ns:
            said.append("modified")
        return ", ".join(said) or "changed"

    def to_text(self) -> str:
        """The form a record stores (resume compares it): ``ino:size:mtime_ns``."""
        return f"{self.ino}:{self.size}:{self.mtime_ns}"


_HOST: str | None = None


def this_host() -> str:
    """This machine for ``Identity.host``: its name and this boot (device numbers can change
    across a reboot)."""
    global _HOST
    if _HOST is None:
        try:
            with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
                boot = f.read().strip()
        except OSError:
            boot = ""
        _HOST = f"{socket.gethostname()}/{boot}"
    return _HOST


def identity(st: os.stat_result) -> Identity:
    return Identity(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, this_host())


def parts_of(rel: str) -> list[str]:
    """The components of a "/"-separated relative path; UnsafePath for '', '.', '..' or NUL."""
    parts = rel.split("/")
    for part in parts:
        if part in ("", ".", "..") or "\0" in part:
            raise UnsafePath(f"refusing the path component {part!r} in {rel!r}")
    return parts


def _refusal(e: OSError, dir_fd: int, where: str, name: str) -> OSError:
    """An ``openat`` error on one component, in words; a link or a file in the way is UnsafePath."""
    shown = os.path.join(where, name)
    if e.errno == errno.ENOTCONN:
        return disk_gone(e, shown)
    if e.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(dir_fd, name):
        return UnsafePath(f"{shown} is a symbolic link; snhoo-dask does not follow it here")
    if e.errno == errno.ENOTDIR:
        return UnsafePath(f"{shown} is not a folder")
    e.filename = shown
    return e


def walk(dir_fd: int, parts: list[str], create: bool = False, where: str = "", mode: int = 0o777) -> int:
    """A new descriptor of the folder ``parts`` below ``dir_fd``, no link followed on the way.

    With ``create``, missing folders are made (``mkdirat``); an existing link or file in
    their place is refused, never replaced.  ``where`` names ``dir_fd`` in messages.
    """
    fd = os.dup(dir_fd)
    try:
        for part in parts:
            if part in ("", ".", "..") or "\0" in part:
                raise UnsafePath(f"refusing the path component {part!r} under {where}")
            if create:
                try:
                    os.mkdir(part, mode, dir_fd=fd)
                except FileExistsError:
                    pass
                except OSError as e:
                    raise disk_gone(e, os.path.join(where, part)) from None
            try:
                nxt = os.open(part, _DIR, dir_fd=fd)
            except OSError as e:
                raise _refusal(e, fd, where, part) from None
            os.close(fd)
            fd = nxt
            where = os.path.join(where, part)
        return fd
    except BaseException:
        os.close(fd)
        raise


def open_dir(path: str, create: bool = False, mode: int = 0o777) -> int:
    """A descriptor of the absolute folder ``path``, walked from ``/`` with no link followed.

    ``path`` must be resolved already (``os.path.realpath``): a link on it now means it was
    changed since.
    """
    if not os.path.isabs(path):
        raise UnsafePath(f"not an absolute path: {path!r}")
    top = os.open("/", _DIR)
    try:
        return walk(top, [p for p in path.split("/") if p], create=create, where="/", mode=mode)
    finally:
        os.close(top)


def open_file(dir_fd: int, name: str, where: str = "") -> int:
    """A descriptor for reading ``name`` in the folder ``dir_fd`` (a link is refused).

    The descriptor is blocking again once open; the caller checks what it is (``fstat``).
    """
    try:
        fd = os.open(name, _READ, dir_fd=dir_fd)
    except OSError as e:
        raise _refusal(e, dir_fd, where, name) from None
    os.set_blocking(fd, True)
    return fd


def open_regular(dir_fd: int, name: str, where: str = "") -> int:
    """``open_file``, refused (UnsafePath) unless it is a plain file: what is sent or read as
    data is never a folder, a device or a named pipe that would block the reader."""
    return open_plain(dir_fd, name, where=where)


def open_plain(dir_fd: int, name: str, flags: int = os.O_RDONLY, mode: int = 0o644, where: str = "") -> int:
    """``name`` in ``dir_fd`` opened with ``flags`` (``O_CREAT`` and the like allowed), only
    if it is a plain file: UnsafePath if it is a link, a named pipe, a device, a socket or a
    folder.  The open itself never waits (``O_NONBLOCK``: a named pipe put in OUT must not
    freeze the run), the descriptor is blocking once checked.  For every file of a job read
    in OUT: its lock, fence, manifest and done records."""
    flags |= os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
    try:
        fd = os.open(name, flags, mode, dir_fd=dir_fd)
    except OSError as e:
        if e.errno in (errno.ENXIO, errno.EISDIR):  # a pipe without a reader, a socket; a folder
            raise _not_plain(dir_fd, name, where) from None
        raise _refusal(e, dir_fd, where, name) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise _not_plain(dir_fd, name, where)
    os.set_blocking(fd, True)
    return fd


_KINDS = {stat.S_IFIFO: "a named pipe", stat.S_IFCHR: "a device", stat.S_IFBLK: "a device"}
_KINDS.update({stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a folder"})


def _not_plain(dir_fd: int, name: str, where: str) -> UnsafePath:
    try:
        kind = _KINDS.get(stat.S_IFMT(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode))
    except OSError:
        kind = None
    what = f" ({kind})" if kind else ""
    return UnsafePath(f"{os.path.join(where, name)} is not a plain file{what}; snhoo-dask does not read it")


def read_beneath(base: str, rel: str) -> bytes:
    """The bytes of the plain file ``rel`` below the resolved folder ``base``; no link followed
    (UnsafePath), FileNotFoundError if it is not there."""
    with open(open_beneath(base, rel, regular=True), "rb") as f:
        return f.read()


def open_beneath(base: str, rel: str, regular: bool = False) -> int:
    """A descriptor for reading the file ``rel`` below the resolved folder ``base``; no link
    is followed, neither in ``base`` nor below it (UnsafePath), and '..' is refused."""
    parts = parts_of(rel)
    top = open_dir(base)
    try:
        folder = walk(top, parts[:-1], where=base)
    finally:
        os.close(top)
    try:
        opener = open_regular if regular else open_file
        return opener(folder, parts[-1], where=os.path.join(base, *parts[:-1]))
    finally:
        os.close(folder)


def create_file(dir_fd: int, name: str, exclusive: bool = True, mode: int = 0o644) -> int:
    """A new file ``name`` in ``dir_fd`` for writing; never opens an existing link."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    flags |= os.O_EXCL if exclusive else os.O_TRUNC
    return os.open(name, flags, mode, dir_fd=dir_fd)


def _is_link(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def is_dir_at(dir_fd: int, name: str) -> bool:
    """Whether ``name`` in ``dir_fd`` is a real folder (not a link to one)."""
    try:
        return stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def remove_entry(dir_fd: int, name: str) -> None:
    """Unlink ``name`` in ``dir_fd`` if it is a file or a link (the link itself); a folder
    stays (it may be someone's)."""
    try:
        os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass


def remove_tree(dir_fd: int, name: str) -> None:
    """Delete ``name`` in ``dir_fd`` and, if it is a real folder, all below it; a link is removed
    as a link, never followed.  Best effort: what cannot be removed stays."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(name, dir_fd=dir_fd)
            return
        fd = os.open(name, _DIR, dir_fd=dir_fd)
    except OSError:
        return
    try:
        for entry in os.listdir(fd):
            remove_tree(fd, entry)
    except OSError:
        pass
    finally:
        os.close(fd)
    with suppress(OSError):
        os.rmdir(name, dir_fd=dir_fd)


@contextmanager
def opened_dir(path: str, create: bool = False) -> Iterator[int]:
    fd = open_dir(path, create=create)
    try:
        yield fd
    finally:
        os.close(fd)


def fd_path(fd: int) -> str:
    """A name for ``fd`` that opens the same file (in this process, or in a child given the
    same descriptor number with ``pass_fds``)."""
    return f"/proc/self/fd/{fd}"

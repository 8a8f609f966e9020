"""Where things live in the output folder, and the one-rename publish of a video's frames.

    OUT/manifest.jsonl                 one record per video per run
    OUT/report.html                    the job's report
    OUT/<root name>/<rel video path>/  finished frames of one video (appears whole or not at all)
        000123.jpg ... frames.csv .snhoo-done.json
    OUT/<root name>/<rel video path>.tar   the same, packed (--pack tar; see formats)
    OUT/.snhoo-tmp/                    folders being written; swept at start and end of a run

OUT is opened once (``OutputDir``) and everything below it is made, read, renamed and
deleted relative to that descriptor, one component at a time with no link followed
(``fsafe``): a folder under OUT swapped for a link while a job runs cannot redirect a
write.  Everything under OUT that snhoo-dask replaces or deletes, it created itself: a
publish replaces only a finished snhoo-dask folder.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
import tarfile
import time
import unicodedata
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import BinaryIO, NamedTuple

from ..fs.fsafe import (
    UnsafePath,
    create_file,
    disk_errors,
    is_dir_at,
    open_dir,
    open_plain,
    parts_of,
    remove_tree,
    walk,
)
from ..model import VideoRecord

__all__ = ["UnsafePath"]  # raised by everything here; importers name it from this module

TMP_DIR = ".snhoo-tmp"
DONE_FILE = ".snhoo-done.json"
MANIFEST = "manifest.jsonl"
REPORT = "report.html"
LOCK_FILE = ".snhoo.lock"
DONE_MEMBER = "__snhoo_done__"  # a tar's completion record: what .snhoo-done.json is to a folder
TAR_NAME = "frames.tar"  # the tar's name inside the video's temporary folder
TAR_SUFFIX = ".tar"
IMAGE_EXTENSIONS = (".jpg", ".png")
RUN_FILE = ".snhoo-run"  # which run holds OUT now: its tasks publish only while it does (fence)
# Names a root's output folder may not take: they are the job's own files.
RESERVED_NAMES = frozenset({TMP_DIR, DONE_FILE, MANIFEST, REPORT, REPORT + ".tmp", LOCK_FILE, RUN_FILE})
# What only an output folder of snhoo-dask (or, DONE_FILE, one video's folder in it) holds:
# an output folder is never made inside, nor around, a folder holding one (output.nested_in,
# nested_output).  Not manifest.jsonl (a data set of the user's may have one), nor .snhoo-tmp
# (a run removes it at its end; a root of the user's may be named so).
OUT_MARKERS = (LOCK_FILE, RUN_FILE, DONE_FILE)
RUN_MARKERS = (LOCK_FILE, RUN_FILE)  # an output folder of a run, not a video's


class Folding(NamedTuple):
    """How the output disk compares names: which names it takes for one and the same.

    Most Linux filesystems tell every byte apart; NTFS (``ntfs-3g -o ignore_case``), exFAT,
    FAT and a default macOS volume take ``Case.mp4`` and ``case.mp4`` for one name, and macOS
    also the two Unicode spellings of ``é``.  Two videos whose output names are one name there
    would share one folder, so ``key`` says which names the disk cannot tell apart.
    """

    case: bool = False  # names that differ only in case are one name
    unicode: bool = False  # names that differ only in Unicode normalisation are one name

    @property
    def folds(self) -> bool:
        return self.case or self.unicode

    def key(self, name: str) -> str:
        """``name`` as the disk compares it (over-folding, never under: ``upper`` then
        ``casefold`` covers the disks' simple case tables, whose ``ı`` is ``I``)."""
        if self.unicode:
            name = unicodedata.normalize("NFD", name)
        if self.case:
            name = name.upper().casefold()
            if self.unicode:
                name = unicodedata.normalize("NFD", name)
        return name

    def path_key(self, rel: str) -> str:
        return "/".join(self.key(p) for p in rel.split("/"))

    def describe(self) -> str:
        both = self.case and self.unicode
        return (
            "only in case" + (" or in Unicode normalisation" if both else "")
            if self.case
            else ("only in Unicode normalisation")
        )


# What a disk that cannot be probed (read-only, full) is taken to do: the safe guess folds.
FOLDING_UNKNOWN = Folding(case=True, unicode=True)


def probe_folding(dir_fd: int) -> Folding:
    """How the filesystem of the folder ``dir_fd`` compares names, found by asking it: a
    probe file is made, looked up in another case and in another Unicode spelling, removed.
    A guess from the filesystem's type would be wrong for FUSE, casefold ext4 folders, shares."""
    stem = f".snhoo-probe-{uuid.uuid4().hex}-aZ"
    for accent in ("\u00e9", ""):  # a disk that refuses "é" in names is probed for case only
        name = stem + accent
        try:
            fd = create_file(dir_fd, name)
        except OSError as e:
            if accent and e.errno in (errno.EINVAL, errno.EILSEQ):
                continue
            return _folding_by_lookup(dir_fd)  # a full or read-only disk: ask with a name it has
        try:
            ino = os.fstat(fd).st_ino
            case = _is_at(dir_fd, stem[:-2] + "Az" + accent, ino)
            unicode = bool(accent) and _is_at(dir_fd, stem + unicodedata.normalize("NFD", accent), ino)
            return Folding(case, unicode)
        finally:
            os.close(fd)
            with suppress(OSError):
                os.unlink(name, dir_fd=dir_fd)
    return FOLDING_UNKNOWN


def _folding_by_lookup(dir_fd: int, looked_at: int = 1000) -> Folding:
    """The disk's case folding asked with a name already in the folder (looked up in another
    case); Unicode folding, which such a name rarely shows, taken to be there (the safe guess).
    FOLDING_UNKNOWN if no name there has letters."""
    try:
        with os.scandir(dir_fd) as entries:
            for i, entry in enumerate(entries):
                if i >= looked_at:
                    break
                other = entry.name.swapcase()
                if other != entry.name and other.swapcase() == entry.name:
                    ino = entry.inode()
                    return Folding(case=_is_at(dir_fd, other, ino), unicode=True)
    except OSError:
        pass
    return FOLDING_UNKNOWN


def _is_at(dir_fd: int, name: str, ino: int) -> bool:
    """Whether looking ``name`` up in ``dir_fd`` finds the file ``ino``."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_ino == ino
    except OSError:
        return False


def probe_folding_at(path: str) -> Folding:
    """``probe_folding`` of the folder ``path``, or of its nearest existing parent (where it
    will be made) if it is not there yet."""
    path = os.path.realpath(os.path.abspath(path))
    while not os.path.isdir(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    try:
        fd = open_dir(path)
    except OSError:
        return FOLDING_UNKNOWN
    try:
        return probe_folding(fd)
    finally:
        os.close(fd)


class StaleRun(UnsafePath):
    """A task of a run that no longer holds OUT (another run took it since): it publishes nothing."""


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

    def __exit__(self, *exc) -> None:
        self.close()


def _holds(dir_fd: int, names: tuple[str, ...]) -> str | None:
    """The first of ``names`` present in the folder ``dir_fd`` (a link counts), or None."""
    for name in names:
        try:
            os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            return name
        except OSError:
            pass
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
                        marker = _holds(sub, RUN_MARKERS)
                        finished = _holds(sub, (DONE_FILE,))
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


def nested_output(out: OutputDir, rels: list[str]) -> str | None:
    """Why a job writing these outputs (paths relative to OUT) would write into another run's
    output: a folder on the way to one of them that is there already holds another run's
    markers (``OUT_MARKERS``).  None if none does.  Each folder is looked at once; the
    outputs themselves are left to ``publish``, which replaces none but a finished video's."""
    tree: dict = {}
    for rel in rels:
        node = tree
        for part in parts_of(rel)[:-1]:
            node = node.setdefault(part, {})

    def visit(fd: int, node: dict, where: str) -> str | None:
        for name, below in node.items():
            try:
                sub = walk(fd, [name])
            except OSError:
                continue  # not there yet (or a link or a file in the way: the task says so)
            try:
                path = os.path.join(where, name)
                marker = _holds(sub, OUT_MARKERS)
                if marker:
                    return (
                        f"{path} is the output of another snhoo-dask run (it holds {marker}), and this "
                        f"job would write into it; choose another output folder than {out.path}"
                    )
                found = visit(sub, below, path)
                if found:
                    return found
            finally:
                os.close(sub)
        return None

    return visit(out.fd, tree, out.path)


def _flock(fd: int, how: int, timeout: float) -> None:
    """``flock`` within ``timeout`` s (TimeoutError after); a filesystem without locks
    (ENOLCK, EOPNOTSUPP) is not locked, the fence then checked without one."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, how | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise TimeoutError from None
            time.sleep(0.01)
        except OSError as e:
            if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                return
            raise


def take_over(out: OutputDir, run_id: str, wait: float = 30.0) -> str:
    """Make ``run_id`` the run whose tasks may publish into OUT; return its fence token.

    Called under the run's lock.  The token is written into OUT/.snhoo-run under an
    exclusive ``flock`` that every publish takes shared around its check and its rename:
    once this returns, a task of an earlier run (interrupted, its tasks still running on
    the cluster) finds another token there and discards its work instead of replacing
    what this run decides on.
    """
    token = f"{run_id}/{uuid.uuid4().hex}"
    fd = open_plain(out.fd, RUN_FILE, os.O_RDWR | os.O_CREAT, where=out.path)
    try:
        _flock(fd, fcntl.LOCK_EX, wait)
        data = json.dumps({"run": run_id, "fence": token, "started": time.strftime("%Y-%m-%d %H:%M:%S")})
        os.ftruncate(fd, 0)
        os.pwrite(fd, data.encode(), 0)
        os.fsync(fd)
    finally:
        os.close(fd)  # and the lock with it
    return token


@contextmanager
def _fenced(out: OutputDir) -> Iterator[None]:
    """Held around a publish's rename: StaleRun unless OUT's fence is still ``out.fence``, and
    no other run can take OUT over until it is released."""
    if not out.fence:
        yield
        return
    run = out.fence.partition("/")[0]
    try:
        fd = open_plain(out.fd, RUN_FILE, where=out.path)
    except FileNotFoundError:
        fd = None
    try:
        current: dict = {}
        if fd is not None:
            _flock(fd, fcntl.LOCK_SH, 60.0)
            try:
                current = json.loads(os.pread(fd, 4096, 0) or b"{}")
            except ValueError:
                current = {}
        if not isinstance(current, dict) or current.get("fence") != out.fence:
            now = current.get("run") if isinstance(current, dict) else None
            since = f"run {now} started on it since" if now else "another run took it since"
            raise StaleRun(
                f"this run ({run}) no longer holds the output folder {out.path} ({since}); "
                "its frames of this video were discarded"
            )
        yield
    finally:
        if fd is not None:
            os.close(fd)


def safe_dirs(out: OutputDir, rel_parts: list[str]) -> int:
    """A descriptor of OUT/part1/part2/..., made one level at a time; a link or a file on the
    way is refused (UnsafePath), never followed or replaced.  The caller closes it."""
    return walk(out.fd, rel_parts, create=True, where=out.path)


class TmpDir:
    """A fresh folder in OUT/.snhoo-tmp (on the output filesystem, so the publish rename is
    atomic): ``fd`` is the folder, ``base`` its parent, both open until ``remove``."""

    def __init__(self, out: OutputDir) -> None:
        with disk_errors(out.path):
            self.base = safe_dirs(out, [TMP_DIR])
        self.name = uuid.uuid4().hex
        self.path = os.path.join(out.path, TMP_DIR, self.name)  # for messages only
        self.out_path = out.path
        try:
            with disk_errors(out.path):
                os.mkdir(self.name, 0o755, dir_fd=self.base)
                self.fd = walk(self.base, [self.name])
        except BaseException:
            os.close(self.base)
            raise

    def remove(self) -> None:
        """Delete the folder and what is left in it (after a publish: nothing), close both."""
        remove_tree(self.base, self.name)
        os.close(self.fd)
        os.close(self.base)

    def keep(self) -> None:
        """Close both, leaving the folder for another task to take over (a piece's images,
        which the video's join moves out); a sweep removes it if none does."""
        os.close(self.fd)
        os.close(self.base)


def read_done(parent_fd: int, name: str) -> dict | None:
    """The completion record of the published folder or tar ``name`` in ``parent_fd``, or
    None if it is not a complete snhoo-dask output (a link is never one)."""
    try:
        mode = os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode
    except OSError:
        return None
    try:
        if stat.S_ISREG(mode) and name.endswith(TAR_SUFFIX):
            fd = open_plain(parent_fd, name)
            with open(fd, "rb") as f:
                return read_tar_done(f)
        if not stat.S_ISDIR(mode):
            return None
        folder = walk(parent_fd, [name])
        try:
            fd = open_plain(folder, DONE_FILE)
        finally:
            os.close(folder)
        with open(fd, encoding="utf-8") as f:
            done = json.load(f)
    except (OSError, ValueError):
        return None
    return done if isinstance(done, dict) else None


def complete(parent_fd: int, name: str, done: dict) -> bool:
    """Whether the published folder ``name`` still holds what its done record lists: every
    file by name and size (``files``, written by the sink's ``seal``), plain files, no link.
    Records of older versions list no files: then what frames.csv names must be there.  A tar
    needs no look: its record is its last member, and a tar cut short has none."""
    try:
        if not stat.S_ISDIR(os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode):
            return True
        folder = walk(parent_fd, [name])
    except OSError:
        return False
    try:
        files = done.get("files")
        if not isinstance(files, dict):
            files = _listed_in_csv(folder)
            if files is None:
                return True  # an old record and no frames.csv to go by: as before, trusted
        for file, size in files.items():
            try:
                st = os.stat(file, dir_fd=folder, follow_symlinks=False)
            except (OSError, ValueError, TypeError):
                return False
            if not stat.S_ISREG(st.st_mode) or (size is not None and st.st_size != size):
                return False
        return True
    finally:
        os.close(folder)


def _listed_in_csv(folder: int) -> dict[str, None] | None:
    import csv

    try:
        fd = open_plain(folder, "frames.csv")
    except OSError:
        return None
    with open(fd, encoding="utf-8", newline="") as f:
        try:
            return {row["file"]: None for row in csv.DictReader(f) if row.get("file")}
        except (csv.Error, KeyError, ValueError):
            return {"frames.csv": None, "": None}  # unreadable: not complete


def _same_source(previous: dict, size: int, source: str | None) -> bool:
    """Whether a finished output was made from this source file: its identity when both
    records have one (outputs of older versions carry only the size)."""
    if source and previous.get("source"):
        return previous.get("source") == source
    return previous.get("size") == size


def finished_record(
    out: OutputDir, out_rel: str, signature: dict, size: int, source: str | None = None
) -> VideoRecord | None:
    """The record of a published output made with these settings from this source file."""
    return previous_output(out, out_rel, signature, size, source)[0]


# The signature's parts in a user's words, for why an earlier output is redone.
SIGNED = {"selection": "the frame selection", "format": "the image format", "quality": "the quality"}


def previous_output(
    out: OutputDir, out_rel: str, signature: dict, size: int, source: str | None = None
) -> tuple[VideoRecord | None, str | None]:
    """(the record of a published output made with these settings from this source file,
    None), or (None, why a finished output of an earlier run there is not one: other
    settings, another file, images changed), or (None, None) when there is none."""
    parts = parts_of(out_rel)
    try:
        parent = walk(out.fd, parts[:-1], where=out.path)
    except OSError:
        return None, None  # not there yet, or a link in the way: nothing of ours is finished there
    try:
        done = read_done(parent, parts[-1])
        if not done:
            return None, None
        old = done.get("signature")
        if old != signature:
            if not isinstance(old, dict):
                return None, "made by another version"
            changed = [k for k in dict.fromkeys([*old, *signature]) if old.get(k) != signature.get(k)]
            said = [SIGNED.get(k, k.replace("_", " ")) for k in changed]
            return None, f"made with other settings ({', '.join(said)})"
        record = done.get("record") or {}
        if not isinstance(record, dict) or not _same_source(record, size, source):
            return None, "from a file that has changed since"
        if not complete(parent, parts[-1], done):
            return None, "with images changed or deleted since"  # the folder is ours to replace
    finally:
        os.close(parent)
    try:
        return VideoRecord.from_dict(record), None
    except (TypeError, ValueError):
        return None, None


def publish(
    tmp: TmpDir,
    finished: tuple[int, str],
    out: OutputDir,
    out_rel: str,
    signature: dict,
    size: int,
    source: str | None = None,
) -> bool:
    """Move a finished folder or tar (``finished``: its folder's descriptor and its name) into
    place in one rename; False if an equal, complete result is already there.

    Only a finished snhoo-dask output is ever replaced: anything else at the target (a
    source video, a user's folder or file, a link, another run's output folder) makes this
    raise UnsafePath and stays as it was.  With ``out.fence``, only while this task's run
    still holds OUT (StaleRun, nothing moved, if another run took it since).
    """
    parts = parts_of(out_rel)
    final = os.path.join(out.path, *parts)  # for messages only
    with disk_errors(final):
        return _publish(tmp, finished, out, parts, final, signature, size, source)


def _publish(
    tmp: TmpDir,
    finished: tuple[int, str],
    out: OutputDir,
    parts: list[str],
    final: str,
    signature: dict,
    size: int,
    source: str | None,
) -> bool:
    parent = safe_dirs(out, parts[:-1])
    trash = None
    try:
        name = parts[-1]
        with _fenced(out):
            try:
                mode = os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
            except FileNotFoundError:
                mode = None
            if mode is not None:
                if stat.S_ISLNK(mode):
                    raise UnsafePath(
                        f"{final} is a symbolic link; snhoo-dask never replaces a link inside the output folder"
                    )
                marker = _run_marker(parent, name) if stat.S_ISDIR(mode) else None
                if marker:
                    raise UnsafePath(
                        f"{final} is the output folder of another snhoo-dask run (it holds {marker}); "
                        "snhoo-dask never replaces it"
                    )
                done = read_done(parent, name)
                if done is None:
                    raise UnsafePath(
                        f"{final} already exists and is not a finished snhoo-dask output; "
                        "move it away or choose another output folder"
                    )
                if (
                    done.get("signature") == signature
                    and _same_source(done.get("record") or {}, size, source)
                    and complete(parent, name, done)
                ):
                    # Already complete for this selection (e.g. a task recomputed after a worker
                    # died): keep the published folder rather than swapping it for an equal one.
                    return False
                trash = "old-" + uuid.uuid4().hex
                os.rename(name, trash, src_dir_fd=parent, dst_dir_fd=tmp.base)
            src_fd, src_name = finished
            try:
                os.rename(src_name, name, src_dir_fd=src_fd, dst_dir_fd=parent)
            except OSError as e:
                if trash:  # put back what was there: the video keeps its last output
                    try:
                        os.rename(trash, name, src_dir_fd=tmp.base, dst_dir_fd=parent)
                        trash = None
                    except OSError:
                        pass
                if e.errno == errno.ENAMETOOLONG:
                    raise UnsafePath(f"the output name {name!r} is too long for the output disk") from None
                raise
        return True
    finally:
        os.close(parent)
        if trash:
            remove_tree(tmp.base, trash)  # after the fence is let go: this may take a while


def _run_marker(parent: int, name: str) -> str | None:
    try:
        folder = walk(parent, [name])
    except OSError:
        return None
    try:
        return _holds(folder, RUN_MARKERS)
    finally:
        os.close(folder)


def sweep_tmp(out: OutputDir) -> int:
    """Remove folders left by interrupted runs or killed workers; return how many."""
    if not is_dir_at(out.fd, TMP_DIR):
        return 0  # absent, or a link/file a user put there: never list or delete through it
    try:
        base = walk(out.fd, [TMP_DIR])
    except OSError:
        return 0
    try:
        names = os.listdir(base)
        for name in names:
            # Rename first: a task of an interrupted run may still be writing into its folder.
            # After the (atomic) rename its next write or its publish fails, instead of racing
            # the removal and publishing a folder with some images deleted.
            trash = "swept-" + uuid.uuid4().hex
            try:
                os.rename(name, trash, src_dir_fd=base, dst_dir_fd=base)
            except OSError:
                trash = name
            remove_tree(base, trash)
    except OSError:
        return 0
    finally:
        os.close(base)
    try:
        os.rmdir(TMP_DIR, dir_fd=out.fd)
    except OSError:
        pass
    return len(names)


def read_tar_done(file: BinaryIO) -> dict | None:
    """The completion record of a published tar (an open file), or None if it has none (not
    ours, or cut)."""
    try:
        with tarfile.open(fileobj=file, mode="r:") as tar:
            done = None
            for member in tar:
                if member.name == DONE_MEMBER and member.isreg():
                    f = tar.extractfile(member)
                    done = json.loads(f.read().decode("utf-8")) if f else None
    except (OSError, tarfile.TarError, ValueError):
        return None
    return done if isinstance(done, dict) else None

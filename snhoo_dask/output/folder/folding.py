"""How the output disk compares names, found by asking it, and the videos whose output
names it would take for one."""

from __future__ import annotations

import errno
import os
import unicodedata
import uuid
from contextlib import suppress
from typing import NamedTuple

from ...fs.fsafe import create_file, open_dir
from ...model import Video


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


def name_clashes(videos: list[Video], folding: Folding, out: str, shown: int = 3) -> str | None:
    """Why these videos cannot share the output folder ``out``, whose disk compares names as
    ``folding`` says: the outputs of two of them would be one name there (``Case.mp4`` and
    ``case.mp4`` on NTFS), or one's output the folder of another's.  None if they can."""
    if not folding.folds:
        return None
    outputs: dict[str, list[Video]] = {}
    folders: dict[str, Video] = {}  # the folders the outputs go in, by key: a video below each
    for v in videos:
        outputs.setdefault(folding.path_key(v.out_rel), []).append(v)
        parts = v.out_rel.split("/")
        for i in range(1, len(parts)):
            folders.setdefault(folding.path_key("/".join(parts[:i])), v)
    groups = [vs for vs in outputs.values() if len(vs) > 1]
    groups += [[vs[0], folders[k]] for k, vs in outputs.items() if k in folders]
    if not groups:
        return None
    said = "; ".join(" and ".join(v.path for v in vs) for vs in groups[:shown])
    more = f" (and {len(groups) - shown} more)" if len(groups) > shown else ""
    return (
        f"the disk of the output folder {out} takes names that differ {folding.describe()} for one "
        f"name, so these videos would write one output: {said}{more}; rename them, or choose an "
        "output folder on a disk that tells them apart"
    )

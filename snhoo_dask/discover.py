"""Find the videos under one or more roots."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from .layout import RESERVED_NAMES

DEFAULT_EXTENSIONS = (
    "mp4",
    "m4v",
    "mov",
    "avi",
    "mkv",
    "webm",
    "flv",
    "wmv",
    "mpg",
    "mpeg",
    "ts",
    "mts",
    "m2ts",
    "3gp",
)


class DiscoveryError(Exception):
    """A root cannot be used; the message is the one-line reason."""


@dataclass(frozen=True)
class Video:
    """One video: where it lives and where its frames go, relative to the output folder."""

    root: str  # absolute root folder as given (normalised)
    root_name: str  # folder name under the output for this root
    rel: str  # path of the video relative to its root, with "/" separators
    size: int
    suffix: str = ""  # after the output name: ".tar" when the frames are packed

    @property
    def path(self) -> str:
        return os.path.join(self.root, *self.rel.split("/"))

    @property
    def out_rel(self) -> str:
        """The video's output relative to OUT: <root name>/<rel path incl. extension>[.tar]."""
        return f"{self.root_name}/{self.rel}{self.suffix}"


def parse_extensions(text: str | None) -> tuple[str, ...]:
    if not text:
        return DEFAULT_EXTENSIONS
    exts = tuple(e.strip().lower().lstrip(".") for e in text.split(",") if e.strip())
    if not exts:
        raise DiscoveryError(f"--ext wants extensions like mp4,mov, got {text!r}")
    return exts


def check_root(root: str) -> str:
    """The absolute root, or DiscoveryError saying what is wrong with it."""
    path = os.path.abspath(os.path.expanduser(root))
    if not os.path.exists(path):
        raise DiscoveryError(f"root {root!r} does not exist")
    if not os.path.isdir(path):
        raise DiscoveryError(f"root {root!r} is not a directory")
    if not os.access(path, os.R_OK | os.X_OK):
        raise DiscoveryError(f"root {root!r} is not readable (permission denied)")
    return path


def root_names(roots: list[str]) -> dict[str, str]:
    """A distinct output folder name per root: its own name, plus a short hash if two clash."""
    base = {r: (os.path.basename(r.rstrip(os.sep)) or "root") for r in roots}
    names = {}
    for r in roots:
        name = base[r]
        # A root named like one of the job's own files (".snhoo-tmp", "manifest.jsonl", ...)
        # would publish into, or over, that file: it gets the hash suffix too.
        if list(base.values()).count(name) > 1 or name in RESERVED_NAMES:
            name = f"{name}-{hashlib.sha1(r.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}"
        names[r] = name
    return names


@dataclass
class Discovery:
    videos: list[Video]
    problems: list[tuple[str, str]]  # (path, reason) for folders that could not be read


OUTSIDE = "leads outside the allowed folders; not followed"


def inside(path: str, bases: tuple[str, ...] | list[str]) -> bool:
    """Whether the resolved ``path`` is one of ``bases`` or below one (both already resolved)."""
    return any(path == b or path.startswith(b.rstrip(os.sep) + os.sep) for b in bases)


def discover(
    roots: list[str],
    extensions: tuple[str, ...] = DEFAULT_EXTENSIONS,
    exclude: str | None = None,
    confine: list[str] | None = None,
) -> Discovery:
    """Every video file (by extension, any case) in every subfolder of each root.

    Each folder and each file is taken once over all roots (by device and inode): the
    same root twice, a root and its subfolder, or two links to one folder give each
    video once, under the first root that reaches it; a link loop cannot hang the walk.
    ``exclude`` is a folder (the output) never to descend into.  With ``confine`` (the
    web service's allowed folders), a folder or file whose resolved path leaves those folders
    is not read, only reported.
    """
    absroots = list(dict.fromkeys(check_root(r) for r in roots))
    bases = tuple(os.path.realpath(b) for b in confine) if confine is not None else None
    names = root_names(absroots)
    exts = {"." + e.lower() for e in extensions}
    videos: list[Video] = []
    problems: list[tuple[str, str]] = []
    exclude_real = os.path.realpath(exclude) if exclude else None
    seen: set[tuple[int, int]] = set()  # folders walked, over all roots
    taken: set[object] = set()  # video files taken, over all roots
    for root in absroots:
        stack = [root]
        while stack:
            folder = stack.pop()
            if bases is not None and not inside(os.path.realpath(folder), bases):
                problems.append((folder, OUTSIDE))
                continue
            try:
                st = os.stat(folder)
            except OSError as e:
                problems.append((folder, e.strerror or str(e)))
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            if exclude_real and os.path.realpath(folder) == exclude_real:
                continue
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError as e:
                # Every ext4 disk has a root-only lost+found; it holds no videos of the user's.
                if not (
                    os.path.basename(folder) == "lost+found" and os.path.ismount(os.path.dirname(folder))
                ):
                    problems.append((folder, f"cannot list folder: {e.strerror or e}"))
                continue
            subfolders = []
            for entry in entries:
                try:
                    if entry.is_dir():
                        subfolders.append(entry.path)
                    elif os.path.splitext(entry.name)[1].lower() in exts:
                        if entry.is_symlink() and bases is not None:
                            if not inside(os.path.realpath(entry.path), bases):
                                problems.append((entry.path, OUTSIDE))
                                continue
                        key = _identity(entry)
                        if key in taken:
                            continue
                        taken.add(key)
                        # Broken links and non-regular files are kept: extraction fails them
                        # with a reason instead of letting them vanish from the job.
                        rel = os.path.relpath(entry.path, root).replace(os.sep, "/")
                        videos.append(Video(root, names[root], rel, _size(entry)))
                except OSError as e:
                    problems.append((entry.path, e.strerror or str(e)))
            stack.extend(reversed(subfolders))
    return Discovery(videos, problems)


def _identity(entry: os.DirEntry) -> object:
    """The file behind an entry: device and inode, or its resolved path for a broken link."""
    try:
        st = entry.stat()
        return (st.st_dev, st.st_ino)
    except OSError:
        return os.path.realpath(entry.path)


def _size(entry: os.DirEntry) -> int:
    try:
        return entry.stat().st_size
    except OSError:
        return 0

"""Find the videos under one or more roots."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from ..disks.state import disk_of, disks_base
from ..errors import UsageError
from ..fs.bounded import beat
from ..fs.fsafe import Identity, identity
from ..fs.paths import contains
from ..model import Video
from ..output.folder import RESERVED_NAMES, Folding

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
    "ogv",  # Theora in Ogg
    "ogg",  # mostly audio; one with a video stream is a video (none: failed, with the reason)
)


class DiscoveryError(UsageError):
    """A root cannot be used; the message is the one-line reason."""


def parse_extensions(text: str | None) -> tuple[str, ...]:
    if not text:
        return DEFAULT_EXTENSIONS
    exts = tuple(e.strip().lower().lstrip(".") for e in text.split(",") if e.strip())
    if not exts:
        raise DiscoveryError.naming("{} wants extensions like mp4,mov, got {text}", "ext", text=repr(text))
    return exts


def check_root(root: str, extensions: tuple[str, ...] = DEFAULT_EXTENSIONS) -> str:
    """The absolute root, or DiscoveryError saying what is wrong with it.  A root may be one
    video file (with one of ``extensions``), as ffmpeg and PySceneDetect take one."""
    path = os.path.abspath(os.path.expanduser(root))
    beat("the root", path)
    if not os.path.exists(path):
        raise DiscoveryError(f"root {root!r} does not exist{_on_gone_disk(path)}")
    if os.path.isfile(path):
        if os.path.splitext(path)[1].lower().lstrip(".") in extensions:
            return path
        raise DiscoveryError(
            f"root {root!r} is neither a folder nor a video file (looked for .{', .'.join(extensions)}; see --ext)"
        )
    if not os.path.isdir(path):
        raise DiscoveryError(f"root {root!r} is not a folder or a video file")
    if not os.access(path, os.R_OK | os.X_OK):
        raise DiscoveryError(f"root {root!r} is not readable (permission denied)")
    return path


def _on_gone_disk(path: str) -> str:
    """Why a missing root is missing, when it lies on a lab disk that is not plugged now
    (pulled out, ejected): the disks' state files say so."""
    base = os.path.abspath(disks_base())
    if not inside(path, [base]):
        return ""
    try:
        disk = disk_of(path, base)
    except (OSError, ValueError):
        return ""
    if disk is None or disk.state == "plugged":
        return ""
    why = f" ({disk.reason})" if disk.reason else ""
    return f": it is on disk {disk.name} of {disk.host}, which is {disk.state}{why}"


# Filesystems of the kernel, not of disks: they hold no videos, and /proc's links (every
# process's cwd and root) lead through the whole machine.
PSEUDO_FILESYSTEMS = frozenset(
    "proc sysfs devtmpfs devpts cgroup cgroup2 debugfs tracefs securityfs bpf mqueue pstore "
    "configfs fusectl hugetlbfs binfmt_misc autofs efivarfs selinuxfs nsfs".split()
)


def pseudo_devices() -> dict[int, str]:
    """st_dev -> filesystem type of every mounted kernel pseudo-filesystem."""
    from ..fs.mounts import MOUNTINFO, parse_mountinfo

    try:
        with open(MOUNTINFO, encoding="utf-8", errors="replace") as f:
            mounts = parse_mountinfo(f.read())
    except OSError:
        return {}
    found = {}
    for dev, _, fstype in mounts:
        if fstype in PSEUDO_FILESYSTEMS:
            major, _, minor = dev.partition(":")
            found[os.makedev(int(major), int(minor))] = fstype
    return found


def root_names(roots: list[str], fold: Callable[[str], str] = str) -> dict[str, str]:
    """A distinct output folder name per root: its own name, plus a short hash if two clash.

    ``fold``: a name as the output disk compares it (``output.folder.Folding.key``): on a disk that
    takes ``Vids`` and ``vids`` for one name, two roots named so clash too."""
    base = {r: (os.path.basename(r.rstrip(os.sep)) or "root") for r in roots}
    folded = [fold(name) for name in base.values()]
    reserved = {fold(name) for name in RESERVED_NAMES}
    names = {}
    for r in roots:
        name = base[r]
        # A root named like one of the job's own files (".snhoo-tmp", "manifest.jsonl", ...)
        # would publish into, or over, that file: it gets the hash suffix too.
        if folded.count(fold(name)) > 1 or fold(name) in reserved:
            name = f"{name}-{hashlib.sha1(r.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}"
        names[r] = name
    return names


@dataclass
class Discovery:
    videos: list[Video]
    problems: list[tuple[str, str]]  # (path, reason) for folders that could not be read
    folding: Folding = Folding()  # how the output disk compares names (root names allow for it)
    # (path left out, path taken): one file under two names (a hard link, same device and
    # inode), decoded once under the name reached first.  The same name reached twice (a
    # root given twice, links to one folder or file) is not one of them.
    merged: list[tuple[str, str]] = field(default_factory=list)


OUTSIDE = "leads outside the allowed folders; not followed"


def inside(path: str, bases: tuple[str, ...] | list[str]) -> bool:
    """Whether the resolved ``path`` is one of ``bases`` or below one (both already resolved)."""
    return any(contains(b, path) for b in bases)


def discover(
    roots: list[str],
    extensions: tuple[str, ...] = DEFAULT_EXTENSIONS,
    exclude: str | None = None,
    confine: list[str] | None = None,
    folding: Folding | None = None,
    suffix: str = "",
) -> Discovery:
    """Every video file (by extension, any case) in every subfolder of each root.

    Each folder and each file is taken once over all roots (by device and inode): the
    same root twice, a root and its subfolder, or two links to one folder give each
    video once, under the first root that reaches it; a link loop cannot hang the walk.
    ``exclude`` is a folder (the output) never to descend into.  With ``confine`` (the
    web service's allowed folders), a folder or file whose resolved path leaves those folders
    is not read, only reported.  ``folding``: how the output disk compares names
    (``output.folder.probe_folding``), which the root names allow for.  ``suffix``: after each
    video's output name (``settings.out_suffix``).

    A root that is one video file is that video under its folder as the root: its output
    is where a run on that folder would put it (``OUT/<folder name>/<file name>/``).
    """
    given = list(dict.fromkeys(check_root(r, extensions) for r in roots))
    files = {r for r in given if not os.path.isdir(r)}
    absroots = list(dict.fromkeys(r if os.path.isdir(r) else os.path.dirname(r) for r in given))
    walked = [r for r in absroots if r in given]  # folders given as roots, walked whole
    pseudo = pseudo_devices()
    for r in absroots:
        beat("the root", r)
        fstype = pseudo.get(os.stat(r).st_dev)
        if fstype:
            raise DiscoveryError(f"root {r!r} is on the kernel's {fstype} filesystem, which holds no videos")
    bases = tuple(os.path.realpath(b) for b in confine) if confine is not None else None
    folding = folding or Folding()
    names = root_names(absroots, folding.key)
    exts = {"." + e.lower() for e in extensions}
    videos: list[Video] = []
    problems: list[tuple[str, str]] = []
    exclude_real = os.path.realpath(exclude) if exclude else None
    seen: set[tuple[int, int]] = set()  # folders walked, over all roots
    taken: dict[object, str] = {}  # video files taken, over all roots -> their real path
    merged: list[tuple[str, str]] = []
    for given_root in given:
        if given_root in files:
            _take_file(given_root, names, walked, bases, taken, videos, problems, suffix, merged)
            continue
        root = given_root
        stack = [root]
        while stack:
            folder = stack.pop()
            beat("the folder", folder)
            folder_real = os.path.realpath(folder)
            if bases is not None and not inside(folder_real, bases):
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
            if st.st_dev in pseudo:
                problems.append(
                    (folder, f"leads into the kernel's {pseudo[st.st_dev]} filesystem; not followed")
                )
                continue
            if exclude_real and folder_real == exclude_real:
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
                beat("the file", entry.path)
                try:
                    if entry.is_dir():
                        subfolders.append(entry.path)
                    elif os.path.splitext(entry.name)[1].lower() in exts:
                        link = entry.is_symlink()
                        real = os.path.realpath(entry.path) if link else os.path.join(folder_real, entry.name)
                        if link and bases is not None and not inside(real, bases):
                            problems.append((entry.path, OUTSIDE))
                            continue
                        ident = _identity(entry)
                        key = (ident.dev, ident.ino) if ident else real
                        if key in taken:
                            if taken[key] != real:
                                merged.append((real, taken[key]))
                            continue
                        taken[key] = real
                        # Broken links and non-regular files are kept: extraction fails them
                        # with a reason instead of letting them vanish from the job.
                        rel = os.path.relpath(entry.path, root).replace(os.sep, "/")
                        size = ident.size if ident else 0
                        videos.append(Video(root, names[root], rel, size, suffix, real, ident))
                except OSError as e:
                    problems.append((entry.path, e.strerror or str(e)))
            stack.extend(reversed(subfolders))
    return Discovery(videos, problems, folding, merged)


def _take_file(
    path: str,
    names: dict[str, str],
    walked: list[str],
    bases: tuple[str, ...] | None,
    taken: dict[object, str],
    videos: list[Video],
    problems: list[tuple[str, str]],
    suffix: str,
    merged: list[tuple[str, str]],
) -> None:
    """A root that is one video file: that video, under its folder as the root."""
    root = os.path.dirname(path)
    beat("the file", path)
    if root in walked:
        return  # its folder is a root too: the video is taken there, once
    real = os.path.realpath(path)
    if bases is not None and not inside(real, bases):
        problems.append((path, OUTSIDE))
        return
    try:
        ident = identity(os.stat(path))
    except OSError as e:
        problems.append((path, e.strerror or str(e)))
        return
    key = (ident.dev, ident.ino)
    if key in taken:
        if taken[key] != real:
            merged.append((real, taken[key]))
        return
    taken[key] = real
    videos.append(Video(root, names[root], os.path.basename(path), ident.size, suffix, real, ident))


def _identity(entry: os.DirEntry) -> Identity | None:
    """What the file behind an entry is (a link followed), or None for a broken link."""
    try:
        return identity(entry.stat())
    except OSError:
        return None

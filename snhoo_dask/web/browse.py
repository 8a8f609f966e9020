"""The new-job page's live parts: the lab's disks (``GET /api/disks``), their safe eject
(``POST /api/disks/eject``) and the folder picker (``GET /api/folders``).

The picker reads folders a user names, so it reads them as every other read does: walked by
descriptor from an ``--allow`` folder, one component at a time with ``O_NOFOLLOW``
(fs/fsafe.py).  A link is never listed, and asking for one (or for a path through one) is
refused: a link inside ``--allow`` may lead anywhere.  Folders are named by a *ref*,
``<index of the --allow folder>:<the path below it, percent-encoded bytes>``, so a name that
is not UTF-8 can still be browsed into; a name that a form cannot carry as one line of the
roots field (not UTF-8, a line break, spaces at its end) is shown but cannot be picked.

Every read runs off the event loop and is waited for a bounded time (fs/bounded.py): a
disk that hangs answers 503 "not responding" and costs one stuck thread, not the service.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes

import tornado.web
from tornado.ioloop import IOLoop

from ..cli.text import shown
from ..disks.state import MAX_NAME, disks_base, read_states
from ..disks.table import DiskTableError, count_open, disk_table
from ..errors import UsageError
from ..fs.bounded import Stuck, bounded
from ..fs.fsafe import UnsafePath, open_dir, walk
from ..jobs.discover import DEFAULT_EXTENSIONS
from .handlers.api import Api
from .submission import RequestError
from .validate import AVAILABLE

BROWSE_SECONDS = 5.0  # one folder listed (and its subfolders' videos counted) within this
COUNT_SECONDS = 2.0  # the subfolders' video counts share this; past it they show "?"
EJECT_SECONDS = 120.0  # the busy check (60 s at most) and the unmount
MAX_FOLDERS = 2000  # listed of one folder; more are cut (the answer says so)
MAX_REF = 16384
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class BadRef(UsageError, ValueError):
    """A folder ref that does not name a folder below an --allow folder."""


def make_ref(index: int, rel: bytes) -> str:
    return f"{index}:{quote(rel, safe='/')}"


def parse_ref(ref: str, bases: int) -> tuple[int, bytes]:
    """(the --allow folder's index, the path below it as bytes); BadRef unless well formed:
    no empty, '.', '..' or NUL component, a known index."""
    if len(ref) > MAX_REF:
        raise BadRef("the folder ref is too long")
    index, sep, rest = ref.partition(":")
    # At most 6 digits: Python refuses to read an integer of over 4300 (a 500, not a 400).
    if not sep or not index.isascii() or not index.isdigit() or len(index) > 6 or int(index) >= bases:
        raise BadRef("not a folder ref of this service (ask /api/folders for them)")
    rel = unquote_to_bytes(rest)
    if rel and any(p in (b"", b".", b"..") or b"\0" in p for p in rel.split(b"/")):
        raise BadRef("a folder ref names no '.', '..' or empty component")
    return int(index), rel


def pick_problem(path: str) -> str | None:
    """Why the folder ``path`` cannot be put in the roots field as it is, or None."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not UTF-8 text, so a form cannot carry it: pick a folder around it"
    if len(path.splitlines()) != 1:
        return "its name holds a line break (the roots field is one root per line): pick a folder around it"
    if path != path.strip():
        return "its name ends in a space, which the roots field drops: pick a folder around it"
    return None


@dataclass(frozen=True)
class Entry:
    name: bytes
    videos: int | None  # below it, links not followed; None: not counted in time
    complete: bool


@dataclass(frozen=True)
class Listing:
    index: int
    base: str
    rel: bytes
    videos_here: int  # video files directly in the folder
    folders: list[Entry]
    truncated: bool

    def to_json(self) -> dict:
        here = os.path.join(self.base, os.fsdecode(self.rel)) if self.rel else self.base
        crumbs = [{"name": shown(self.base), "ref": make_ref(self.index, b"")}]
        parts = self.rel.split(b"/") if self.rel else []
        for i, part in enumerate(parts):
            crumbs.append(
                {"name": shown(os.fsdecode(part)), "ref": make_ref(self.index, b"/".join(parts[: i + 1]))}
            )
        folders = []
        for e in self.folders:
            rel = self.rel + b"/" + e.name if self.rel else e.name
            path = os.path.join(here, os.fsdecode(e.name))
            why = pick_problem(path)
            folders.append(
                {
                    "name": shown(os.fsdecode(e.name)),
                    "ref": make_ref(self.index, rel),
                    "path": None if why else path,
                    "why_not": why,
                    "videos": e.videos,
                    "videos_complete": e.complete,
                }
            )
        why = pick_problem(here)
        counted = [e.videos for e in self.folders]
        return {
            "ref": make_ref(self.index, self.rel),
            "base": self.base,
            "shown": shown(here),
            "path": None if why else here,
            "why_not": why,
            "crumbs": crumbs,
            "parent": crumbs[-2]["ref"] if len(crumbs) > 1 else None,
            "videos_here": self.videos_here,
            "videos": self.videos_here + sum(v or 0 for v in counted),
            "videos_complete": all(e.complete for e in self.folders) and not self.truncated,
            "folders": folders,
            "truncated": self.truncated,
        }


def _open(base: str, rel: bytes) -> int:
    """A descriptor of ``base``/``rel``, walked with no link followed (UnsafePath)."""
    parts = [os.fsdecode(p) for p in rel.split(b"/")] if rel else []
    top = open_dir(base)
    try:
        return walk(top, parts, where=base)
    finally:
        os.close(top)


def _names(base: str, rel: bytes, suffixes: tuple[str, ...]) -> tuple[list[str], int, bool]:
    """(the folders directly in ``base``/``rel``, sorted; the videos directly in it; whether
    folders were left out).  Kinds come from the folder itself (``d_type``), not from a
    ``stat`` of each entry: a disk mounted on a subfolder that hangs does not hang this."""
    fd = _open(base, rel)
    names: list[str] = []
    videos_here, truncated = 0, False
    try:
        with os.scandir(fd) as entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if len(names) >= MAX_FOLDERS:
                            truncated = True
                        else:
                            names.append(entry.name)
                    elif entry.is_file(follow_symlinks=False):
                        videos_here += entry.name.lower().endswith(suffixes)
                except OSError:
                    continue
    finally:
        os.close(fd)
    names.sort(key=lambda n: (n.casefold(), n))
    return names, videos_here, truncated


class _Count:
    """The video counts of one folder's subfolders, filled in by a thread of its own; read by
    whoever waits, also before it ends (a subfolder whose disk hangs never lets it end)."""

    def __init__(self, base: str, rel: bytes, names: list[str], suffixes: tuple[str, ...]) -> None:
        self.started = time.monotonic()
        self.found: dict[str, tuple[int, bool]] = {}
        self.done = threading.Event()
        self.key = (base, rel)
        threading.Thread(
            target=self._run, args=(names, suffixes), daemon=True, name="snhoo-browse-count"
        ).start()

    def _run(self, names: list[str], suffixes: tuple[str, ...]) -> None:
        try:
            fd = _open(*self.key)
            try:
                stop = self.started + COUNT_SECONDS
                for i, name in enumerate(names):
                    left = stop - time.monotonic()
                    if left <= 0:
                        break
                    # Each folder gets its share of what is left: one huge folder cannot
                    # leave all the others without a count.
                    share = time.monotonic() + max(left / (len(names) - i), 0.05)
                    try:
                        self.found[name] = count_open(os.open(name, _DIR, dir_fd=fd), suffixes, share)
                    except OSError:
                        continue
            finally:
                os.close(fd)
        except OSError:
            pass
        finally:
            self.done.set()
            with _counts_lock:
                if _counts.get(self.key) is self:
                    del _counts[self.key]


_counts: dict[tuple[str, bytes], _Count] = {}
_counts_lock = threading.Lock()


def _counted(
    base: str, rel: bytes, names: list[str], suffixes: tuple[str, ...]
) -> dict[str, tuple[int, bool]]:
    """What the count of this folder's subfolders found within COUNT_SECONDS of its start;
    while one is still running (stuck on a hung disk), no second one starts."""
    with _counts_lock:
        count = _counts.get((base, rel))
        if count is None:
            count = _counts[(base, rel)] = _Count(base, rel, names, suffixes)
    count.done.wait(max(0.0, count.started + COUNT_SECONDS - time.monotonic()))
    return dict(count.found)


def list_folder(index: int, base: str, rel: bytes, exts: tuple[str, ...]) -> Listing:
    """The folders directly in ``base``/``rel`` (links left out) with the videos below each,
    reached by descriptor: UnsafePath for a link or a file on the way; Stuck if the folder
    does not answer within BROWSE_SECONDS.  A subfolder that does not answer has no count.
    It waits: run it off the event loop."""
    suffixes = tuple("." + e.lower() for e in exts)
    names, videos_here, truncated = bounded(
        ("browse", base, rel), lambda: _names(base, rel, suffixes), BROWSE_SECONDS
    )
    found = _counted(base, rel, names, suffixes)
    folders = [Entry(os.fsencode(n), *found.get(n, (None, False))) for n in names]
    return Listing(index, base, rel, videos_here, folders, truncated)


class ApiFolders(Api):
    """``GET /api/folders``: the --allow folders; ``?at=REF``: the folders in one of them."""

    async def get(self) -> None:
        folders = (await self.folders()).allow
        ref = self.get_query_argument("at", None)
        if ref is None:
            bases = [
                {
                    "ref": make_ref(i, b""),
                    "shown": shown(p),
                    "path": p,
                    "state": s,
                    "available": s == AVAILABLE,
                }
                for i, (p, s) in enumerate(folders)
            ]
            self.write_json({"bases": bases})
            return
        try:
            index, rel = parse_ref(ref, len(folders))
        except BadRef as e:
            self.write_json({"error": str(e), "status": 400}, 400)
            return
        base, state = folders[index]
        if state != AVAILABLE:
            self.write_json({"error": f"{shown(base)} is {state} (an unplugged disk?)", "status": 503}, 503)
            return
        read = functools.partial(list_folder, index, base, rel, DEFAULT_EXTENSIONS)
        try:
            listing = await IOLoop.current().run_in_executor(None, read)
        except Stuck:
            self.write_json({"error": "this folder's disk is not responding", "status": 503}, 503)
            return
        except UnsafePath as e:
            self.write_json({"error": shown(str(e)), "status": 403}, 403)
            return
        except FileNotFoundError:
            self.write_json({"error": "no such folder (any more)", "status": 404}, 404)
            return
        except OSError as e:
            self.write_json({"error": f"cannot read this folder: {e.strerror or e}", "status": 403}, 403)
            return
        self.write_json(listing.to_json())


class ApiDisks(Api):
    """``GET /api/disks``: the table of ``snhoo-dask disks --json``, read live."""

    async def get(self) -> None:
        base = disks_base()
        try:
            rows = await IOLoop.current().run_in_executor(None, disk_table, base, DEFAULT_EXTENSIONS)
        except DiskTableError as e:
            self.write_json({"error": str(e), "status": 503}, 503)
            return
        self.write_json({"base": base, "disks": [r.to_dict() for r in rows]})


def eject_here(name: str, base: str):
    """The safe eject of ``snhoo-dask disks --eject NAME``, run by this service; on a machine
    that is not the disk's storage host, a refusal that says where to run it instead."""
    from ..disks.eject import EjectResult, eject  # the storage host's side: mount(8), exportfs
    from ..disks.hotplug import Config, HotplugError

    try:
        Config.load()
    except HotplugError:
        hosts = sorted({s.host for s in read_states(base) if s.name == name})
        if not hosts:
            return EjectResult(False, f"no disk {name!r} in the lab's disk list")
        return EjectResult(
            False,
            f"this service runs on another machine than {', '.join(hosts)}, which holds disk {name}: "
            f"run 'sudo snhoo-dask disks --eject {name}' on {hosts[0]}",
        )
    return eject(name, base)


class ApiEject(Api):
    """``POST /api/disks/eject`` ``{"name": NAME}``: ``snhoo-dask disks --eject NAME``, the
    busy-aware safe eject, on this host; 409 with the reason (the processes holding the disk)
    when it is refused."""

    async def post(self) -> None:
        try:
            body = self.body_json()
        except RequestError as e:
            self.refuse(e)
            return
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME or "/" in name or "\0" in name:
            self.write_json({"error": "give the disk's name (the NAME column)", "status": 400}, 400)
            return
        base = disks_base()
        try:
            result = await IOLoop.current().run_in_executor(
                None, bounded, ("eject", base, name), functools.partial(eject_here, name, base), EJECT_SECONDS
            )
        except Stuck:
            raise tornado.web.HTTPError(504, reason=f"the eject of {name} did not finish in time") from None
        message = str(result).removeprefix("snhoo-dask: error: ")
        if result.ok:
            self.write_json({"name": name, "ejected": True, "message": message})
        else:
            self.write_json({"error": message, "status": 409}, 409)

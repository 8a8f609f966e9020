"""One JSON file per disk a storage host has seen: what the hot-plug unit writes and every
reader (``snhoo-dask disks``, the web, locality) reads.

A storage host H keeps ``<base>/<H>/.snhoo-disks/<name>.json`` on its own root filesystem;
disks listed in ``snhoo_disks_list`` have theirs in ``<base>/.snhoo-disks/``.  The files are
written by root, atomically (a new file renamed over the old one), never through a link.
A reader tolerates anything else it finds there: a file that is not a valid state is skipped.

Names come from labels a disk's owner chose, so ``safe_name`` makes them into one path
component that cannot escape the base or collide with another disk on the same host.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
import time
import unicodedata
from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass, fields

from ..fs.fsafe import UnsafePath, create_file, open_dir, open_regular
from ..fs.paths import contains

VERSION = 1
STATES = ("plugged", "unplugged", "ejected", "refused")
STATE_DIR = ".snhoo-disks"
DEFAULT_BASE = "/srv/snhoo/disks"
# A path component short enough for every filesystem and for the export drop-in's name.
MAX_NAME = 64
# A state file is a few hundred bytes; anything much bigger is not one.
MAX_STATE_BYTES = 64 * 1024


def disks_base() -> str:
    """The base folder of the lab's disks: ``SNHOO_DISKS_BASE`` or /srv/snhoo/disks."""
    return os.environ.get("SNHOO_DISKS_BASE") or DEFAULT_BASE


def now() -> str:
    """The current time as a state's ``since`` stores it (UTC, seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(frozen=True)
class DiskState:
    """What one storage host knows about one disk; the fields of the state file."""

    host: str  # the storage host's inventory name
    address: str | None  # its snhoo_address: the host Dask workers there report
    name: str  # the safe name: the last component of ``mountpoint``
    label: str | None  # the filesystem label as the disk has it (may be anything)
    uuid: str | None
    fstype: str | None
    device: str | None  # /dev/sdb1
    mountpoint: str
    state: str  # one of STATES
    reason: str | None = None  # one line: why refused, why a mount failed, why unplugged
    since: str | None = None
    size_bytes: int | None = None
    version: int = VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: object) -> DiskState:
        """A state from a parsed file; ValueError unless every field has its type."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        if data.get("version") != VERSION:
            raise ValueError(f"version {data.get('version')!r} is not {VERSION}")
        kwargs = {}
        for f in fields(cls):
            if f.name not in data:
                raise ValueError(f"no {f.name!r}")
            kwargs[f.name] = data[f.name]
        for key in ("host", "name", "mountpoint", "state"):
            if not isinstance(kwargs[key], str) or not kwargs[key]:
                raise ValueError(f"{key!r} is not a text")
        for key in ("address", "label", "uuid", "fstype", "device", "reason", "since"):
            if kwargs[key] is not None and not isinstance(kwargs[key], str):
                raise ValueError(f"{key!r} is neither a text nor null")
        size = kwargs["size_bytes"]
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise ValueError("'size_bytes' is not a size")
        if kwargs["state"] not in STATES:
            raise ValueError(f"unknown state {kwargs['state']!r}")
        return cls(**kwargs)


def _clean(text: str) -> str:
    """``text`` as one harmless path component, or '' if nothing of it is left.

    Letters and digits of any script stay (a Chinese label keeps its name); everything
    else, spaces, '/', control and format characters (newline, bidi overrides), becomes
    '_'.  NFKC first, so full-width '．' or '／' are judged as the characters they look
    like.  No leading dot: neither '..' nor a hidden name.
    """
    text = unicodedata.normalize("NFKC", text)
    out = []
    for c in text:
        category = unicodedata.category(c)
        out.append(c if category[0] in "LNM" or c in "-_." else "_")
    # A run of dots and underscores is one '_': no '..' inside a name either.
    name = re.sub(r"[._]{2,}", "_", "".join(out))
    while True:
        before = name
        # A combining mark cannot start a name: it would join whatever is printed before it.
        name = name.lstrip("._-")
        while name and unicodedata.category(name[0])[0] == "M":
            name = name[1:]
        name = _fit(name, "").rstrip("._-")
        if name == before:
            return name


def _fit(stem: str, suffix: str) -> str:
    """``stem + suffix``, the stem shortened until it is at most MAX_NAME long (bytes too)."""
    while stem and (len(stem + suffix) > MAX_NAME or len((stem + suffix).encode("utf-8")) > MAX_NAME):
        stem = stem[:-1]
    return stem + suffix


def _uuid8(uuid: str | None) -> str:
    return re.sub(r"[^0-9a-f]", "", (uuid or "").lower())[:8]


def safe_name(label: str | None, uuid: str | None, taken: Collection[str] = ()) -> str:
    """The name a disk is mounted by: its label made safe, not one of ``taken``.

    A second disk with the same label gets ``<label>-<first 8 hex of its UUID>``; a disk
    with no usable label ``disk-<first 8 of its UUID>``; '-2', '-3'... if even that is taken.
    """
    short = _uuid8(uuid)
    base = _clean(label or "") or (f"disk-{short}" if short else "disk")
    candidates = [base]
    if short and not base.endswith(short):
        candidates.append(_fit(base, f"-{short}"))
    for name in candidates:
        if name not in taken:
            return name
    stem = candidates[-1]
    n = 2
    while _fit(stem, f"-{n}") in taken:
        n += 1
    return _fit(stem, f"-{n}")


def safe_host(name: str) -> str:
    """A host's inventory name as a path component (``<base>/<H>``)."""
    return _clean(name) or "host"


def state_folders(base: str) -> list[str]:
    """The state folders under ``base``: the listed disks' and one per storage host."""
    folders = [os.path.join(base, STATE_DIR)]
    try:
        entries = sorted(os.scandir(base), key=lambda e: e.name)
    except OSError:
        return folders
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                folders.append(os.path.join(base, entry.name, STATE_DIR))
        except OSError:
            continue
    return folders


def _read_one(dir_fd: int, name: str) -> DiskState | None:
    try:
        fd = open_regular(dir_fd, name)
    except OSError:
        return None
    with open(fd, "rb") as f:
        try:
            data = f.read(MAX_STATE_BYTES + 1)
        except OSError:
            return None
    if len(data) > MAX_STATE_BYTES:
        return None
    try:
        state = DiskState.from_dict(json.loads(data.decode("utf-8")))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    # A file renamed by hand would claim a name another file has.
    return state if f"{state.name}.json" == name else None


def _under(path: str, base: str) -> bool:
    return os.path.isabs(path) and os.path.normpath(path) == path and path.startswith(base.rstrip("/") + "/")


def read_folder(folder: str, base: str | None = None) -> list[DiskState]:
    """The valid states in one state folder (none if it is missing or is a link)."""
    try:
        dir_fd = open_dir(os.path.abspath(folder))
    except OSError:
        return []
    try:
        names = sorted(n for n in os.listdir(dir_fd) if n.endswith(".json") and not n.startswith("."))
        found = []
        for name in names:
            state = _read_one(dir_fd, name)
            if state is not None and (base is None or _under(state.mountpoint, base)):
                found.append(state)
        return found
    except OSError:
        return []
    finally:
        os.close(dir_fd)


def read_states(base: str | None = None) -> list[DiskState]:
    """Every disk the lab's storage hosts have written a state for, by host then name.

    Garbage (not JSON, a wrong field, a link, a mount point outside ``base``) is skipped.
    On a real lab each ``<base>/<H>`` is an NFS automount: a host that is down makes this
    wait for the client's timeout, so a caller that must answer at once bounds the call.
    """
    base = os.path.abspath(base or disks_base())
    found = [s for folder in state_folders(base) for s in read_folder(folder, base)]
    return sorted(found, key=lambda s: (s.host, s.name, s.mountpoint))


def write_state(folder: str, state: DiskState) -> str:
    """Write ``state`` as ``<folder>/<name>.json``: a new root-owned 0644 file renamed over
    the old one.  Missing folders are made (0755); a link anywhere on ``folder``, or a link
    or anything but a plain file where the state goes, is refused (UnsafePath).  Returns the
    file's path."""
    if _clean(state.name) != state.name or state.name != os.path.basename(state.mountpoint):
        raise UnsafePath(f"refusing the disk name {state.name!r}")
    final = f"{state.name}.json"
    dir_fd = open_dir(os.path.abspath(folder), create=True, mode=0o755)
    try:
        try:
            st = os.stat(final, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise UnsafePath(f"{os.path.join(folder, final)} is not a plain file; not replacing it")
        tmp = f".{state.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        fd = create_file(dir_fd, tmp, exclusive=True, mode=0o644)
        try:
            with open(fd, "wb") as f:
                os.fchmod(f.fileno(), 0o644)  # whatever the umask says: every node reads it
                f.write(state.to_json().encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, final, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=dir_fd)
            except OSError:
                pass
            raise
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return os.path.join(folder, final)


def disk_of(
    path: str, base: str | None = None, states: Iterable[DiskState] | None = None
) -> DiskState | None:
    """The disk ``path`` is on (the state with the longest mount point holding it), or None.

    Any state counts, unplugged too: a video on a disk that went away is told why.  Pass
    ``states`` (from ``read_states``) to look up many paths with one read.
    """
    path = os.path.normpath(os.path.abspath(path))
    best = None
    for state in read_states(base) if states is None else states:
        if contains(state.mountpoint, path) and (
            best is None or len(state.mountpoint) > len(best.mountpoint)
        ):
            best = state
    return best

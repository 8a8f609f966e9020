"""What a storage host does when a disk comes or goes, with no Ansible run.

udev starts ``snhoo-disk@<kernel name>.service`` for a block device holding a filesystem of
an accepted kind; that unit runs ``snhoo-dask disks --attach <kernel name>``, which

1. probes the device (``blkid -p``: the device itself, not a cache) and checks it against
   the lab's rule (``/etc/snhoo-dask/hotplug.json``, written by the snhoo_disks role);
2. mounts it read-only, ``nosuid,nodev,noexec``, with the device itself set read-only and no
   journal replayed, at ``<base>/<host>/<safe label>``;
3. writes its state file and an ``/etc/exports.d/snhoo-disk-<name>.exports`` drop-in, then
   ``exportfs -r``: the NFS server is never restarted, jobs on other disks go on;
4. watches the device until it goes away (unplugged, or a loop device detached), then
   withdraws the export, unmounts lazily and marks the disk unplugged.

``--detach`` (the unit's ExecStop: ``systemctl stop``, udev's remove event, an eject) does
step 4 at once.  Everything is logged to the unit's journal, one line per step.
"""

from __future__ import annotations

import fcntl
import fnmatch
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ..errors import SnhooError
from ..fs.fsafe import UnsafePath, create_file, open_dir
from .devices import Probe, gone, is_mount, mounts_of, presence, probe, size_bytes
from .state import STATE_DIR, DiskState, now, read_folder, safe_host, safe_name, write_state

CONFIG = "/etc/snhoo-dask/hotplug.json"
LOCK = "/run/snhoo-disks.lock"
DEVICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
FSTYPES = ("ext4", "xfs", "exfat", "ntfs")
# Never write to a source disk, not even to replay a journal: ext4 `noload`, xfs `norecovery`.
NO_REPLAY = {"ext4": "noload", "xfs": "norecovery"}
POLL_SECONDS = 1.0
FSID_NAMESPACE = uuidlib.UUID("5e1f0a1e-57d1-4a8e-9c1b-736e686f6f64")


class HotplugError(SnhooError):
    """A disk could not be attached or detached; the message is one line saying why."""


@dataclass(frozen=True)
class Config:
    """The lab's hot-plug settings for this storage host (the role's hotplug.json)."""

    host: str
    base: str
    address: str | None = None
    fstypes: tuple[str, ...] = FSTYPES
    labels: tuple[str, ...] = ()  # shell patterns (fnmatch, case-sensitive)
    uuids: tuple[str, ...] = ()
    accept_any: bool = False
    listed: tuple[str, ...] = ()  # UUIDs and labels of snhoo_disks_list: fstab mounts those
    clients: tuple[str, ...] = ()
    export_options: str = "ro,root_squash,sync,no_subtree_check"
    exports_dir: str = "/etc/exports.d"
    exportfs: tuple[str, ...] = ("exportfs",)
    mount_types: dict[str, str] = field(default_factory=lambda: {"ntfs": "ntfs-3g"})
    mount_options: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | None = None) -> Config:
        path = path or os.environ.get("SNHOO_HOTPLUG_CONFIG") or CONFIG
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise HotplugError(f"cannot read the hot-plug settings {path}: {e}") from None
        if not isinstance(data, dict) or not isinstance(data.get("host"), str) or not data.get("base"):
            raise HotplugError(f"{path} needs at least a 'host' and a 'base'")
        known = {f: data[f] for f in cls.__dataclass_fields__ if f in data}
        for key in ("fstypes", "labels", "uuids", "listed", "clients", "exportfs"):
            if key in known:
                known[key] = tuple(str(v) for v in known[key])
        if not os.path.isabs(known["base"]):
            raise HotplugError(f"{path}: 'base' must be an absolute path")
        return cls(**known)

    @property
    def host_dir(self) -> str:
        return os.path.join(self.base, safe_host(self.host))

    @property
    def state_dir(self) -> str:
        return os.path.join(self.host_dir, STATE_DIR)

    def refusal(self, fstype: str | None, label: str | None, uuid: str | None) -> str | None:
        """Why the lab's rule refuses this filesystem, or None if it accepts it."""
        if fstype not in self.fstypes:
            return f"filesystem {fstype or 'none'} is not one of {', '.join(self.fstypes)}"
        if self.accept_any:
            return None
        if uuid and uuid.lower() in {u.lower() for u in self.uuids}:
            return None
        if label is not None and any(fnmatch.fnmatchcase(label, p) for p in self.labels):
            return None
        return "neither its label nor its UUID is one the lab's rule accepts"


def log(message: str) -> None:
    """One line for the unit's journal (labels may hold newlines: never a second line)."""
    print(message.encode("unicode_escape").decode("ascii").replace("\\\\", "\\"), flush=True)


def device_path(kernel_name: str) -> str:
    """``/dev/<name>`` for the kernel name udev passes (``sdb1``, ``loop3``), checked."""
    if not DEVICE.match(kernel_name) or ".." in kernel_name:
        raise HotplugError(f"not a device name: {kernel_name!r}")
    return f"/dev/{kernel_name}"


def _run(argv: list[str], seconds: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=seconds)


def _states(config: Config) -> list[DiskState]:
    return read_folder(config.state_dir, config.base)


def _choose_name(config: Config, p: Probe, device: str) -> str:
    """The disk's name on this host: the one it had last time (same UUID, not plugged now),
    else its label made safe and distinct from every name this host has used."""
    states = _states(config)
    for s in states:
        if p.uuid and s.uuid == p.uuid and not (s.state == "plugged" and s.device != device):
            if not is_mount(s.mountpoint):
                return s.name
    taken = {s.name for s in states}
    try:
        taken |= set(os.listdir(config.host_dir))
    except OSError:
        pass
    return safe_name(p.label, p.uuid, taken)


def _mount_options(config: Config, fstype: str) -> str:
    opts = ["ro", "nosuid", "nodev", "noexec"]
    if fstype in NO_REPLAY:
        opts.append(NO_REPLAY[fstype])
    extra = config.mount_options.get(fstype, "")
    return ",".join(opts + [o for o in extra.split(",") if o])


def export_line(config: Config, state: DiskState) -> str:
    """The drop-in's one line: the mount point, read-only, to each of the lab's addresses."""
    path = state.mountpoint.replace("\\", "\\134").replace(" ", "\\040")
    fsid = uuidlib.uuid5(FSID_NAMESPACE, f"{config.host}/{state.name}")
    hosts = " ".join(f"{c}({config.export_options},fsid={fsid})" for c in config.clients)
    return f"{path} {hosts}\n"


def dropin_path(config: Config, name: str) -> str:
    return os.path.join(config.exports_dir, f"snhoo-disk-{name}.exports")


def _write_dropin(config: Config, state: DiskState) -> None:
    final = os.path.basename(dropin_path(config, state.name))
    tmp = f".{final}.{os.getpid()}.tmp"
    dir_fd = open_dir(os.path.abspath(config.exports_dir), create=True, mode=0o755)
    try:
        with open(create_file(dir_fd, tmp, exclusive=True, mode=0o644), "w", encoding="utf-8") as f:
            f.write(f"# snhoo-dask hot-plug: disk {state.name} on {state.device}; removed when it goes.\n")
            f.write(export_line(config, state))
        os.rename(tmp, final, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


def _remove_dropin(config: Config, name: str) -> bool:
    try:
        os.unlink(dropin_path(config, name))
        return True
    except FileNotFoundError:
        return False


def reload_exports(config: Config) -> str | None:
    """``exportfs -r``: the table re-read from /etc/exports{,.d}, no server restart.
    None when it worked, else its error as one line."""
    if not config.clients:
        return None  # nothing is exported to anyone: nothing to reload
    try:
        proc = _run([*config.exportfs, "-r"])
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"exportfs -r did not run: {e}"
    if proc.returncode != 0:
        return "exportfs -r failed: " + " ".join((proc.stderr or proc.stdout).split())[:300]
    return None


class _Lock:
    """One attach or detach at a time on this host (udev may fire add and remove together)."""

    def __init__(self, path: str = LOCK) -> None:
        self.path = os.environ.get("SNHOO_HOTPLUG_LOCK") or path

    def __enter__(self) -> _Lock:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def _state(config: Config, p: Probe, device: str, name: str, state: str, reason: str | None) -> DiskState:
    return DiskState(
        host=config.host,
        address=config.address,
        name=name,
        label=p.label,
        uuid=p.uuid,
        fstype=p.fstype,
        device=device,
        mountpoint=os.path.join(config.host_dir, name),
        state=state,
        reason=reason,
        since=now(),
        size_bytes=size_bytes(os.path.basename(device)),
    )


def attach(config: Config, kernel_name: str) -> DiskState | None:
    """Mount and export the device if the lab's rule accepts it; its state (None: a device
    this unit leaves alone, i.e. already mounted, or one of the listed disks)."""
    device = device_path(kernel_name)
    with _Lock():
        if mounts_of(device):
            log(f"{device} is mounted already ({', '.join(mounts_of(device))}): left alone")
            return None
        p = probe(device)
        if (p.uuid and p.uuid in config.listed) or (p.label and p.label in config.listed):
            log(f"{device} is a listed disk (snhoo_disks_list): its fstab entry mounts it")
            return None
        name = _choose_name(config, p, device)
        why = config.refusal(p.fstype, p.label, p.uuid)
        if why:
            state = _state(config, p, device, name, "refused", why)
            write_state(config.state_dir, state)
            log(f"{device} (label {p.label!r}, uuid {p.uuid}) refused: {why}")
            return state
        mountpoint = os.path.join(config.host_dir, name)
        dir_fd = open_dir(os.path.abspath(config.host_dir), create=True, mode=0o755)
        try:
            try:
                os.mkdir(name, 0o755, dir_fd=dir_fd)
            except FileExistsError:
                if is_mount(mountpoint) or os.listdir(mountpoint):
                    raise HotplugError(f"{mountpoint} is in use: not mounting {device} there") from None
        finally:
            os.close(dir_fd)
        # The kernel refuses every write to the device from here on, whatever mounts it.
        _run(["blockdev", "--setro", device])
        fstype = config.mount_types.get(p.fstype or "", p.fstype or "")
        proc = _run(["mount", "-t", fstype, "-o", _mount_options(config, p.fstype or ""), device, mountpoint])
        if proc.returncode != 0:
            _run(["blockdev", "--setrw", device])
            os.rmdir(mountpoint)
            why = "mount failed: " + " ".join(proc.stderr.split())[:300]
            write_state(config.state_dir, _state(config, p, device, name, "refused", why))
            raise HotplugError(f"{device}: {why}")
        state = _state(config, p, device, name, "plugged", None)
        _write_dropin(config, state)
        failed = reload_exports(config)
        if failed:
            state = _state(config, p, device, name, "plugged", f"mounted here but not shared: {failed}")
        write_state(config.state_dir, state)
        log(f"{device} mounted read-only at {mountpoint} and exported" + (f" ({failed})" if failed else ""))
        return state


def detach(config: Config, kernel_name: str, reason: str | None = None, lazy: bool = True) -> list[DiskState]:
    """Withdraw the export of every disk this host has plugged from the device, unmount it
    and record why.  ``lazy`` (a device gone, a unit stopped): a process still reading gets
    errors, nothing hangs.  Not lazy (an eject): a disk still in use stays mounted and
    exported, and HotplugError says so."""
    device = device_path(kernel_name)
    done = []
    with _Lock():
        away = gone(kernel_name, presence(kernel_name))
        for s in _states(config):
            if s.device != device:
                continue
            if s.state == "ejected" and away:
                # Pulled out after its eject: nothing to undo, the list says it is gone.
                new = replace(s, state="unplugged", reason="unplugged after its eject", since=now())
                write_state(config.state_dir, new)
                done.append(new)
                continue
            if s.state != "plugged":
                continue
            removed = _remove_dropin(config, s.name)
            failed = reload_exports(config) if removed else None
            if is_mount(s.mountpoint):
                proc = _run(["umount", *(["-l"] if lazy else []), s.mountpoint])
                if proc.returncode != 0 and not lazy:
                    if removed:
                        _write_dropin(config, s)
                        reload_exports(config)
                    raise HotplugError(
                        f"{s.mountpoint} is still in use: " + " ".join(proc.stderr.split())[:300]
                    )
            # The read-only flag set at attach stays on a device node that outlives the
            # disk (a loop device, reused): give it back as it was found.
            _run(["blockdev", "--setrw", device])
            try:
                os.rmdir(s.mountpoint)
            except OSError:
                pass
            present = away is None and reason is None
            why = reason or ("ejected: safe to unplug" if present else f"unplugged: {away}")
            if failed:
                why += f" ({failed})"
            new = replace(s, state="ejected" if present else "unplugged", reason=why, since=now())
            write_state(config.state_dir, new)
            log(f"{device}: export of {s.mountpoint} withdrawn, unmounted; {why}")
            done.append(new)
    return done


def forget_stale(config: Config) -> list[DiskState]:
    """At boot, before udev replays the add events: every disk still marked plugged whose
    mount point is not mounted was here before the host went down; it is unplugged now
    (a disk still here is attached again, under its old name)."""
    done = []
    with _Lock():
        for s in _states(config):
            if s.state == "plugged" and not is_mount(s.mountpoint):
                _remove_dropin(config, s.name)
                new = replace(
                    s, state="unplugged", reason="not plugged in since the host started", since=now()
                )
                write_state(config.state_dir, new)
                done.append(new)
    return done


def notify(message: str) -> None:
    """Tell systemd (Type=notify) the unit is ready, if it asked."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
        s.connect(address)
        s.sendall(message.encode())


def watch(config: Config, kernel_name: str, poll: float = POLL_SECONDS, sleep: Callable = time.sleep) -> str:
    """Wait until the device attached now goes away, then detach it; returns why."""
    seen = presence(kernel_name)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # ExecStop has detached already
    while True:
        why = gone(kernel_name, seen)
        if why:
            detach(config, kernel_name, reason=f"unplugged without eject: {why}")
            return why
        sleep(poll)


def unit_main(kernel_name: str | None, attach_it: bool) -> int:
    """The hot-plug unit's ExecStart (attach and watch) and ExecStop (detach); with no
    device, the boot unit's cleanup (``forget_stale``)."""
    try:
        config = Config.load()
        if kernel_name is None:
            for s in forget_stale(config):
                log(f"{s.mountpoint}: {s.reason}")
            return 0
        if not attach_it:
            detach(config, kernel_name)
            return 0
        state = attach(config, kernel_name)
        if state is None or state.state != "plugged":
            notify("READY=1")
            return 0
        notify(f"READY=1\nSTATUS=watching {state.mountpoint}")
        watch(config, kernel_name)
        return 0
    except (HotplugError, UnsafePath, OSError, subprocess.TimeoutExpired) as e:
        log(f"snhoo-dask: error: {kernel_name}: {e}")
        return 1

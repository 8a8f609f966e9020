"""The safe eject of a hot-plugged disk: ``snhoo-dask disks --eject NAME`` on its storage host.

Nothing on this host may still use the disk (the same check as detach-disk.yml's, the
``snhoo-dask-busy`` script: it names the processes); then its export is withdrawn, it is
unmounted (not lazily: a disk something still holds stays mounted) and its state says
``ejected``, safe to unplug.  Workers reading it over NFS are not seen from here: stop the
jobs on it first (docs/deploy.md).  A disk of ``snhoo_disks_list`` is ejected with
``detach-disk.yml``, which also edits the clients' fstab.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

from .hotplug import Config, HotplugError, detach
from .state import read_folder

BUSY = "/usr/local/sbin/snhoo-dask-busy"


@dataclass(frozen=True)
class EjectResult:
    ok: bool
    message: str

    def __str__(self) -> str:
        return self.message


def eject(name: str, base: str) -> EjectResult:
    """Eject the disk ``name`` of this storage host; the result says what happened."""
    try:
        config = Config.load()
    except HotplugError as e:
        return EjectResult(False, f"snhoo-dask: error: eject runs on the disk's storage host ({e})")
    states = {s.name: s for s in read_folder(config.state_dir, config.base)}
    disk = states.get(name)
    if disk is None:
        names = ", ".join(sorted(states)) or "none"
        return EjectResult(
            False, f"snhoo-dask: error: {config.host} has no hot-plugged disk {name!r} (it has: {names})"
        )
    if disk.state != "plugged" or not disk.device:
        return EjectResult(
            False, f"snhoo-dask: error: disk {name} is {disk.state}, not plugged: nothing to eject"
        )
    busy = os.environ.get("SNHOO_BUSY_COMMAND") or BUSY
    try:
        proc = subprocess.run([busy, disk.mountpoint], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return EjectResult(False, f"snhoo-dask: error: cannot tell whether disk {name} is in use ({e})")
    if proc.returncode != 0:
        held = proc.stdout.strip() or proc.stderr.strip()
        return EjectResult(
            False, f"snhoo-dask: error: disk {name} is still in use; stop these and retry:\n{held}"
        )
    kernel_name = os.path.basename(disk.device)
    try:
        done = detach(config, kernel_name, lazy=False)
    except HotplugError as e:
        return EjectResult(False, f"snhoo-dask: error: {e}")
    # The unit watching the device ends too (its ExecStop finds nothing left to do).
    systemctl = shutil.which("systemctl")
    if systemctl and os.path.isdir("/run/systemd/system"):
        subprocess.run(
            [systemctl, "--no-block", "stop", f"snhoo-disk@{kernel_name}.service"],
            capture_output=True,
            timeout=30,
        )
    if not done:
        return EjectResult(False, f"snhoo-dask: error: disk {name} was not mounted from {disk.device}")
    return EjectResult(True, f"disk {name} ejected: unmounted and no longer shared; it can be unplugged")

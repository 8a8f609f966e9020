"""Converge site.yml on a containerised lab and prove it end to end.

Three containers with systemd as PID 1 (images made by build_image.sh with
debootstrap), on two Debian releases as in a real lab: `storage1` (storage +
scheduler + web) and `worker1` on bookworm (Python 3.11), `worker2` on trixie
(Python 3.13).  All use the host's network namespace; each has its own
loopback address (127.0.77.1-3) as its only `ansible_host`, so the inventory
names nothing but addresses, every service binds to its host's address, and
no traffic leaves the loopback interface.  (The docker connection reaches the
containers through `ansible_docker_host`.)

Test disks are real block devices: two loop devices, one ext4 (found by UUID)
and one NTFS (found by label, mounted with ntfs-3g/FUSE), passed into the
storage container, which mounts them through the snhoo_disks role.  A third
disk of the list is not plugged in at all.

The kernel here has no NFS server or client, so the inventory sets
snhoo_nfs_simulate=true: exports and client fstab lines are rendered and
checked, but nfs-server is not started, exportfs is not run, and nothing is
NFS-mounted (the clients' entries go to /etc/snhoo-dask/fstab.simulated).  Standing in for NFS, /srv/snhoo is one host folder shared into
every container with mount propagation: what storage1 mounts under
/srv/snhoo/disks appears at the same path on the workers, as the NFS mounts
would in a lab.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
from ansible_paths import ANSIBLE_DIR, REPO
from videos import encode

# The module's fixture builds two images (cold: debootstrap of ~300 packages
# each) and converges twice: more than the suite's per-test timeout.
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(3600)]

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("SNHOO_CACHE", os.path.expanduser("~/.cache/snhoo-dask"))
VENV = "/opt/snhoo-dask/venv"
BASE = "/srv/snhoo"
HOSTS = ("storage1", "worker1", "worker2", "storage2")
# Each host's only address, its ansible_host.
ADDR = {"storage1": "127.0.77.1", "worker1": "127.0.77.2", "worker2": "127.0.77.3", "storage2": "127.0.77.4"}
RELEASE = {"storage1": "bookworm", "worker1": "bookworm", "worker2": "trixie", "storage2": "bookworm"}
# storage2 only stores: a disk plugged into it later is mounted and shared by
# its hot-plug unit, with no Ansible run.
SERVICES = {
    "storage1": ("snhoo-dask-scheduler", "snhoo-dask-web"),
    "worker1": ("snhoo-dask-worker",),
    "worker2": ("snhoo-dask-worker",),
    "storage2": (),
}
# Disks plugged into storage2 after the converge: one its rule accepts (label
# SNHOO*: the default rule), one it refuses.
HOTPLUG_LABEL, HOTPLUG_NAME = "SNHOO 张三", "SNHOO_张三"
REFUSED_LABEL = "HOLIDAYS"
# This kernel has no NFS server: in its place, a script that records each call
# and the drop-ins it would have read (the hot-plug unit runs it as `-r`).
EXPORTFS_STUB = "/usr/local/sbin/snhoo-test-exportfs"
EXPORTFS_LOG = "/var/log/snhoo-test-exportfs.log"
STUB = f"""#!/bin/sh
{{ echo "ARGS $*"; cat /etc/exports.d/snhoo-disk-*.exports 2>/dev/null; echo END; }} >> {EXPORTFS_LOG}
"""
# In snhoo_disks_list but never plugged in.
MISSING_DISK = "usb3"
# Videos on the test disks: (disk, relative path, seconds at 10 fps).
VIDEOS = [
    ("ext4disk", "160811张三测试/test/clip one.mp4", 2),
    ("ext4disk", "160811张三测试/test/b.mkv", 1),
    ("ntfsdisk", "lab/c.mp4", 2),
]
EVERY = 5
# What a user submits: a job folder on each disk, as in the old manual
# (`.../160811<name>测试/test`).  Not the disk roots: an ext4 disk's root holds
# lost+found (root only), and snhoo-dask rightly refuses to call a job
# complete when it could not search a folder.
JOB_ROOTS = [("ext4disk", "160811张三测试"), ("ntfsdisk", "lab")]


def sh(cmd, check=True, timeout=600, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd!r} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def wait_for(what: str, check, timeout: float = 120, every: float = 0.5):
    """Poll check() until it returns something truthy; fail naming `what` after timeout s."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def docker_ready() -> str | None:
    """None when docker answers (starting dockerd if needed), else why not."""
    if shutil.which("docker") is None:
        return "docker is not installed (run tests/ansible/setup_host.sh)"
    if sh(["docker", "info"], check=False).returncode == 0:
        return None
    if shutil.which("dockerd") is None:
        return "dockerd is not installed (run tests/ansible/setup_host.sh)"
    with open(os.path.join(tempfile.gettempdir(), "snhoo-dockerd.log"), "ab") as log:
        subprocess.Popen(["dockerd"], stdout=log, stderr=log, start_new_session=True)
    try:
        wait_for("dockerd", lambda: sh(["docker", "info"], check=False).returncode == 0, 60, 1)
    except AssertionError:
        return "dockerd could not be started"
    return None


class Lab:
    def __init__(self, work: str, images: dict[str, str]):
        self.work = work
        self.images = images
        self.tag = f"snhoo-test-{os.getpid()}"
        self.srv = os.path.join(work, "srv")
        self.loops: list[str] = []
        self.containers: list[str] = []
        self.ports = {k: free_port() for k in ("scheduler", "dashboard", "web")}
        self.inventory = os.path.join(work, "inventory.ini")
        self.vars = os.path.join(work, "lab.json")
        self.src = os.path.join(work, "src")
        self.log = os.path.join(work, "ansible.log")

    def name(self, host: str) -> str:
        return f"{self.tag}-{host}"

    # -- disks -------------------------------------------------------------
    def make_disk(self, fstype: str, label: str, videos: list[tuple[str, int]]) -> str:
        img = os.path.join(self.work, f"{label}.img")
        sh(["truncate", "-s", "96M", img])
        if fstype == "ext4":
            sh(["mkfs.ext4", "-q", "-L", label, img])
        else:
            sh(["mkfs.ntfs", "-Q", "-q", "-F", "-L", label, img])
        loop = sh(["losetup", "--find", "--show", img]).stdout.strip()
        self.loops.append(loop)
        mnt = os.path.join(self.work, f"mnt-{label}")
        os.makedirs(mnt)
        sh(["mount", "-t", "ntfs-3g" if fstype == "ntfs" else "ext4", loop, mnt])
        try:
            for rel, seconds in videos:
                path = os.path.join(mnt, rel)
                encode(path, source="testsrc=size=96x64:rate=10", seconds=seconds)
        finally:
            sh(["umount", mnt])
        return loop

    # -- containers --------------------------------------------------------
    def start(self, host: str, devices: list[str], propagation: str) -> None:
        image = self.images[RELEASE[host]]
        cmd = [
            "docker",
            "run",
            "-d",
            "--name",
            self.name(host),
            "--network",
            "host",
            "--cap-add",
            "SYS_ADMIN",
            "--security-opt",
            "seccomp=unconfined",
            # As on a real machine, root may look at every process's open
            # files: detach-disk.yml's fuser must see the snhoo services'.
            "--cap-add",
            "SYS_PTRACE",
            "--security-opt",
            "apparmor=unconfined",
            "--cgroupns=host",
            "-v",
            "/sys/fs/cgroup:/sys/fs/cgroup:rw",
            "--tmpfs",
            "/run",
            "--tmpfs",
            "/run/lock",
            "--device",
            "/dev/fuse",
            "--mount",
            f"type=bind,src={self.srv},dst={BASE},bind-propagation={propagation}",
        ]
        for dev in devices:
            cmd += ["--device", dev]
        sh(cmd + [image])
        self.containers.append(self.name(host))

    def wait_booted(self) -> None:
        for c in self.containers:
            wait_for(
                f"{c} to boot",
                lambda c=c: (
                    sh(["docker", "exec", c, "systemctl", "is-system-running"], check=False).stdout.strip()
                    in ("running", "degraded")
                ),
                90,
            )

    def exec(self, host: str, command: str, check=True, timeout=600):
        return sh(["docker", "exec", self.name(host), "bash", "-lc", command], check=check, timeout=timeout)

    # -- ansible -----------------------------------------------------------
    def env(self) -> dict[str, str]:
        return dict(
            os.environ,
            ANSIBLE_CONFIG=os.path.join(ANSIBLE_DIR, "ansible.cfg"),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_FORCE_COLOR="0",
            # Each task's duration in the log: where the time goes.
            ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks",
        )

    def command(self, playbook: str, *args: str) -> list[str]:
        # The lab's settings as extra vars: a lab keeps them in
        # group_vars/lab.yml, which a test must not write into the checkout.
        return ["ansible-playbook", "-i", self.inventory, "-e", f"@{self.vars}", playbook, *args]

    def playbook(self, playbook: str, *args: str, check=True):
        proc = sh(self.command(playbook, *args), check=False, cwd=ANSIBLE_DIR, env=self.env(), timeout=1800)
        with open(self.log, "a", encoding="utf-8") as fh:
            fh.write(
                f"\n===== {playbook} {' '.join(args)} (rc={proc.returncode})\n{proc.stdout}\n{proc.stderr}\n"
            )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{playbook} failed (rc={proc.returncode}):\n{proc.stdout[-8000:]}\n{proc.stderr[-3000:]}"
            )
        return proc

    def teardown(self) -> None:
        if self.containers:
            sh(["docker", "rm", "-f", *self.containers], check=False)
        # Mounts made inside storage1 propagated to the host's shared folder.
        if os.path.isdir(self.srv):
            sh(["umount", "-R", "-l", self.srv], check=False)
        for loop in self.loops:
            sh(["blockdev", "--setrw", loop], check=False)  # the hot-plug unit set it read-only
            sh(["losetup", "-d", loop], check=False)


def recap(stdout: str) -> dict[str, dict[str, int]]:
    out = {}
    for m in re.finditer(r"^(\S+)\s+:\s+(.*)$", stdout, re.M):
        fields = dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2)))
        if "changed" in fields:
            out[m.group(1)] = fields
    return out


def build_images(releases: list[str]) -> dict[str, str]:
    """One image per release, built side by side: cold, each is a debootstrap
    that mostly waits on the mirror, then on unpacking."""
    procs = {
        release: subprocess.Popen(
            ["bash", os.path.join(HERE, "build_image.sh"), release],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for release in releases
    }
    images = {}
    for release, proc in procs.items():
        out, err = proc.communicate(timeout=1200)
        if proc.returncode != 0:
            raise AssertionError(f"build_image.sh {release} failed:\n{err[-3000:]}")
        # The script prints the image's name (a digest of its content) last.
        images[release] = out.split()[-1]
    return images


@pytest.fixture(scope="module")
def lab():
    why = docker_ready()
    if why:
        pytest.skip(f"container cluster test needs Docker: {why}")
    images = build_images(sorted(set(RELEASE.values())))
    work = tempfile.mkdtemp(prefix="snhoo-lab-")
    lab = Lab(work, images)
    try:
        os.makedirs(os.path.join(lab.srv, "disks"))
        # The code the lab gets: this checkout as it is now.  Other work in
        # the checkout while the test runs must not change the wheel between
        # the two converges (that would rightly count as a change).
        # SNHOO_LAB_SOURCE: converge another checkout's code with these roles.
        shutil.copytree(
            os.environ.get("SNHOO_LAB_SOURCE", REPO),
            lab.src,
            symlinks=True,
            ignore=shutil.ignore_patterns(
                ".git",
                "tests",
                "ansible",
                "benchmarks",
                "node_modules",
                "build",
                "dist",
                "*.egg-info",
                "__pycache__",
                ".pytest_cache",
                ".venv",
                "venv",
            ),
        )
        # A shared mount point, so mounts made in storage1 reach the workers.
        sh(["mount", "--bind", lab.srv, lab.srv])
        sh(["mount", "--make-rshared", lab.srv])
        ext4 = lab.make_disk("ext4", "SNHOOEXT", [(r, s) for d, r, s in VIDEOS if d == "ext4disk"])
        ntfs = lab.make_disk("ntfs", "SNHOONTFS", [(r, s) for d, r, s in VIDEOS if d == "ntfsdisk"])
        ext4_uuid = sh(["blkid", "-s", "UUID", "-o", "value", ext4]).stdout.strip()
        lab.hotplug = lab.make_disk("ext4", HOTPLUG_LABEL, [("cam/新 clip.mp4", 1)])
        lab.refused = lab.make_disk("ext4", REFUSED_LABEL, [("x.mp4", 1)])
        lab.start("storage1", [ext4, ntfs], "rshared")
        lab.start("storage2", [lab.hotplug, lab.refused], "rshared")
        # rslave: a worker sees storage1's mounts but cannot unmount them.
        lab.start("worker1", [], "rslave")
        lab.start("worker2", [], "rslave")
        lab.wait_booted()
        disks = [
            {"name": "ext4disk", "uuid": ext4_uuid, "fstype": "ext4"},
            {"name": "ntfsdisk", "label": "SNHOONTFS", "fstype": "ntfs"},
            # Unplugged: no device has this UUID.
            {"name": MISSING_DISK, "uuid": "5e1f0000-0000-4000-8000-00000000d15c", "fstype": "ext4"},
        ]
        # Addresses only: nothing below names a host, so every address a
        # node is given must come from ansible_host.
        with open(lab.inventory, "w", encoding="utf-8") as fh:
            fh.write(f"""# Generated by tests/ansible/test_cluster.py
[storage]
storage1 ansible_host={ADDR["storage1"]} ansible_docker_host={lab.name("storage1")}
storage2 ansible_host={ADDR["storage2"]} ansible_docker_host={lab.name("storage2")}

[scheduler]
storage1

[workers]
worker1 ansible_host={ADDR["worker1"]} ansible_docker_host={lab.name("worker1")} snhoo_dask_worker_nworkers=1 snhoo_dask_worker_nthreads=1 snhoo_dask_worker_memory_limit=1GiB
worker2 ansible_host={ADDR["worker2"]} ansible_docker_host={lab.name("worker2")} snhoo_dask_worker_nworkers=2 snhoo_dask_worker_nthreads=1 snhoo_dask_worker_memory_limit=1GiB

[all:vars]
ansible_connection=community.docker.docker
ansible_python_interpreter=/usr/bin/python3
""")
        settings = {
            "snhoo_disks_list": disks,
            # The only place this is ever set: this kernel has no NFS.
            "snhoo_nfs_simulate": True,
            "snhoo_common_wheelhouse": os.path.join(CACHE, "wheelhouse"),
            "snhoo_common_source_dir": lab.src,
            "snhoo_tls_enabled": True,
            "snhoo_tls_local_dir": os.path.join(work, "tls"),
            "snhoo_dask_scheduler_port": lab.ports["scheduler"],
            # The host network is shared with the machine running the test:
            # the dashboard and the web front end listen on loopback only.
            "snhoo_dask_scheduler_dashboard_host": "{{ snhoo_address }}",
            "snhoo_dask_scheduler_dashboard_port": lab.ports["dashboard"],
            "snhoo_web_host": "{{ snhoo_address }}",
            "snhoo_web_port": lab.ports["web"],
            "snhoo_disks_hotplug_exportfs": EXPORTFS_STUB,
        }
        for host in ("storage1", "storage2"):
            lab.exec(host, f"cat > {EXPORTFS_STUB} <<'EOF'\n{STUB}EOF\nchmod 755 {EXPORTFS_STUB}")
        with open(lab.vars, "w", encoding="utf-8") as fh:
            json.dump(settings, fh)
        lab.first = lab.playbook("site.yml")
        lab.second = lab.playbook("site.yml")
        yield lab
    finally:
        log = os.environ.get("SNHOO_ANSIBLE_LOG")
        if log and os.path.exists(lab.log):
            shutil.copy(lab.log, log)
        lab.teardown()
        shutil.rmtree(work, ignore_errors=True)


def test_first_converge_changed_things(lab):
    r = recap(lab.first.stdout)
    assert set(HOSTS) <= set(r), lab.first.stdout[-3000:]
    assert all(v["failed"] == 0 and v["unreachable"] == 0 for v in r.values())


def test_second_converge_changes_nothing(lab):
    r = recap(lab.second.stdout)
    assert set(HOSTS) <= set(r)
    changed = {h: v["changed"] for h, v in r.items() if v["changed"]}
    assert not changed, lab.second.stdout[-6000:]


def test_two_releases_each_with_its_own_python(lab):
    for host, release in RELEASE.items():
        codename = lab.exec(host, ". /etc/os-release && echo $VERSION_CODENAME").stdout.strip()
        assert codename == release
        py = lab.exec(
            host, f"{VENV}/bin/python -c 'import sys, numpy; print(sys.version_info[:2], numpy.__file__)'"
        )
        want = "(3, 11)" if release == "bookworm" else "(3, 13)"
        assert py.stdout.startswith(want), py.stdout


def test_packages_installed(lab):
    lab.exec("storage1", "dpkg -s nfs-kernel-server ntfs-3g ffmpeg >/dev/null")
    for w in ("worker1", "worker2"):
        lab.exec(w, "dpkg -s nfs-common ffmpeg >/dev/null")
    for h in HOSTS:
        lab.exec(h, f"id -u snhoo | grep -qx 2786 && {VENV}/bin/snhoo-dask --version")


def test_disks_mounted_by_uuid_and_label_with_nofail(lab):
    fstab = lab.exec("storage1", "cat /etc/fstab").stdout
    assert re.search(rf"^UUID=\S+\s+{BASE}/disks/ext4disk\s+ext4\s+\S*nofail", fstab, re.M), fstab
    assert re.search(rf"^LABEL=SNHOONTFS\s+{BASE}/disks/ntfsdisk\s+ntfs-3g\s+\S*nofail", fstab, re.M), fstab
    mounts = lab.exec("storage1", "findmnt -rn -o TARGET,FSTYPE,OPTIONS").stdout
    assert re.search(rf"^{BASE}/disks/ext4disk ext4 ro,", mounts, re.M), mounts
    assert re.search(rf"^{BASE}/disks/ntfsdisk fuseblk ro,", mounts, re.M), mounts
    # The same paths on a worker (NFS stand-in: shared mount propagation).
    lab.exec("worker1", f"test -f '{BASE}/disks/ntfsdisk/lab/c.mp4'")


def test_unplugged_disk_is_in_fstab_but_not_mounted_nor_exported(lab):
    fstab = lab.exec("storage1", "cat /etc/fstab").stdout
    assert re.search(rf"^UUID=\S+\s+{BASE}/disks/{MISSING_DISK}\s+ext4\s+\S*nofail", fstab, re.M), fstab
    # No empty folder that would pass for an empty disk.
    assert lab.exec("storage1", f"test -e {BASE}/disks/{MISSING_DISK}", check=False).returncode != 0
    assert MISSING_DISK not in lab.exec("storage1", "cat /etc/exports.d/snhoo-dask.exports").stdout


def test_exports_list_client_addresses_root_squash_disks_read_only(lab):
    exports = lab.exec("storage1", "cat /etc/exports.d/snhoo-dask.exports").stdout
    lines = [ln for ln in exports.splitlines() if ln and not ln.startswith("#")]
    # The two listed disks, storage1's hot-plug folder, the output.
    assert len(lines) == 4 and f"{BASE}/disks/storage1 " in exports, exports
    for line in lines:
        path, *clients = line.split()
        assert [c.split("(")[0] for c in clients] == [ADDR["worker1"], ADDR["worker2"]], line
        for c in clients:
            opts = c.split("(")[1].rstrip(")").split(",")
            assert "root_squash" in opts
            assert ("ro" in opts) == path.startswith(f"{BASE}/disks/"), line
            assert ("rw" in opts) == (path == f"{BASE}/output"), line
    assert "*" not in exports and "/24" not in exports and "/16" not in exports


def test_clients_mount_the_storage_hosts_address(lab):
    for w in ("worker1", "worker2"):
        fstab = lab.exec(w, "cat /etc/snhoo-dask/fstab.simulated").stdout
        for path, mode in (
            (f"{BASE}/disks/ext4disk", "ro"),
            (f"{BASE}/disks/ntfsdisk", "ro"),
            (f"{BASE}/output", "rw"),
        ):
            assert re.search(
                rf"^{re.escape(ADDR['storage1'])}:{path}\s+{path}\s+nfs\s+{mode},\S*nofail", fstab, re.M
            ), fstab
        # Every storage host's hot-plug folder, automounted, soft: a host or disk that
        # goes away makes reads fail instead of hanging the worker.
        for s in ("storage1", "storage2"):
            m = re.search(
                rf"^{re.escape(ADDR[s])}:{BASE}/disks/{s}\s+{BASE}/disks/{s}\s+nfs\s+(\S+)", fstab, re.M
            )
            assert m, fstab
            opts = m.group(1).split(",")
            assert {"ro", "soft", "x-systemd.automount"} <= set(opts) and any(
                o.startswith("timeo=") for o in opts
            )
        # Simulated mounts stay out of the fstab systemd reads.
        assert " nfs " not in lab.exec(w, "cat /etc/fstab").stdout
    # storage1 (the scheduler) reaches storage2's disks too, and only those.
    fstab = lab.exec("storage1", "cat /etc/snhoo-dask/fstab.simulated").stdout
    assert [ln.split()[1] for ln in fstab.splitlines() if ln.strip()] == [f"{BASE}/disks/storage2"], fstab


def _main_pid(lab, host: str, service: str) -> int:
    pid = int(lab.exec(host, f"systemctl show -p MainPID --value {service}").stdout.strip())
    assert pid > 0, f"{service} is not running on {host}"
    return pid


def _assert_hardened(lab, host: str, service: str) -> None:
    """The running process, not only the unit file, is confined."""
    lab.exec(host, f"systemctl is-active {service}")
    pid = _main_pid(lab, host, service)
    status = lab.exec(host, f"cat /proc/{pid}/status").stdout
    assert re.search(r"^Uid:\s+2786\s", status, re.M), status
    # NoNewPrivileges=yes
    assert re.search(r"^NoNewPrivs:\s+1$", status, re.M), status
    # ProtectSystem=strict: / is read-only for the service.
    mounts = lab.exec(host, f"cat /proc/{pid}/mounts").stdout
    root = [ln.split() for ln in mounts.splitlines() if ln.split()[1] == "/"]
    assert root and root[-1][3].split(",")[0] == "ro", root

    # LimitNOFILE=65536, or as much of it as the machine allows: systemd
    # cannot go past its own hard limit (20000 on this project's CI host).
    def nofile(p) -> int:
        limits = lab.exec(host, f"cat /proc/{p}/limits").stdout
        return int(re.search(r"^Max open files\s+(\d+)", limits, re.M).group(1))

    assert nofile(pid) == min(65536, nofile(1)) > 1024, (nofile(pid), nofile(1))
    props = lab.exec(
        host, f"systemctl show -p Restart -p RestartPreventExitStatus -p PrivateTmp {service}"
    ).stdout
    assert "Restart=always" in props and "PrivateTmp=yes" in props, props
    assert "RestartPreventExitStatus=2" in props, props


def test_services_running_as_snhoo_hardened(lab):
    lab.exec("storage1", "systemctl is-enabled snhoo-dask-web")
    for host, services in SERVICES.items():
        for service in services:
            if service == "snhoo-dask-web":
                continue  # its own test: it waits on the `serve` contract
            _assert_hardened(lab, host, service)
    for w in ("worker1", "worker2"):
        unit = lab.exec(w, "systemctl cat snhoo-dask-worker").stdout
        assert "Environment=SNHOO_SCRATCH=/var/lib/snhoo-dask/scratch" in unit
        assert f"RequiresMountsFor={BASE}/output" in unit
    web = lab.exec("storage1", "systemctl cat snhoo-dask-web").stdout
    for folder in ("ext4disk", "ntfsdisk", MISSING_DISK, "storage1", "storage2"):
        assert f"--allow {BASE}/disks/{folder}" in web
    assert f"--out-base {BASE}/output" in web
    assert f"--scheduler tls://{ADDR['storage1']}:{lab.ports['scheduler']}" in web
    # ... and the TLS key is readable by the service user only.
    for h in ("storage1", "worker1", "worker2"):  # storage2 runs no snhoo service
        assert lab.exec(h, "stat -c '%U %a' /etc/snhoo-dask/tls/host.key").stdout.split() == ["snhoo", "400"]


def _scheduler(lab) -> str:
    return f"tls://{ADDR['storage1']}:{lab.ports['scheduler']}"


def _workers(lab) -> dict[str, str]:
    """Worker address -> name, as the scheduler knows them."""
    code = (
        "import json; from distributed import Client\n"
        f"c = Client('{_scheduler(lab)}', timeout=30)\n"
        "print(json.dumps({a: w['name'] for a, w in c.scheduler_info(n_workers=-1)['workers'].items()}))\n"
    )
    proc = lab.exec("storage1", f"runuser -u snhoo -- {VENV}/bin/python -c {shlex.quote(code)}", check=False)
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {}


def test_workers_on_both_releases_joined_over_tls_at_their_addresses(lab):
    workers = wait_for(
        "3 worker processes", lambda: (lambda w: w if len(w) == 3 else None)(_workers(lab)), 120, 2
    )
    hosts = sorted(re.match(r"tls://([0-9.]+):", a).group(1) for a in workers)
    assert hosts == [ADDR["worker1"], ADDR["worker2"], ADDR["worker2"]], workers
    plain = f"from distributed import Client; Client('tcp://{ADDR['storage1']}:{lab.ports['scheduler']}', timeout=5)"
    assert lab.exec("storage1", f"{VENV}/bin/python -c {shlex.quote(plain)}", check=False).returncode != 0


def test_dashboard_answers(lab):
    lab.exec(
        "storage1",
        f'{VENV}/bin/python -c "import urllib.request as u; '
        f"u.urlopen('http://{ADDR['storage1']}:{lab.ports['dashboard']}/status', timeout=10)\"",
    )


def _frames_dir(out: str, disk: str, rel: str) -> str:
    """OUT/<root folder name>/<path under the root> for a video of VIDEOS."""
    for d, root in JOB_ROOTS:
        if d == disk and rel.startswith(root + "/"):
            return f"{out}/{root}/{rel[len(root) + 1 :]}"
    raise AssertionError((disk, rel))


def test_run_extracts_frames_on_workers_of_both_releases(lab):
    wait_for("3 worker processes", lambda: len(_workers(lab)) == 3, 120, 2)
    out = f"{BASE}/output/job1"
    roots = " ".join(shlex.quote(f"{BASE}/disks/{d}/{r}") for d, r in JOB_ROOTS)
    proc = lab.exec(
        "storage1",
        f"runuser -u snhoo -- {VENV}/bin/snhoo-dask run {roots} "
        f"--out {out} --scheduler {_scheduler(lab)} --every {EVERY} --quiet",
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    manifest = [
        json.loads(ln)
        for ln in lab.exec("storage1", f"cat {out}/manifest.jsonl").stdout.splitlines()
        if ln.strip()
    ]
    assert len(manifest) == len(VIDEOS) and all(r["status"] == "ok" for r in manifest), manifest
    for disk, rel, seconds in VIDEOS:
        expected = -(-seconds * 10 // EVERY)
        n = lab.exec(
            "storage1", f"ls {shlex.quote(_frames_dir(out, disk, rel))}/*.jpg | wc -l"
        ).stdout.strip()
        assert int(n) == expected, (disk, rel, n)
    # Three videos, three idle single-thread worker processes: bookworm's and
    # trixie's workers both took part.
    names = {str(r.get("worker")).split("-")[0] for r in manifest}
    assert names == {"worker1", "worker2"}, [r.get("worker") for r in manifest]
    # Workers wrote through the shared output folder as the snhoo user.
    owner = lab.exec(
        "worker1", f"stat -c %U {shlex.quote(_frames_dir(out, *VIDEOS[0][:2]) + '/frames.csv')}"
    ).stdout.strip()
    assert owner == "snhoo"


def _web(lab, path: str = "/", token: str | None = None, host: str | None = None) -> tuple[int, str]:
    """GET a page of the web front end from storage1: (status, body)."""
    url = f"http://{ADDR['storage1']}:{lab.ports['web']}{path}"
    headers = {}
    if token is not None:
        headers["Authorization"] = f"token {token}"
    if host is not None:
        headers["Host"] = host
    code = (
        "import sys, urllib.request as u, urllib.error as e\n"
        f"r = u.Request({url!r}, headers={headers!r})\n"
        "try:\n"
        "    resp = u.urlopen(r, timeout=5); print(resp.status); print(resp.read().decode())\n"
        "except e.HTTPError as x:\n"
        "    print(x.code)\n"
        "except OSError as x:\n"
        "    print(0); print(x)\n"
    )
    out = lab.exec("storage1", f"{VENV}/bin/python -c {shlex.quote(code)}", check=False).stdout
    status, _, body = out.partition("\n")
    return int(status or 0), body


def _web_journal(lab, lines: int = 40) -> str:
    return lab.exec("storage1", f"journalctl -u snhoo-dask-web -n {lines} --no-pager", check=False).stdout


def test_web_front_end_answers_with_token_and_shows_the_unplugged_disk(lab):
    """Waits on the `serve` contract: token, --allowed-host, missing --allow folders."""
    token_file = "/var/lib/snhoo-dask/web/token"
    token = wait_for(
        "the web front end's generated token",
        lambda: lab.exec("storage1", f"cat {token_file}", check=False).stdout.strip(),
        60,
    )
    assert lab.exec("storage1", f"stat -c '%U %a' {token_file}").stdout.split() == ["snhoo", "600"]
    status, body = wait_for(
        "the web front end to answer",
        lambda: (lambda r: r if r[0] == 200 else None)(_web(lab, token=token)),
        60,
    )
    assert f"{BASE}/disks/ext4disk" in body
    # The unplugged disk is listed, as unavailable; the service did not loop.
    assert f"{BASE}/disks/{MISSING_DISK}" in body and "unavailable" in body.lower(), body[-3000:]

    # Up, and staying up: no restart while it keeps answering for longer than
    # RestartSec.  (It may have restarted before the workers joined: it
    # gives up after 30 s without workers.)
    def restarts() -> str:
        return lab.exec("storage1", "systemctl show -p NRestarts --value snhoo-dask-web").stdout.strip()

    before = restarts()
    time.sleep(6)
    assert _web(lab, token=token)[0] == 200
    assert restarts() == before, _web_journal(lab)
    _assert_hardened(lab, "storage1", "snhoo-dask-web")
    # No token, no page; a foreign Host header (DNS rebinding), no page.
    assert _web(lab)[0] in (401, 403)
    assert _web(lab, token=token, host=f"attacker.example:{lab.ports['web']}")[0] in (400, 403, 421)


def test_web_config_error_stops_the_unit_without_a_restart_loop(lab):
    """Waits on the `serve` contract: cannot listen is exit 2 and one error line.

    The configuration error is a real one: another program holds the port."""
    addr, port = ADDR["storage1"], lab.ports["web"]
    # SO_REUSEADDR: the port still has TIME_WAIT connections from the
    # requests of the test before; a listener on it still keeps the service out.
    holder = (
        "import socket, time; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
        f"s.bind(({addr!r}, {port})); s.listen(); time.sleep(600)"
    )
    since = lab.exec("storage1", "date +%s").stdout.strip()
    try:
        lab.exec("storage1", "systemctl stop snhoo-dask-web")
        sh(["docker", "exec", "-d", lab.name("storage1"), "python3", "-c", holder])
        wait_for(
            "the port to be taken",
            lambda: f"{addr}:{port} " in lab.exec("storage1", "ss -Hltn").stdout,
            30,
            0.2,
        )
        lab.exec("storage1", "systemctl start snhoo-dask-web")
        wait_for(
            "snhoo-dask-web to fail",
            lambda: (
                lab.exec("storage1", "systemctl is-failed snhoo-dask-web", check=False).stdout.strip()
                == "failed"
            ),
            120,
        )
        # Well past RestartSec: still failed, never restarted.
        time.sleep(6)
        props = lab.exec(
            "storage1", "systemctl show -p ActiveState -p NRestarts -p ExecMainStatus snhoo-dask-web"
        ).stdout
        assert "ActiveState=failed" in props and "NRestarts=0" in props and "ExecMainStatus=2" in props, props
        journal = lab.exec(
            "storage1", f"journalctl -u snhoo-dask-web --since @{since} --no-pager -o cat"
        ).stdout
        errors = [ln for ln in journal.splitlines() if ln.startswith("snhoo-dask: error:")]
        assert len(errors) == 1, journal
    finally:
        lab.exec(
            "storage1",
            "pkill -f 's[.]bind'; systemctl reset-failed snhoo-dask-web; systemctl start snhoo-dask-web",
            check=False,
        )


def _started_at(lab, host: str, service: str) -> int:
    """When the service's main process started (epoch seconds, on the host's clock)."""
    pid = _main_pid(lab, host, service)
    now, age = lab.exec(host, f"date +%s; ps -o etimes= -p {pid}").stdout.split()
    return int(now) - int(age)


def _mtime(lab, host: str, path: str) -> int:
    return int(lab.exec(host, f"stat -c %Y {path}").stdout.strip())


def test_rerun_after_an_interrupted_converge_restarts_on_the_new_code(lab):
    """Kill a converge right after the new wheelhouse reached the nodes; the
    rerun must install it and restart every service, though the copy no
    longer reports a change."""
    with open(os.path.join(lab.src, "snhoo_dask", "_lab_build.py"), "w", encoding="utf-8") as fh:
        fh.write('BUILD = "after-the-interrupted-run"\n')
    tar = "/opt/snhoo-dask/wheelhouse.tar"
    before = {h: _mtime(lab, h, tar) for h in HOSTS}
    # mtimes have a one-second grain: make sure the new copy's differs.
    time.sleep(1.1)
    proc = subprocess.Popen(
        lab.command("site.yml"),
        cwd=ANSIBLE_DIR,
        env=lab.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(
            "the new wheelhouse on every node",
            lambda: all(_mtime(lab, h, tar) != before[h] for h in HOSTS) or proc.poll() is not None,
            300,
            0.2,
        )
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # Killing the controller leaves the module it was running on each node
    # (`sudo ... echo BECOME-SUCCESS-...; python3`) to finish: let it.  The
    # bracket keeps pgrep from matching the shell that runs it.
    wait_for(
        "the killed run's modules to finish",
        lambda: all(lab.exec(h, "pgrep -f 'BECOME-[S]UCCESS'", check=False).returncode != 0 for h in HOSTS),
        300,
    )
    # Interrupted in time: the new code is on every node, no service runs it.
    for host, services in SERVICES.items():
        arrived = _mtime(lab, host, tar)
        assert arrived != before[host], f"the converge ended before the copy reached {host}"
        for service in services:
            assert _started_at(lab, host, service) < arrived, f"{service} on {host} already restarted"
    lab.playbook("site.yml")
    check = f"{VENV}/bin/python -c 'from snhoo_dask._lab_build import BUILD; print(BUILD)'"
    for host, services in SERVICES.items():
        assert lab.exec(host, check).stdout.strip() == "after-the-interrupted-run"
        installed = _mtime(lab, host, f"{VENV}/snhoo-code.stamp")
        for service in services:
            lab.exec(host, f"systemctl is-active {service}")
            assert _started_at(lab, host, service) >= installed, f"{service} on {host} runs the old code"
    wait_for("3 worker processes", lambda: len(_workers(lab)) == 3, 120, 2)


def _busy(lab, host: str, path: str) -> bool:
    return lab.exec(host, f"/usr/local/sbin/snhoo-dask-busy {path}", check=False).returncode == 1


def test_detach_disk_refuses_while_busy_then_detaches(lab):
    disk = f"{BASE}/disks/ntfsdisk"
    holder = f"cd {disk} && exec sleep 600"
    sh(["docker", "exec", "-d", lab.name("storage1"), "bash", "-c", holder])
    wait_for("the holder to use the disk", lambda: _busy(lab, "storage1", disk), 30, 0.2)
    busy = lab.playbook("detach-disk.yml", "-e", "disk=ntfsdisk", check=False)
    assert busy.returncode != 0
    assert "still in use on storage1" in busy.stdout and "sleep" in busy.stdout, busy.stdout[-4000:]
    lab.exec("storage1", "pkill -x sleep")
    wait_for("the holder to let go", lambda: not _busy(lab, "storage1", disk), 30, 0.2)
    lab.playbook("detach-disk.yml", "-e", "disk=ntfsdisk")
    assert lab.exec("storage1", f"mountpoint -q {disk}", check=False).returncode != 0
    assert "ntfsdisk" not in lab.exec("storage1", "cat /etc/fstab").stdout
    assert "ntfsdisk" not in lab.exec("storage1", "cat /etc/exports.d/snhoo-dask.exports").stdout
    assert "ntfsdisk" not in lab.exec("storage1", "systemctl cat snhoo-dask-web").stdout
    for w in ("worker1", "worker2"):
        assert "ntfsdisk" not in lab.exec(w, "cat /etc/snhoo-dask/fstab.simulated").stdout
    # The other disk is untouched.
    lab.exec("storage1", f"mountpoint -q {BASE}/disks/ext4disk")


def _exportfs_calls(lab) -> list[tuple[str, str]]:
    """(arguments, the drop-ins it would have read) for each call of the exportfs stand-in."""
    log = lab.exec("storage2", f"cat {EXPORTFS_LOG}", check=False).stdout
    calls = []
    for chunk in log.split("END\n"):
        if chunk.startswith("ARGS "):
            args, _, files = chunk.partition("\n")
            calls.append((args[5:], files))
    return calls


def _disk_rows(lab, host: str) -> list[dict]:
    """`snhoo-dask disks --json` as the snhoo user on ``host``."""
    proc = lab.exec(host, f"runuser -u snhoo -- {VENV}/bin/snhoo-dask disks --json", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)["disks"]


def test_a_disk_plugged_into_the_second_storage_host_is_shared_then_unplugged(lab):
    """What udev does on a real machine, by hand: start the unit its rule names, with the
    loop device's kernel name as udev passes it (%k); then detach the loop device."""
    dev = os.path.basename(lab.hotplug)
    unit = f"snhoo-disk@{dev}.service"
    point = f"{BASE}/disks/storage2/{HOTPLUG_NAME}"
    lab.exec("storage2", f"systemctl start {unit}", timeout=120)
    assert lab.exec("storage2", f"systemctl is-active {unit}").stdout.strip() == "active"
    options = lab.exec("storage2", f"findmnt -n -o OPTIONS --mountpoint {shlex.quote(point)}").stdout.strip()
    assert {"ro", "nosuid", "nodev", "noexec"} <= set(options.split(",")), options
    dropin = f"/etc/exports.d/snhoo-disk-{HOTPLUG_NAME}.exports"
    text = lab.exec("storage2", f"cat {shlex.quote(dropin)}").stdout
    (line,) = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    path, *clients = line.split()
    assert path == point, line
    # The lab's own addresses only (scheduler and workers), read-only, root squashed.
    assert [c.split("(")[0] for c in clients] == [ADDR["storage1"], ADDR["worker1"], ADDR["worker2"]], line
    assert all(c.split("(")[1].startswith("ro,root_squash,") for c in clients), line
    # Exports reloaded once, with -r (no server restart), the drop-in in place.
    assert _exportfs_calls(lab) == [("-r", text)]
    # Listed on a worker and on the scheduler's host, with its video; readable there.
    for host in ("worker1", "storage1"):
        rows = [r for r in _disk_rows(lab, host) if r["host"] == "storage2" and r["name"] == HOTPLUG_NAME]
        assert [(r["state"], r["label"], r["videos"]) for r in rows] == [("plugged", HOTPLUG_LABEL, 1)], rows
    lab.exec("worker1", f"test -s {shlex.quote(point + '/cam/新 clip.mp4')}")

    # A disk the lab's rule does not accept: not mounted, listed as refused with the reason.
    refused = f"snhoo-disk@{os.path.basename(lab.refused)}.service"
    lab.exec("storage2", f"systemctl start {refused}", timeout=120)
    (row,) = [r for r in _disk_rows(lab, "worker1") if r["label"] == REFUSED_LABEL]
    assert row["state"] == "refused" and "rule" in row["reason"], row
    assert (
        lab.exec("storage2", f"mountpoint -q {BASE}/disks/storage2/{REFUSED_LABEL}", check=False).returncode
        != 0
    )

    # Pulled out without an eject (a loop device detached while mounted).
    sh(["losetup", "-d", lab.hotplug])
    lab.loops.remove(lab.hotplug)  # gone once unmounted: never detach a number someone reused
    started = time.monotonic()
    wait_for(
        "the disk list to say unplugged",
        lambda: (
            [r["state"] for r in _disk_rows(lab, "worker1") if r["name"] == HOTPLUG_NAME] == ["unplugged"]
        ),
        15,
        0.5,
    )
    print(f"unplugged shown after {time.monotonic() - started:.1f} s")
    wait_for(
        "the unit to stop",
        lambda: lab.exec("storage2", f"systemctl is-active {unit}", check=False).stdout.strip() == "inactive",
        30,
    )
    assert lab.exec("storage2", f"mountpoint -q {shlex.quote(point)}", check=False).returncode != 0
    assert lab.exec("storage2", f"test -e {shlex.quote(dropin)}", check=False).returncode != 0
    assert _exportfs_calls(lab)[-1] == ("-r", "")
    assert all(args == "-r" for args, _ in _exportfs_calls(lab))

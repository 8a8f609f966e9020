"""Converge site.yml on a containerised lab and prove it end to end.

Three Debian bookworm containers with systemd as PID 1 (image made by
build_image.sh with debootstrap): `storage1` (storage + scheduler + web) and
two workers.  All use the host's network namespace and every service is bound
to 127.0.0.1, so no traffic leaves the loopback interface.

Test disks are real block devices: two loop devices, one ext4 (found by UUID)
and one NTFS (found by label, mounted with ntfs-3g/FUSE), passed into the
storage container, which mounts them through the snhoo_disks role.

The kernel here has no NFS server or client, so the inventory sets
snhoo_nfs_simulate=true: exports and client fstab lines are rendered and
checked, but nfs-server is not started, exportfs is not run, and nothing is
NFS-mounted.  Standing in for NFS, /srv/snhoo is one host folder shared into
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
import socket
import subprocess
import tempfile
import time

import pytest
from ansible_paths import ANSIBLE_DIR, REPO

# The module's fixture builds the image (cold: debootstrap of ~300 packages)
# and converges twice: more than the suite's per-test timeout.  Measured on a
# cold, busy 2-core machine: about 8 minutes for the whole module.
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("SNHOO_CACHE", os.path.expanduser("~/.cache/snhoo-dask"))
VENV = "/opt/snhoo-dask/venv"
BASE = "/srv/snhoo"
HOSTS = ("storage1", "worker1", "worker2")
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
    for _ in range(60):
        if sh(["docker", "info"], check=False).returncode == 0:
            return None
        time.sleep(1)
    return "dockerd could not be started"


class Lab:
    def __init__(self, work: str, image: str):
        self.work = work
        self.image = image
        self.tag = f"snhoo-test-{os.getpid()}"
        self.srv = os.path.join(work, "srv")
        self.loops: list[str] = []
        self.containers: list[str] = []
        self.ports = {k: free_port() for k in ("scheduler", "dashboard", "web")}
        self.inventory = os.path.join(work, "inventory.ini")
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
                os.makedirs(os.path.dirname(path), exist_ok=True)
                sh(
                    [
                        "ffmpeg",
                        "-v",
                        "error",
                        "-y",
                        "-f",
                        "lavfi",
                        "-i",
                        "testsrc=size=96x64:rate=10",
                        "-t",
                        str(seconds),
                        "-pix_fmt",
                        "yuv420p",
                        "file:" + path,
                    ]
                )
        finally:
            sh(["umount", mnt])
        return loop

    # -- containers --------------------------------------------------------
    def start(self, host: str, devices: list[str], propagation: str) -> None:
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
        sh(cmd + [self.image])
        self.containers.append(self.name(host))

    def wait_booted(self) -> None:
        for c in self.containers:
            for _ in range(60):
                state = sh(
                    ["docker", "exec", c, "systemctl", "is-system-running"], check=False
                ).stdout.strip()
                if state in ("running", "degraded"):
                    break
                time.sleep(1)
            else:
                raise AssertionError(f"{c} did not boot: {state}")

    def exec(self, host: str, command: str, check=True, timeout=600):
        return sh(["docker", "exec", self.name(host), "bash", "-lc", command], check=check, timeout=timeout)

    # -- ansible -----------------------------------------------------------
    def playbook(self, playbook: str, *args: str, check=True):
        env = dict(
            os.environ,
            ANSIBLE_CONFIG=os.path.join(ANSIBLE_DIR, "ansible.cfg"),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_FORCE_COLOR="0",
            # Each task's duration in the log: where the time goes.
            ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks",
        )
        proc = sh(
            ["ansible-playbook", "-i", self.inventory, playbook, *args],
            check=False,
            cwd=ANSIBLE_DIR,
            env=env,
            timeout=900,
        )
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
            sh(["losetup", "-d", loop], check=False)


def recap(stdout: str) -> dict[str, dict[str, int]]:
    out = {}
    for m in re.finditer(r"^(\S+)\s+:\s+(.*)$", stdout, re.M):
        fields = dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2)))
        if "changed" in fields:
            out[m.group(1)] = fields
    return out


@pytest.fixture(scope="module")
def lab():
    why = docker_ready()
    if why:
        pytest.skip(f"container cluster test needs Docker: {why}")
    # The script prints the image's name (a digest of its content) last.
    image = sh(["bash", os.path.join(HERE, "build_image.sh")], timeout=900).stdout.split()[-1]
    work = tempfile.mkdtemp(prefix="snhoo-lab-")
    lab = Lab(work, image)
    try:
        os.makedirs(os.path.join(lab.srv, "disks"))
        # The code the lab gets: this checkout as it is now.  Other work in
        # the checkout while the test runs must not change the wheel between
        # the two converges (that would rightly count as a change).
        src = os.path.join(work, "src")
        shutil.copytree(
            REPO,
            src,
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
        lab.start("storage1", [ext4, ntfs], "rshared")
        # rslave: a worker sees storage1's mounts but cannot unmount them.
        lab.start("worker1", [], "rslave")
        lab.start("worker2", [], "rslave")
        lab.wait_booted()
        disks = [
            {"name": "ext4disk", "uuid": ext4_uuid, "fstype": "ext4"},
            {"name": "ntfsdisk", "label": "SNHOONTFS", "fstype": "ntfs"},
        ]
        with open(lab.inventory, "w", encoding="utf-8") as fh:
            fh.write(f"""# Generated by tests/ansible/test_cluster.py
[storage]
storage1 ansible_host={lab.name("storage1")}

[scheduler]
storage1

[workers]
worker1 ansible_host={lab.name("worker1")} snhoo_dask_worker_nworkers=1 snhoo_dask_worker_nthreads=1 snhoo_dask_worker_memory_limit=1GiB
worker2 ansible_host={lab.name("worker2")} snhoo_dask_worker_nworkers=2 snhoo_dask_worker_nthreads=1 snhoo_dask_worker_memory_limit=1GiB

[all:vars]
ansible_connection=community.docker.docker
ansible_python_interpreter=/usr/bin/python3
snhoo_disks_list={json.dumps(disks)}
# The only place this is ever set: this kernel has no NFS.
snhoo_nfs_simulate=true
snhoo_common_wheelhouse={os.path.join(CACHE, "wheelhouse")}
snhoo_common_source_dir={src}
snhoo_tls_enabled=true
snhoo_tls_local_dir={os.path.join(work, "tls")}
snhoo_dask_scheduler_host=127.0.0.1
snhoo_dask_scheduler_listen_host=127.0.0.1
snhoo_dask_scheduler_port={lab.ports["scheduler"]}
snhoo_dask_scheduler_dashboard_host=127.0.0.1
snhoo_dask_scheduler_dashboard_port={lab.ports["dashboard"]}
snhoo_dask_worker_listen_host=127.0.0.1
snhoo_web_host=127.0.0.1
snhoo_web_port={lab.ports["web"]}
""")
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


def test_exports_rendered_per_host_root_squash_disks_read_only(lab):
    exports = lab.exec("storage1", "cat /etc/exports.d/snhoo-dask.exports").stdout
    lines = [ln for ln in exports.splitlines() if ln and not ln.startswith("#")]
    assert len(lines) == 3, exports
    for line in lines:
        path, *clients = line.split()
        assert [c.split("(")[0] for c in clients] == ["worker1", "worker2"], line
        for c in clients:
            opts = c.split("(")[1].rstrip(")").split(",")
            assert "root_squash" in opts
            assert ("ro" in opts) == path.startswith(f"{BASE}/disks/"), line
            assert ("rw" in opts) == (path == f"{BASE}/output"), line
    assert "*" not in exports and "/24" not in exports and "/16" not in exports


def test_clients_fstab_rendered(lab):
    for w in ("worker1", "worker2"):
        fstab = lab.exec(w, "cat /etc/fstab").stdout
        for path, mode in (
            (f"{BASE}/disks/ext4disk", "ro"),
            (f"{BASE}/disks/ntfsdisk", "ro"),
            (f"{BASE}/output", "rw"),
        ):
            assert re.search(rf"^storage1:{path}\s+{path}\s+nfs\s+{mode},\S*nofail", fstab, re.M), fstab


def test_services_running_as_snhoo_with_restart_always(lab):
    lab.exec("storage1", "systemctl is-active snhoo-dask-scheduler && systemctl is-enabled snhoo-dask-web")
    for w in ("worker1", "worker2"):
        lab.exec(w, "systemctl is-active snhoo-dask-worker")
        unit = lab.exec(w, "systemctl cat snhoo-dask-worker").stdout
        assert "Environment=SNHOO_SCRATCH=/var/lib/snhoo-dask/scratch" in unit
        assert "Restart=always" in unit and "User=snhoo" in unit
    web = lab.exec("storage1", "systemctl cat snhoo-dask-web").stdout
    for folder in ("ext4disk", "ntfsdisk"):
        assert f"--allow {BASE}/disks/{folder}" in web
    assert f"--out-base {BASE}/output" in web and "--scheduler tls://127.0.0.1:" in web


def _scheduler(lab) -> str:
    return f"tls://127.0.0.1:{lab.ports['scheduler']}"


def test_tls_required(lab):
    """Both workers (3 processes) joined over TLS; plain TCP is refused."""
    code = (
        "import sys; from distributed import Client\n"
        f"c = Client('{_scheduler(lab)}', timeout=30)\n"
        "print(len(c.scheduler_info()['workers']))\n"
    )
    for _ in range(30):
        n = lab.exec("storage1", f"{VENV}/bin/python -c {shlex.quote(code)}", check=False).stdout.strip()
        if n == "3":
            break
        time.sleep(2)
    assert n == "3"
    plain = f"from distributed import Client; Client('tcp://127.0.0.1:{lab.ports['scheduler']}', timeout=5)"
    assert lab.exec("storage1", f"{VENV}/bin/python -c {shlex.quote(plain)}", check=False).returncode != 0


def test_dashboard_answers(lab):
    lab.exec(
        "storage1",
        f'{VENV}/bin/python -c "import urllib.request as u; '
        f"u.urlopen('http://127.0.0.1:{lab.ports['dashboard']}/status', timeout=10)\"",
    )


def _frames_dir(out: str, disk: str, rel: str) -> str:
    """OUT/<root folder name>/<path under the root> for a video of VIDEOS."""
    for d, root in JOB_ROOTS:
        if d == disk and rel.startswith(root + "/"):
            return f"{out}/{root}/{rel[len(root) + 1 :]}"
    raise AssertionError((disk, rel))


def test_run_extracts_frames_on_the_cluster(lab):
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
    # Workers wrote through the shared output folder as the snhoo user.
    owner = lab.exec(
        "worker1", f"stat -c %U {shlex.quote(_frames_dir(out, *VIDEOS[0][:2]) + '/frames.csv')}"
    ).stdout.strip()
    assert owner == "snhoo"


def test_web_front_end_answers(lab):
    if lab.exec("storage1", f"{VENV}/bin/snhoo-dask serve --help", check=False).returncode != 0:
        pytest.skip("`snhoo-dask serve` does not exist yet in this build: only the unit is checked")
    url = f"http://127.0.0.1:{lab.ports['web']}/"
    code = f"import urllib.request as u; print(u.urlopen({url!r}, timeout=5).status)"
    for _ in range(30):
        if (
            lab.exec("storage1", f"{VENV}/bin/python -c {shlex.quote(code)}", check=False).stdout.strip()
            == "200"
        ):
            return
        time.sleep(2)
    raise AssertionError(
        lab.exec("storage1", "journalctl -u snhoo-dask-web -n 40 --no-pager", check=False).stdout
    )


def test_detach_disk_refuses_while_busy_then_detaches(lab):
    holder = f"cd {BASE}/disks/ntfsdisk && exec sleep 600"
    sh(["docker", "exec", "-d", lab.name("storage1"), "bash", "-c", holder])
    time.sleep(1)
    busy = lab.playbook("detach-disk.yml", "-e", "disk=ntfsdisk", check=False)
    assert busy.returncode != 0
    assert "still in use on storage1" in busy.stdout and "sleep" in busy.stdout, busy.stdout[-4000:]
    lab.exec("storage1", "pkill -x sleep")
    time.sleep(1)
    lab.playbook("detach-disk.yml", "-e", "disk=ntfsdisk")
    assert lab.exec("storage1", f"mountpoint -q {BASE}/disks/ntfsdisk", check=False).returncode != 0
    assert "ntfsdisk" not in lab.exec("storage1", "cat /etc/fstab").stdout
    assert "ntfsdisk" not in lab.exec("storage1", "cat /etc/exports.d/snhoo-dask.exports").stdout
    assert "ntfsdisk" not in lab.exec("storage1", "systemctl cat snhoo-dask-web").stdout
    for w in ("worker1", "worker2"):
        assert "ntfsdisk" not in lab.exec(w, "cat /etc/fstab").stdout
    # The other disk is untouched.
    lab.exec("storage1", f"mountpoint -q {BASE}/disks/ext4disk")

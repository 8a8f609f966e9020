"""Test helpers: real Dask scheduler/worker processes, ports, the snhoo-dask CLI, and readers
for what a run leaves in OUT (manifest, frames.csv, images).

A plain module rather than conftest.py, so tests import it by one unambiguous name, and
the one place test modules share code (they never import each other)."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass

from videos import make_video

# Chromium as the tests drive it: headless, and never calling home while a test watches
# what the page requests.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout} s")


@dataclass
class DaskProcesses:
    address: str
    scheduler: subprocess.Popen
    workers: list[subprocess.Popen]
    log_dir: str

    def stop(self, timeout: float = 10) -> None:
        for p in self.workers + [self.scheduler]:
            if p.poll() is None:
                p.terminate()
        for p in self.workers + [self.scheduler]:
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def start_dask(
    tmp_path,
    n_workers: int = 2,
    worker_env: dict | None = None,
    hosts: list[str] | None = None,
    nthreads: int = 1,
    scheduler_args: tuple[str, ...] = ("--dashboard-address", ":0"),
) -> DaskProcesses:
    """A real ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1; ``hosts``: the
    address each worker binds to instead (other 127.x addresses stand for other machines,
    one worker each)."""
    hosts = hosts or ["127.0.0.1"] * n_workers
    n_workers = len(hosts)
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    log_dir = os.path.join(tmp_path, "dask-logs")
    os.makedirs(log_dir, exist_ok=True)
    sched = subprocess.Popen(
        ["dask", "scheduler", "--host", "127.0.0.1", "--port", str(port), *scheduler_args],
        stdout=subprocess.DEVNULL,
        stderr=open(os.path.join(log_dir, "scheduler.log"), "wb"),
    )
    wait_for_port(port)
    env = dict(os.environ, **(worker_env or {}))
    workers = []
    for i in range(n_workers):
        workers.append(
            subprocess.Popen(
                [
                    "dask",
                    "worker",
                    address,
                    "--nworkers",
                    "1",
                    "--nthreads",
                    str(nthreads),
                    "--name",
                    f"w{i}",
                    "--host",
                    hosts[i],
                    "--no-dashboard",
                    "--local-directory",
                    os.path.join(tmp_path, f"w{i}"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=open(os.path.join(log_dir, f"worker{i}.log"), "wb"),
                env=env,
            )
        )
    procs = DaskProcesses(address, sched, workers, log_dir)
    from distributed import Client

    with Client(address, timeout=30) as c:
        c.wait_for_workers(n_workers, timeout=60)
    return procs


def run_cli(*args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """Run the installed ``snhoo-dask`` command as a user would."""
    return subprocess.run(["snhoo-dask", *args], capture_output=True, text=True, timeout=timeout, **kwargs)


def run_on(cluster: DaskProcesses, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``snhoo-dask run ARGS`` on a running cluster (``dask_cluster``, ``shared_cluster``), quiet."""
    return run_cli("run", *args, "--scheduler", cluster.address, "-q", timeout=timeout)


def run_one(cluster: DaskProcesses, root, out, *args: str, timeout: float = 300) -> dict:
    """``snhoo-dask run ROOT --out OUT ARGS`` on a cluster, over a root of one video: it must
    succeed; that video's record."""
    res = run_on(cluster, str(root), "--out", str(out), *args, timeout=timeout)
    assert res.returncode == 0, res.stderr
    (rec,) = manifest(out)
    return rec


def cli_popen(*args: str, **kwargs) -> subprocess.Popen:
    """``snhoo-dask`` in the background, with Ctrl-C delivered as in a terminal (output piped
    as text unless ``kwargs`` say otherwise)."""
    options = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, **kwargs}
    return subprocess.Popen(
        ["snhoo-dask", *args], preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **options
    )


def wait_until(predicate, timeout: float, what: str, step: float = 0.05):
    """Poll ``predicate`` until it returns something true, and return that; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# -- what a run leaves in OUT -----------------------------------------------------------------


def waits_on_fuse(pid: int) -> bool:
    """Whether a thread of process ``pid`` is blocked in the kernel waiting for a FUSE
    daemon's answer (its wait channel, as ``ps -o wchan`` shows it)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/wchan", encoding="ascii") as f:
                channel = f.read()
        except OSError:
            continue  # the thread ended
        if "fuse" in channel or channel == "request_wait_answer":
            return True
    return False


def manifest(out) -> list[dict]:
    """OUT/manifest.jsonl as dicts, in order; [] when no run has written one."""
    path = os.path.join(out, "manifest.jsonl")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def records_by_video(out) -> dict[str, dict]:
    """OUT/manifest.jsonl as {video: record}; a video recorded again (a rerun) by its last record."""
    return {rec["video"]: rec for rec in manifest(out)}


def frames_csv(folder) -> list[dict]:
    """One video folder's frames.csv, a dict a row."""
    with open(os.path.join(folder, "frames.csv"), encoding="utf-8") as f:
        return list(csv.DictReader(f))


def image_names(folder) -> list[str]:
    """The image file names in one video folder, sorted (for their bytes, see ``tree``)."""
    return sorted(n for n in os.listdir(folder) if n.endswith((".jpg", ".png")))


def run_png(root, out, *options: str, timeout: float = 300) -> dict[str, dict]:
    """A CLI run over ``root`` writing PNGs (exact pixels) to ``out``: the records by video."""
    result = run_cli("run", str(root), "--out", str(out), "-q", "--format", "png", *options, timeout=timeout)
    assert result.returncode in (0, 1), result.stderr
    records = records_by_video(out)
    assert records, result.stderr
    return records


def written_images(out, record: dict) -> dict:
    """A video's written images by frame number, as RGB arrays."""
    import numpy as np
    from PIL import Image

    folder = os.path.join(out, record["out"])
    return {
        int(name.split(".")[0]): np.asarray(Image.open(os.path.join(folder, name)).convert("RGB"))
        for name in image_names(folder)
    }


def tree(out) -> dict[str, bytes]:
    """Every image and frames.csv under OUT by relative path, with its bytes: what two runs
    that should agree must both hold (run bookkeeping, .snhoo-* files and folders, left out)."""
    files = {}
    for folder, dirs, names in os.walk(out):
        dirs[:] = [d for d in dirs if not d.startswith(".snhoo")]
        for name in names:
            if name.endswith((".jpg", ".png", ".csv")):
                path = os.path.join(folder, name)
                with open(path, "rb") as f:
                    files[os.path.relpath(path, out)] = f.read()
    return files


def lab_disk(base, host: str, name: str, address: str, state: str = "plugged", **fields) -> str:
    """A folder standing for a disk plugged into storage host ``host`` (at ``address``):
    ``<base>/<host>/<name>`` and its state file, as the hot-plug unit writes it
    (``snhoo_dask/disks/state.py``); the mount point."""
    point = os.path.join(base, host, name)
    os.makedirs(point, exist_ok=True)
    folder = os.path.join(base, host, ".snhoo-disks")
    os.makedirs(folder, exist_ok=True)
    record = {
        "version": 1,
        "host": host,
        "address": address,
        "name": name,
        "label": name,
        "uuid": "0123abcd-0000-0000-0000-000000000000",
        "fstype": "ext4",
        "device": "/dev/loop7",
        "mountpoint": point,
        "state": state,
        "reason": None,
        "since": "2026-12-07T16:00:00Z",
        "size_bytes": None,
        **fields,
    }
    with open(os.path.join(folder, name + ".json"), "w", encoding="utf-8") as f:
        json.dump(record, f, ensure_ascii=False)
    return point


def touch(path) -> None:
    """A one-byte file at ``path`` (its folders made): enough for discovery, which reads no video."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"x")


def small_corpus(root: str) -> str:
    """Three good videos in two folders (one with a Chinese name) and one that is not a video."""
    make_video(os.path.join(root, "cam1", "a.mp4"), seconds=1)
    make_video(os.path.join(root, "cam1", "b.mp4"), seconds=2)
    make_video(os.path.join(root, "cam2", "测试.mp4"), seconds=1)
    with open(os.path.join(root, "cam2", "bad.mp4"), "wb") as f:
        f.write(b"this is not a video " * 50)
    return root


@dataclass
class Serve:
    """A running ``snhoo-dask serve``; ``call`` sends its token like an API client."""

    url: str
    port: int
    proc: subprocess.Popen
    log: str
    token: str

    def stop(self, sig: int = 15, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def call(self, path: str, method: str = "GET", body=None, **kw) -> tuple[int, dict]:
        kw.setdefault("token", self.token)
        return call(self.url + path, method, body, **kw)

    def wait_job(self, job_id: str, timeout: float = 90) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _, job = self.call(f"/api/jobs/{job_id}")
            if not job["running"] and job["state"] != "running":
                return job
            time.sleep(0.3)
        raise AssertionError(f"job {job_id} still running after {timeout} s")

    def job_ids(self) -> list[str]:
        """The ids of the jobs the service lists."""
        return [j["id"] for j in self.call("/api/jobs")[1]["jobs"]]

    def login_url(self) -> str:
        return f"{self.url}/?token={self.token}"

    def log_text(self) -> str:
        with open(self.log, encoding="utf-8", errors="replace") as f:
            return f.read()


def start_embedded_serve(
    tmp: str,
    allow: list[str],
    out_base: list[str],
    extra: list[str] | None = None,
    env: dict | None = None,
    preexec_fn=None,
) -> Serve:
    """``snhoo-dask serve`` on its own one-worker cluster, its state in TMP/state."""
    options = ["--workers", "1", "--dashboard-address", "127.0.0.1:0", *(extra or [])]
    return start_serve(
        tmp, None, allow, out_base, os.path.join(tmp, "state"), extra=options, env=env, preexec_fn=preexec_fn
    )


def start_serve(
    tmp: str,
    scheduler: str | None,
    allow: list[str],
    out_base: list[str],
    state: str,
    name: str = "serve",
    extra: list[str] | None = None,
    env: dict | None = None,
    preexec_fn=None,
) -> Serve:
    """The installed command, with the options the Ansible role uses; the token is the one
    the service makes and keeps in STATE/token (``extra`` may pass ``--token`` instead)."""
    port = free_port()
    args = ["snhoo-dask", "serve", "--host", "127.0.0.1", "--port", str(port), "--state-dir", state]
    if scheduler:
        args += ["--scheduler", scheduler]
    for a in allow:
        args += ["--allow", a]
    for o in out_base:
        args += ["--out-base", o]
    args += extra or []
    log = os.path.join(tmp, f"{name}.log")
    proc = subprocess.Popen(
        args,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "ab"),
        env=dict(os.environ, **(env or {})),
        preexec_fn=preexec_fn,
    )
    try:
        wait_for_port(port, timeout=90)
    except TimeoutError:
        proc.kill()
        raise AssertionError(open(log).read()) from None
    token = (env or {}).get("SNHOO_TOKEN")
    if "--token" in (extra or []):
        token = extra[extra.index("--token") + 1]
    if token is None:
        with open(os.path.join(state, "token")) as f:
            token = f.read().strip()
    return Serve(f"http://127.0.0.1:{port}", port, proc, log, token)


def call(
    url: str,
    method: str = "GET",
    body=None,
    ctype: str | None = "application/json",
    raw: bytes | None = None,
    token: str | None = None,
    headers: dict | None = None,
) -> tuple[int, dict]:
    """One HTTP request; the JSON answer (or ``{"text": ...}`` for a non-JSON one)."""
    import json
    import urllib.error
    import urllib.request

    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method)
    if ctype and data is not None:
        req.add_header("Content-Type", ctype)
    if token:
        req.add_header("Authorization", f"token {token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)

    def parse(text: bytes) -> dict:
        try:
            return json.loads(text)
        except ValueError:
            return {"text": text.decode("utf-8", "replace")}

    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, parse(r.read())
    except urllib.error.HTTPError as e:
        return e.code, parse(e.read())


# -- a full disk -------------------------------------------------------------------------------


def mount_small_fs(path, size: str = "1m"):
    """Mount a tmpfs of ``size`` at ``path`` (made if needed); returns a function that
    unmounts it, or None when mounting is not possible here (not root, no mount)."""
    os.makedirs(path, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=755", "tmpfs", os.fspath(path)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return None
    return lambda: subprocess.run(["umount", "-l", os.fspath(path)], check=False)


def small_fs_fixture(path, size: str):
    """Body of a ``small_fs`` fixture: a tmpfs of ``size`` at ``path`` for one test, skipped
    where it cannot be mounted, unmounted at the end whatever the test did."""
    import pytest

    unmount = mount_small_fs(path, size)
    if unmount is None:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield path
    finally:
        unmount()


def fill_disk(folder) -> None:
    """Write a file into ``folder`` until its filesystem has no byte left."""
    with open(os.path.join(folder, "filler"), "wb", buffering=0) as f:
        block = b"\0" * 65536
        while True:
            try:
                f.write(block)
            except OSError:
                break
        while True:  # the last few bytes, one at a time
            try:
                if not f.write(b"\0"):
                    break
            except OSError:
                break


# -- a real case-insensitive disk ----------------------------------------------------------------


@dataclass
class FuseDisk:
    """An NTFS image mounted by ``lowntfs-3g`` in the foreground (``proc``: the FUSE daemon
    this test started, so it can be killed by its pid to make the disk go away)."""

    path: str
    proc: subprocess.Popen

    def unmount(self) -> None:
        # Not only if os.path.ismount: a mount whose daemon was killed fails every stat.
        done = subprocess.run(["fusermount", "-u", self.path], capture_output=True)
        if done.returncode != 0:
            subprocess.run(["umount", "-l", self.path], capture_output=True)
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def mount_ntfs(where, options: str = "ignore_case", size_mb: int = 64) -> FuseDisk:
    """A fresh NTFS volume (``mkntfs`` on an image file) mounted at WHERE/ntfs with
    ``lowntfs-3g -o OPTIONS`` (default ``ignore_case``: names differing only in case are
    one name, as on Windows, exFAT or a default macOS volume).  The caller unmounts it."""
    import shutil

    import pytest

    if not (shutil.which("mkntfs") and shutil.which("lowntfs-3g") and os.path.exists("/dev/fuse")):
        pytest.skip("needs mkntfs, lowntfs-3g and /dev/fuse")
    image, mnt = os.path.join(where, "ntfs.img"), os.path.join(where, "ntfs")
    os.makedirs(mnt, exist_ok=True)
    with open(image, "wb") as f:
        f.truncate(size_mb << 20)
    subprocess.run(["mkntfs", "-F", "-Q", "-q", image], check=True, capture_output=True)
    proc = subprocess.Popen(
        ["lowntfs-3g", "-o", f"{options},no_detach", image, mnt],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    disk = FuseDisk(mnt, proc)
    try:
        wait_until(lambda: os.path.ismount(mnt) or proc.poll() is not None, 20, "the NTFS mount")
    except AssertionError:
        disk.unmount()
        raise
    if proc.poll() is not None:
        pytest.skip(f"lowntfs-3g could not mount (exit {proc.returncode})")
    return disk

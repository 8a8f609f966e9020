"""Faults and bad input, on real Dask processes, real ffmpeg and real filesystems.

Each test injects one fault into a real run (a SIGKILLed worker, a Ctrl-C, a full disk,
file modes enforced for an unprivileged user, a dead scheduler, a second run on the same
output, hostile file names, an ffmpeg that blocks) and checks what matters to a user:
the exit status, one true manifest record per video, and that every folder that looks
finished really holds every frame.  docs/reliability.md lists the same scenarios.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator

import pytest
from helpers import (
    DaskProcesses,
    cli_popen,
    frames_csv,
    free_port,
    image_names,
    manifest,
    records_by_video,
    run_cli,
    run_on,
    run_one,
    small_fs_fixture,
    start_dask,
    tree,
    wait_for_port,
    wait_until,
)
from PIL import Image
from videos import ffmpeg, frame_number, make_video

# Every test here runs the installed CLI end to end on real Dask processes.
pytestmark = [pytest.mark.cluster, pytest.mark.slow]

DONE = ".snhoo-done.json"
TMP = ".snhoo-tmp"


# -- helpers ------------------------------------------------------------------------------


def runs(out) -> dict[str, list[dict]]:
    by_run: dict[str, list[dict]] = {}
    for rec in manifest(out):
        by_run.setdefault(rec["run"], []).append(rec)
    return by_run


def published(out) -> list[str]:
    """Every folder (relative to OUT) that holds a completion file."""
    found = []
    for folder, dirs, files in os.walk(out):
        if TMP in dirs:
            dirs.remove(TMP)
        if DONE in files:
            found.append(os.path.relpath(folder, out))
    return sorted(found)


def assert_complete(folder, expected_frames: list[int] | None = None, check_pictures: bool = True) -> None:
    """A published folder holds exactly the images frames.csv lists, each whole and right."""
    rows = frames_csv(folder)
    assert image_names(folder) == sorted(r["file"] for r in rows)
    done = json.load(open(os.path.join(folder, DONE), encoding="utf-8"))
    assert done["record"]["frames"] == len(rows)
    if expected_frames is not None:
        assert [int(r["frame"]) for r in rows] == expected_frames
    for r in rows:
        with Image.open(os.path.join(folder, r["file"])) as im:
            im.load()  # raises on a truncated file
        if check_pictures and int(r["frame"]) < 110:
            assert frame_number(os.path.join(folder, r["file"])) == int(r["frame"])


def assert_no_leftovers(out) -> None:
    assert not os.path.exists(os.path.join(out, TMP)), os.listdir(os.path.join(out, TMP))


def no_traceback(result_or_text) -> None:
    text = getattr(result_or_text, "stderr", result_or_text) or ""
    assert "Traceback" not in text, text


def finish(proc: subprocess.Popen, timeout: float) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"snhoo-dask did not end within {timeout} s; stderr:\n{err}") from None
    return proc.returncode, out, err


def tasks_running(address: str) -> int:
    """Tasks running on the cluster's workers, counting those a departed client cancelled."""
    from distributed import Client

    with Client(address, timeout=10) as c:
        return sum(c.run(lambda dask_worker: len(dask_worker.state.all_running_tasks)).values())


def kill_tree_leftovers(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def run_on_own(procs, *args: str) -> Iterator[subprocess.Popen]:
    """``run ARGS`` on PROCS, a cluster the test started; the run (if still going) and the
    cluster are stopped after."""
    try:
        proc = cli_popen("run", *args, "--scheduler", procs.address, "-q")
        try:
            yield proc
        finally:
            kill_tree_leftovers(proc)
    finally:
        procs.stop()


def _proc_table() -> dict[int, tuple[int, list[str]]]:
    """pid -> (parent pid, argv) for every process we can see."""
    table = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                stat = f.read()
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        table[int(d)] = (ppid, argv)
    return table


def _descends_from(pid: int, ancestors: set[int], table) -> bool:
    while pid > 1 and pid in table:
        if pid in ancestors:
            return True
        pid = table[pid][0]
    return False


def _reads_from(pid: int, marker: str) -> bool:
    """Whether process ``pid`` has a file open whose path holds ``marker`` (ffmpeg is handed
    its input by descriptor, so its arguments name no file)."""
    try:
        return any(marker in os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def ffmpeg_workers(marker: str, worker_pids: set[int]) -> list[int]:
    """Pids of our worker processes that are running an ffmpeg reading a file under ``marker``."""
    table = _proc_table()
    found = []
    for pid, (ppid, argv) in table.items():
        if argv and os.path.basename(argv[0]) == "ffmpeg" and _reads_from(pid, marker):
            if ppid not in worker_pids and _descends_from(ppid, worker_pids, table):
                found.append(ppid)
    return found


def make_set(root, n: int, seconds: float = 4, size: str = "64x48") -> list[str]:
    """n distinct-named copies of one frame-numbered video, in two subfolders."""
    base = make_video(os.path.join(root, "a", "v00.mp4"), seconds=seconds, size=size)
    names = ["a/v00.mp4"]
    for i in range(1, n):
        rel = f"{'ab'[i % 2]}/v{i:02d}.mp4"
        os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
        shutil.copyfile(base, os.path.join(root, rel))
        names.append(rel)
    return sorted(names)


def stalling_playlist(folder, segs, name: str = "stuck.mp4") -> tuple[str, str, bytes]:
    """A real video file on which real ffmpeg blocks, as on a dead network share.

    It is an HLS playlist (ffmpeg detects the format from the content, not the ".mp4"
    name) of two 2 s MPEG-TS segments with absolute paths.  The first is an ordinary
    file; the second is a named pipe with no writer, so ffmpeg decodes 2 s of frames and
    then blocks in open() for ever.  ffprobe only reads the first segment, so the probe
    succeeds and the stall happens in the frame-decoding ffmpeg.  Writing the saved
    segment bytes into the pipe lets ffmpeg finish normally.
    The segments live in ``segs``, outside the root (".ts" is a video extension too).
    Returns (playlist path, pipe path, the second segment's bytes).
    """
    folder, segs = os.fspath(folder), os.fspath(segs)
    os.makedirs(folder, exist_ok=True)
    os.makedirs(segs, exist_ok=True)
    src = make_video(os.path.join(segs, "src.mp4"), seconds=4, fps=25, gop=25)
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-i",
            "file:" + src,
            "-c",
            "copy",
            "-f",
            "segment",
            "-segment_time",
            "2",
            "-segment_format",
            "mpegts",
            "-reset_timestamps",
            "0",
            os.path.join(segs, "seg%d.ts"),
        ],
        check=True,
    )
    seg0, seg1 = os.path.join(segs, "seg0.ts"), os.path.join(segs, "seg1.ts")
    data = open(seg1, "rb").read()
    os.unlink(seg1)
    os.mkfifo(seg1)
    playlist = os.path.join(folder, name)
    with open(playlist, "w") as f:
        f.write(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"
            f"#EXTINF:2.0,\n{seg0}\n#EXTINF:2.0,\n{seg1}\n#EXT-X-ENDLIST\n"
        )
    return playlist, seg1, data


# -- 1. a worker is SIGKILLed while extracting -----------------------------------------------


@pytest.mark.timeout(180)
def test_worker_killed_mid_job_loses_nothing(tmp_path):
    root, out = tmp_path / "cam", tmp_path / "out"
    scratch = str(tmp_path / "scratch")
    names = make_set(root, 4, seconds=4, size="640x480")
    procs = start_dask(str(tmp_path), 2, worker_env={"SNHOO_SCRATCH": scratch})
    # --stage: the worker's ffmpeg then reads from its scratch folder, which tells it apart.
    with run_on_own(procs, str(root), "--out", str(out), "--stage") as proc:
        nanny_pids = {w.pid for w in procs.workers}
        # Kill the worker process (not the nanny) that is running ffmpeg on one of our videos.
        victims = wait_until(
            lambda: ffmpeg_workers(scratch, nanny_pids), 90, "a worker running ffmpeg", step=0.01
        )
        os.kill(victims[0], signal.SIGKILL)
        rc, _, err = finish(proc, 150)
    no_traceback(err)
    assert rc == 0, err
    records = manifest(out)
    assert sorted(r["video"] for r in records) == names  # exactly one record per video
    assert all(r["status"] == "ok" and r["frames"] == 100 for r in records), records
    assert published(out) == [f"cam/{n}" for n in names]
    for n in names:
        assert_complete(out / "cam" / n, list(range(100)), check_pictures=(n == names[0]))
    assert_no_leftovers(out)
    assert set(os.listdir(out)) <= {".snhoo.lock", ".snhoo-run", "cam", "manifest.jsonl", "report.html"}


# -- 2. the client is interrupted --------------------------------------------------------


@pytest.mark.timeout(240)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_client_stops_cleanly_and_rerun_finishes_the_rest(shared_cluster, tmp_path, sig):
    root, out, clean = tmp_path / "cam", tmp_path / "out", tmp_path / "clean"
    names = make_set(root, 8, seconds=4, size="320x240")
    proc = cli_popen("run", str(root), "--out", str(out), "--scheduler", shared_cluster.address, "-q")
    try:
        wait_until(lambda: len(manifest(out)) >= 1, 120, "the first finished video")
        proc.send_signal(sig)
        rc, _, err = finish(proc, 60)
    finally:
        kill_tree_leftovers(proc)
    no_traceback(err)
    assert rc == 130, err
    first = manifest(out)
    assert f"interrupted: {len(first)} of {len(names)} videos finished" in err
    assert "rerun the same command" in err
    # Tasks already running when the client stopped run to their end on the workers (Dask
    # cannot stop a task's thread) and may still publish; whatever they publish is complete.
    wait_until(lambda: tasks_running(shared_cluster.address) == 0, 60, "the interrupted run's tasks to end")
    for rel in published(out):
        assert_complete(out / rel, list(range(100)), check_pictures=False)

    before = set(published(out))
    again = run_on(shared_cluster, str(root), "--out", str(out))
    assert again.returncode == 0, again.stderr
    (rerun,) = [recs for run, recs in runs(out).items() if run != first[0]["run"]]
    assert sorted(r["video"] for r in rerun) == names
    skipped = {f"cam/{r['video']}" for r in rerun if r["status"] == "skipped"}
    assert {f"cam/{r['video']}" for r in first if r["status"] == "ok"} <= skipped
    assert skipped <= before  # only what was finished before the rerun is skipped...
    assert all(r["status"] in ("ok", "skipped") for r in rerun)
    assert sum(r["status"] == "ok" for r in rerun) == len(names) - len(skipped)  # ...the rest is done
    assert_no_leftovers(out)

    reference = run_on(shared_cluster, str(root), "--out", str(clean))
    assert reference.returncode == 0, reference.stderr
    assert tree(out) == tree(clean)


# -- 3. the output disk fills up ----------------------------------------------------------


def noise_video(path, seconds: float = 2, size: str = "320x240") -> str:
    """Incompressible pictures: every PNG frame is about as large as the raw frame."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    source = f"testsrc2=s={size}:r=10"
    ffmpeg("-f", "lavfi", "-i", source, "-t", str(seconds), "-vf", "noise=alls=100:allf=t",
           "-c:v", "libx264", "-qp", "0", "file:" + os.fspath(path))  # fmt: skip
    return os.fspath(path)


@pytest.fixture
def small_fs(tmp_path):
    """A 3 MiB filesystem (tmpfs with a size limit) mounted for the test only."""
    yield from small_fs_fixture(tmp_path / "small", "3m")


@pytest.mark.timeout(180)
def test_full_output_disk_fails_the_video_with_a_reason(shared_cluster, tmp_path, small_fs):
    root = tmp_path / "cam"
    make_video(root / "small.mp4", seconds=1)  # about 25 KB of JPEGs: fits
    noise_video(root / "big1.mp4")  # about 4.6 MB of PNGs each: cannot fit
    noise_video(root / "big2.mp4")
    out = small_fs / "out"
    result = run_on(shared_cluster, str(root), "--out", str(out), "--format", "png", timeout=150)
    no_traceback(result)
    assert result.returncode == 1, result.stderr
    by_video = records_by_video(out)
    assert sorted(by_video) == ["big1.mp4", "big2.mp4", "small.mp4"]
    for name in ("big1.mp4", "big2.mp4"):
        assert by_video[name]["status"] == "failed"
        assert "no space left" in by_video[name]["error"].lower()
        assert by_video[name]["frames"] == 0
        assert not os.path.exists(out / "cam" / name)
        # The write error stops ffmpeg at once (it waited 30 s on a pipe nobody read).
        assert by_video[name]["seconds"] < 10, by_video[name]
    assert "no space left" in result.stderr.lower()  # in the failure table
    assert not os.path.exists(out / "report.html.tmp")  # a report that did not fit leaves nothing
    # Nothing truncated looks done: every published folder is whole, temporary ones are gone.
    for rel in published(out):
        assert_complete(out / rel)
    assert published(out) in ([], ["cam/small.mp4"])
    assert by_video["small.mp4"]["status"] == ("ok" if published(out) else "failed")
    assert_no_leftovers(out)


# -- 4. file modes, for an unprivileged user ---------------------------------------------

UNPRIVILEGED = 65534  # nobody / nogroup

AS_NOBODY = r"""
set -e
# Runs in a private mount namespace (unshare -m), so nothing here is visible outside it.
# The interpreter lives under /root (mode 700): show its tree through a 755 tmpfs on /root.
hold=$(mktemp -d)
mount --bind "$PYENV_TREE" "$hold"
mount -t tmpfs -o mode=755,size=1m tmpfs /root
mkdir -p "$PYENV_TREE"
mount --move "$hold" "$PYENV_TREE"
rmdir "$hold"
exec setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
"""


def _python_tree() -> str | None:
    """The top folder holding the interpreter, if it is hidden from other users."""
    exe = os.path.realpath(sys.executable)
    if not exe.startswith("/root/"):
        return None
    return "/root/" + exe.split("/")[2]


@pytest.fixture
def nobody(tmp_path):
    """Run commands as uid/gid 65534 (root ignores file modes, so the test must not be root)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    for tool in ("unshare", "setpriv"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed")
    home = tempfile.mkdtemp(prefix="snhoo-nobody-")
    os.chmod(home, 0o755)
    script = os.path.join(home, "as-nobody.sh")
    with open(script, "w") as f:
        f.write(AS_NOBODY)
    env = dict(
        os.environ,
        HOME=os.path.join(home, "home"),
        PYENV_TREE=_python_tree() or "/nonexistent",
        SNHOO_SCRATCH=os.path.join(home, "scratch"),
        DASK_TEMPORARY_DIRECTORY=os.path.join(home, "dask"),
    )
    for d in ("home", "scratch", "dask", "work"):
        os.makedirs(os.path.join(home, d))
        os.chown(os.path.join(home, d), UNPRIVILEGED, UNPRIVILEGED)

    def wrap(argv: list[str]) -> list[str]:
        if _python_tree():
            return ["unshare", "-m", "--propagation", "private", "sh", script, *argv]
        return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv]

    class Nobody:
        base = home
        environ = env

        @staticmethod
        def popen(argv, **kw):
            return subprocess.Popen(wrap(argv), env=env, **kw)

        @staticmethod
        def run(argv, timeout=120):
            return subprocess.run(wrap(argv), env=env, capture_output=True, text=True, timeout=timeout)

    try:
        probe = Nobody.run([sys.executable, "-c", "import os, snhoo_dask; print(os.geteuid())"])
        if probe.returncode != 0 or probe.stdout.strip() != str(UNPRIVILEGED):
            pytest.skip(f"cannot run Python as an unprivileged user here: {probe.stderr.strip()[-300:]}")
        yield Nobody
    finally:
        subprocess.run(["chmod", "-R", "u+rwX", home], check=False)
        shutil.rmtree(home, ignore_errors=True)


def permission_layout(base: str) -> tuple[str, str, str, str, str, str]:
    """Under BASE (root's), what each permission case needs: (cam with an unreadable video,
    vault with an unreadable folder, an unreadable root, nobody's output folder, root's
    output folder, an output folder whose cam/ nobody may not write)."""
    cam = os.path.join(base, "cam")
    make_video(os.path.join(cam, "good.mp4"), seconds=1)
    shutil.copyfile(os.path.join(cam, "good.mp4"), os.path.join(cam, "locked.mp4"))
    os.chmod(os.path.join(cam, "locked.mp4"), 0)  # unreadable video
    shutil.copyfile(os.path.join(cam, "good.mp4"), os.path.join(base, "hidden.mp4"))
    vault = os.path.join(base, "vault")
    make_video(os.path.join(vault, "good.mp4"), seconds=1)
    os.makedirs(os.path.join(vault, "private"))
    shutil.copyfile(os.path.join(cam, "good.mp4"), os.path.join(vault, "private", "secret.mp4"))
    os.chmod(os.path.join(vault, "private"), 0)  # unreadable folder
    closed = os.path.join(base, "closed")
    os.makedirs(closed)
    os.chmod(closed, 0o700)  # an unreadable root
    for p in (base, cam, vault):
        os.chmod(p, 0o755)
    mine = os.path.join(base, "out")  # nobody's own output folder
    os.makedirs(mine)
    os.chown(mine, UNPRIVILEGED, UNPRIVILEGED)
    theirs = os.path.join(base, "theirs")  # root's output folder
    os.makedirs(theirs)
    os.chmod(theirs, 0o755)
    half = os.path.join(base, "half")  # writable, but cam/ inside is not
    os.makedirs(os.path.join(half, "cam"))
    os.chown(half, UNPRIVILEGED, UNPRIVILEGED)
    return cam, vault, closed, mine, theirs, half


@contextlib.contextmanager
def nobody_cluster(nobody) -> Iterator[str]:
    """A scheduler and two workers run as the unprivileged user; their address."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = open(os.path.join(nobody.base, "dask.log"), "wb")
    sched = nobody.popen(
        [
            sys.executable,
            "-m",
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--dashboard-address",
            ":0",
        ],
        stdout=logs,
        stderr=logs,
    )
    procs = DaskProcesses(address, sched, [], nobody.base)
    try:
        wait_for_port(port)
        for i in range(2):
            procs.workers.append(
                nobody.popen(
                    [
                        sys.executable,
                        "-m",
                        "distributed.cli.dask_worker",
                        address,
                        "--nthreads",
                        "1",
                        "--name",
                        f"n{i}",
                        "--host",
                        "127.0.0.1",
                        "--no-dashboard",
                        "--local-directory",
                        os.path.join(nobody.base, "dask", f"n{i}"),
                    ],
                    stdout=logs,
                    stderr=logs,
                )
            )
        yield address
    finally:
        procs.stop(timeout=15)
        logs.close()


@pytest.mark.timeout(240)
def test_permissions_give_clear_reasons_never_success(nobody):
    cam, vault, closed, mine, theirs, half = permission_layout(os.path.join(nobody.base, "work"))
    with nobody_cluster(nobody) as address:

        def cli(*args):
            return nobody.run(
                [sys.executable, "-m", "snhoo_dask", "run", *args, "--scheduler", address, "-q"]
            )

        # An unreadable video: a failed record saying why, and exit 1.
        r = cli(cam, "--out", mine)
        no_traceback(r)
        assert r.returncode == 1, r.stderr
        by_video = records_by_video(mine)
        assert by_video["good.mp4"]["status"] == "ok"
        assert by_video["locked.mp4"]["status"] == "failed"
        assert "permission denied" in by_video["locked.mp4"]["error"].lower()
        assert "locked.mp4" in r.stderr and "Permission denied" in r.stderr
        assert not os.path.exists(os.path.join(mine, "cam", "locked.mp4"))

        # An unreadable folder: named with its reason, and the run is not a success.
        r = cli(vault, "--out", mine)
        no_traceback(r)
        assert r.returncode == 1, r.stderr
        assert "private" in r.stderr and "Permission denied" in r.stderr
        assert "could not be searched" in r.stderr

        # An unreadable root: a usage error in one line.
        r = cli(closed, "--out", mine)
        no_traceback(r)
        assert r.returncode == 2
        assert r.stderr.strip().splitlines()[-1].startswith("snhoo-dask: error: ")
        assert "not readable" in r.stderr

        # An output folder the user may not write: refused before any work, in one line.
        r = cli(cam, "--out", theirs)
        no_traceback(r)
        assert r.returncode == 2
        assert r.stderr.strip().splitlines() == [
            f"snhoo-dask: error: the output folder {theirs} is not writable (permission denied)"
        ]
        assert os.listdir(theirs) == []

        # Writable output, but the video's own folder inside it is not: each video fails with why.
        r = cli(cam, "--out", half)
        no_traceback(r)
        assert r.returncode == 1
        by_video = records_by_video(half)
        assert by_video["good.mp4"]["status"] == "failed"
        assert "permission denied" in by_video["good.mp4"]["error"].lower()
        assert os.listdir(os.path.join(half, "cam")) == []
        assert_no_leftovers(half)


# -- 5. the scheduler is unreachable, or dies mid-job --------------------------------------


@pytest.mark.timeout(60)
def test_unreachable_scheduler_is_a_quick_clear_error(tmp_path):
    root = tmp_path / "cam"
    make_video(root / "clip.mp4", seconds=1)
    dead = f"tcp://127.0.0.1:{free_port()}"  # a port nobody listens on
    started = time.monotonic()
    r = run_cli("run", str(root), "--out", str(tmp_path / "out"), "--scheduler", dead, timeout=45)
    assert time.monotonic() - started < 30
    no_traceback(r)
    assert r.returncode == 1
    assert f"cannot reach the Dask scheduler at {dead}" in r.stderr
    assert manifest(tmp_path / "out") == []


@pytest.mark.timeout(240)
def test_scheduler_dying_mid_job_is_reported_and_a_rerun_resumes(tmp_path):
    root, out = tmp_path / "cam", tmp_path / "out"
    names = make_set(root, 10, seconds=4, size="320x240")
    procs = start_dask(str(tmp_path / "first"), 2)
    with run_on_own(procs, str(root), "--out", str(out)) as proc:
        wait_until(lambda: len(manifest(out)) >= 1, 120, "the first finished video")
        procs.scheduler.kill()
        started = time.monotonic()
        rc, _, err = finish(proc, 90)
        gave_up_after = time.monotonic() - started
    no_traceback(err)
    assert rc == 1, err
    assert "lost the connection to the Dask scheduler" in err and "rerun to resume" in err
    assert gave_up_after < 60
    first = manifest(out)
    assert len(first) < len(names)
    assert len({r["video"] for r in first}) == len(first)

    procs = start_dask(str(tmp_path / "second"), 2)
    try:
        again = run_on(procs, str(root), "--out", str(out))
    finally:
        procs.stop()
    assert again.returncode == 0, again.stderr
    (rerun,) = [recs for run, recs in runs(out).items() if run != first[0]["run"]]
    assert sorted(r["video"] for r in rerun) == names
    assert {r["video"] for r in first if r["status"] == "ok"} <= {
        r["video"] for r in rerun if r["status"] == "skipped"
    }
    assert published(out) == [f"cam/{n}" for n in names]
    for n in names:
        assert_complete(out / "cam" / n, list(range(100)), check_pictures=False)
    assert_no_leftovers(out)


# -- 6. the same job twice at once on one output ------------------------------------------


@pytest.mark.timeout(180)
def test_second_concurrent_run_on_the_same_output_is_refused(shared_cluster, tmp_path):
    root, out = tmp_path / "cam", tmp_path / "out"
    names = make_set(root, 3, seconds=2)
    # One long video (3,000 frames, all extracted) keeps the first run busy for seconds.
    held_path = root / "z-held.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=s=320x240:r=25", "-t", "120"]
        + ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(held_path)],
        check=True,
    )
    first = cli_popen("run", str(root), "--out", str(out), "--scheduler", shared_cluster.address, "-q")
    try:

        def holder():
            try:
                return json.load(open(out / ".snhoo.lock"))["pid"]
            except (OSError, ValueError, KeyError):
                return None

        assert wait_until(holder, 60, "the first run to take the lock") == first.pid
        second = run_on(shared_cluster, str(root), "--out", str(out), timeout=60)
        assert first.poll() is None, "the first run ended before the second was refused: make it longer"
        no_traceback(second)
        assert second.returncode == 2
        assert second.stderr.strip().splitlines() == [
            f"snhoo-dask: error: the output folder is in use by another snhoo-dask run (pid {first.pid} on "
            f"{socket.gethostname()}, started {json.load(open(out / '.snhoo.lock'))['started']}); "
            "wait for it to finish or choose another --out"
        ]
        rc, _, err = finish(first, 180)
    finally:
        kill_tree_leftovers(first)
    assert rc == 0, err
    (only,) = runs(out).values()  # the refused run wrote no record
    assert sorted(r["video"] for r in only) == sorted(names + ["z-held.mp4"])
    assert all(r["status"] == "ok" for r in only)
    held = next(r for r in only if r["video"] == "z-held.mp4")
    assert held["frames"] == 3000
    assert_no_leftovers(out)


# -- 7. hostile names and files -------------------------------------------------------------

HOSTILE = [
    b"with space.mp4",
    b"quote'single\"double.mp4",
    b"percent%d%s%n.mp4",
    b"-leading-dash.mp4",
    b"new\nline.mp4",
    b"not-utf8-\xff\xfe.mp4",
    "\u6d4b\u8bd5 \u4e2d\u6587.mp4".encode(),
]


@pytest.mark.timeout(180)
def test_hostile_names_and_files_work_or_fail_with_a_reason(shared_cluster, tmp_path):
    root, out = tmp_path / "cam", tmp_path / "out"
    base = make_video(tmp_path / "base.mp4", seconds=2)
    broot = os.fsencode(root)
    os.makedirs(broot + b"/-dir with 'odd' %s\n", exist_ok=True)
    for name in HOSTILE:
        shutil.copyfile(base, broot + b"/" + name)
    shutil.copyfile(base, broot + b"/-dir with 'odd' %s\n/inner.mp4")
    outside = make_video(tmp_path / "elsewhere" / "real.mp4", seconds=2)
    os.symlink(outside, root / "link-to-outside.mp4")  # followed: it is a video
    os.symlink(tmp_path / "nowhere.mp4", root / "dangling.mp4")  # fails: says where it points
    growing = root / "growing.mp4"  # a file still being written
    shutil.copyfile(make_video(tmp_path / "long.mp4", seconds=8, size="640x480"), growing)
    stop = threading.Event()

    def append():
        with open(growing, "ab") as f:
            for _ in range(16384):  # 64 MiB at most
                if stop.is_set():
                    return
                f.write(b"\0" * 4096)
                f.flush()
                time.sleep(0.002)

    grower = threading.Thread(target=append, daemon=True)
    grower.start()
    try:
        r = run_on(shared_cluster, str(root), "--out", str(out))
    finally:
        stop.set()
        grower.join()
    no_traceback(r)
    assert r.returncode == 1, r.stderr  # the dangling link failed
    recs = {os.fsencode(rec["video"]): rec for rec in manifest(out)}
    expected = set(HOSTILE) | {
        b"-dir with 'odd' %s\n/inner.mp4",
        b"link-to-outside.mp4",
        b"dangling.mp4",
        b"growing.mp4",
    }
    assert set(recs) == expected
    for name in HOSTILE + [b"-dir with 'odd' %s\n/inner.mp4", b"link-to-outside.mp4"]:
        assert recs[name]["status"] == "ok", recs[name]
        assert recs[name]["frames"] == 50
        assert_complete(
            os.fsdecode(os.fsencode(out) + b"/cam/" + name), list(range(50)), check_pictures=False
        )
    assert recs[b"dangling.mp4"]["status"] == "failed"
    assert "broken link" in recs[b"dangling.mp4"]["error"] and "nowhere.mp4" in recs[b"dangling.mp4"]["error"]
    grew = recs[b"growing.mp4"]
    if grew["status"] == "ok":  # a consistent snapshot was copied: all its frames
        assert grew["frames"] == 200
    else:  # it grew while copied, or already between discovery and its task
        assert "changed size while being copied" in grew["error"] or grew["error"].startswith(
            "changed since discovery (size "
        ), grew
        assert "still being written?" in grew["error"], grew
    assert_no_leftovers(out)

    # A dry run lists them all (names as the bytes they are) without choking on them.
    dry = subprocess.run(
        ["snhoo-dask", "run", str(root), "--out", str(out), "--dry-run"], capture_output=True, timeout=120
    )
    assert b"Traceback" not in dry.stderr
    assert dry.returncode == 0, dry.stderr
    assert b"/cam/not-utf8-\\xff\\xfe.mp4\t-> " in dry.stdout  # escaped for the terminal
    assert b"11 videos" in dry.stderr


@pytest.mark.timeout(120)
def test_huge_frame_request_lists(shared_cluster, tmp_path):
    root, out = tmp_path / "cam", tmp_path / "out"
    make_video(root / "clip.mp4", seconds=2)
    # 100,000 frames (the limit) of a 50-frame video: the 50 that exist, the rest reported missing.
    rec = run_one(shared_cluster, root, out, "--frames", "0-99999")
    assert rec["status"] == "ok" and rec["frames"] == 50
    assert rec["missing"][0] == "frame 50 (video has 50 frames)" and rec["missing"][-1] == "and 99930 more"
    assert_complete(out / "cam" / "clip.mp4", list(range(50)))
    # A long comma list (about 110 KB of command line) works too.
    many = ",".join(str(i) for i in range(0, 100_000, 5))
    r = run_on(shared_cluster, str(root), "--out", str(tmp_path / "out2"), "--frames", many)
    assert r.returncode == 0, r.stderr
    assert_complete(tmp_path / "out2" / "cam" / "clip.mp4", list(range(0, 50, 5)))
    # Over the limit: a usage error before any work.
    for spec in ("0-100000", "0-60000,70000-120000"):
        r = run_cli("run", str(root), "--out", str(tmp_path / "out3"), "--frames", spec)
        no_traceback(r)
        assert r.returncode == 2, r.stderr
        assert r.stderr.strip().splitlines()[-1].startswith("snhoo-dask: error: --frames")
    assert manifest(tmp_path / "out3") == []


# -- 8. ffmpeg hangs ---------------------------------------------------------------------------


@pytest.mark.timeout(150)
def test_a_playlist_saved_as_a_video_is_refused_without_reading_its_segments(shared_cluster, tmp_path):
    """An HLS playlist named .mp4 whose segments lie outside the root (one a pipe that would
    block any reader): failed with the reason, up front; ffmpeg never opens a segment."""
    root, out = tmp_path / "cam", tmp_path / "out"
    make_video(root / "fine.mp4", seconds=1)
    _, pipe, _ = stalling_playlist(root, tmp_path / "segments", "stuck.mp4")
    started = time.monotonic()
    r = run_on(shared_cluster, str(root), "--out", str(out), timeout=120)
    no_traceback(r)
    assert r.returncode == 1, r.stderr
    by_video = records_by_video(out)
    assert by_video["fine.mp4"]["status"] == "ok"
    stuck = by_video["stuck.mp4"]
    assert stuck["status"] == "failed" and stuck["frames"] == 0
    assert "HLS playlist" in stuck["error"], stuck
    assert not os.path.exists(out / "cam" / "stuck.mp4")
    assert time.monotonic() - started < 100  # nothing waited on the pipe
    assert writer_once_read(pipe) is None  # no reader ever opened the blocking segment
    assert_no_leftovers(out)


def writer_once_read(pipe: str) -> int | None:
    """The named pipe's write end, once a reader (ffmpeg) waits on it; None until then."""
    try:
        fd = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:  # ENXIO: nobody has opened it for reading yet
        return None
    os.set_blocking(fd, True)
    return fd

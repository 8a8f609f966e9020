"""The command line as a newcomer meets it: one error style, -h, what a run did not do,
a video file as ROOT, --json, the scheduler from Dask's own conventions, Theora."""

from __future__ import annotations

import json
import os
import socket

import pytest
from helpers import manifest, run_cli
from videos import make_video


def one_error_line(res) -> str:
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("snhoo-dask: error: "), res.stderr
    assert "Traceback" not in res.stderr and "Usage:" not in res.stderr
    return lines[0]


@pytest.mark.parametrize(
    "args, says",
    [
        (["run", "{root}", "--evry", "3"], "No such option '--evry'. Did you mean '--every'?"),
        (["run", "{root}", "--quality", "0"], "--quality must be a whole number from 1 to 100, not 0"),
        (["run", "{root}", "--workers", "0"], "'--workers': 0 is not in the range x>=1"),
        (["run"], "Missing argument 'ROOT...'"),
        (["rnu", "{root}"], "No such command 'rnu'. Did you mean 'run'?"),
        (["run", "{root}", "--scheduler", "tcp//127.0.0.1:8786"], "'tcp//127.0.0.1:8786' is not a Dask"),
        (["run", "{root}", "--scheduler-file", "{root}/none.json"], "cannot read --scheduler-file"),
        (["run", "{root}/notes.txt"], "is neither a folder nor a video file"),
        (["run", "{root}", "--json", "--dry-run"], "--json summarises a run"),
    ],
)
def test_every_usage_error_is_one_line_with_exit_2(tmp_path, args, says):
    root = tmp_path / "videos"
    root.mkdir()
    (root / "notes.txt").write_text("not a video")
    res = run_cli(*[a.format(root=root) for a in args], "--out", str(tmp_path / "out"), timeout=60)
    assert says in one_error_line(res)
    assert not (tmp_path / "out").exists()


def test_h_is_help(tmp_path):
    for args in (["-h"], ["run", "-h"], ["serve", "-h"]):
        short, long = run_cli(*args, timeout=60), run_cli(*args[:-1], "--help", timeout=60)
        assert short.returncode == 0 and short.stdout == long.stdout and "Usage:" in short.stdout


def test_shell_completion_script(tmp_path):
    """docs/output.md's line for bash: the script, and a completed option."""
    res = run_cli(timeout=60, env=dict(os.environ, _SNHOO_DASK_COMPLETE="bash_source"))
    assert res.returncode == 0 and "_snhoo_dask_completion" in res.stdout
    env = dict(
        os.environ, _SNHOO_DASK_COMPLETE="bash_complete", COMP_WORDS="snhoo-dask run --ev", COMP_CWORD="2"
    )
    assert "--every" in run_cli(timeout=60, env=env).stdout


@pytest.fixture
def six(tmp_path):
    """Six 2 s clips (50 frames each)."""
    root = tmp_path / "six"
    for i in range(6):
        make_video(root / f"v{i}.mp4", seconds=2)
    return root


@pytest.mark.slow
@pytest.mark.cluster
def test_the_summary_says_what_did_not_happen(shared_cluster, tmp_path, six):
    out = tmp_path / "out"
    on = ["--scheduler", shared_cluster.address, "-q"]
    res = run_cli("run", str(six), "--out", str(out), "--frames", "0,10,100-102,99999", *on, "--json")
    assert res.returncode == 0, res.stderr
    (missing,) = [line for line in res.stderr.splitlines() if line.startswith("missing: ")]
    assert missing.startswith(
        "missing: 24 requested frames the videos do not have: frames 100, 101, 102, 99999 in 6 videos ("
    )
    assert "and 3 more" in missing
    summary = json.loads(res.stdout)  # stdout holds the JSON summary and nothing else
    assert summary["videos"] == {"total": 6, "ok": 6, "partial": 0, "skipped": 0, "failed": 0}
    assert summary["images"] == 12 and summary["status"] == "done" and summary["exit_code"] == 0
    assert summary["missing"]["videos"] == 6 and summary["missing"]["what"]["frame 99999"] == 6
    assert summary["missing"]["frames"] == 24
    assert summary["out"] == str(out) and summary["report"] == str(out / "report.html")

    # Another selection over the same OUT: each video redone, and said so.
    res = run_cli("run", str(six), "--out", str(out), "--every", "30", *on)
    assert res.returncode == 0, res.stderr
    assert (
        "redone: 6 videos, the earlier output made with other settings (the frame selection): " in res.stderr
    )
    # One video's images deleted: that one redone, the other five skipped, both said.
    os.remove(out / "six" / "v3.mp4" / "000000.jpg")
    res = run_cli("run", str(six), "--out", str(out), "--every", "30", *on, "--json")
    assert res.returncode == 0, res.stderr
    assert (
        f"redone: 1 video, the earlier output with images changed or deleted since: {six / 'v3.mp4'}"
        in res.stderr
    )
    assert "skipped: 5 videos already done with these settings (" in res.stderr
    summary = json.loads(res.stdout)
    assert summary["videos"]["skipped"] == 5 and summary["videos"]["ok"] == 1
    assert summary["redone"] == {str(six / "v3.mp4"): "with images changed or deleted since"}


@pytest.mark.slow
@pytest.mark.cluster
def test_a_video_file_as_root_and_failures_in_json(shared_cluster, tmp_path):
    folder = tmp_path / "day1"
    clip = make_video(folder / "clip one.mp4", seconds=1)
    make_video(folder / "other.mp4", seconds=1)  # not asked for
    (folder / "broken.mp4").write_bytes(b"\0" * 1000)
    out = tmp_path / "out"
    on = ["--scheduler", shared_cluster.address, "-q", "--every", "5"]
    res = run_cli("run", clip, str(folder / "broken.mp4"), "--out", str(out), *on, "--json")
    assert res.returncode == 1, res.stderr
    # Where a run on the folder would put it: OUT/<folder name>/<file name>/
    images = sorted(f for f in os.listdir(out / "day1" / "clip one.mp4") if f.endswith(".jpg"))
    assert images == ["000000.jpg", "000005.jpg", "000010.jpg", "000015.jpg", "000020.jpg"]
    assert os.listdir(out / "day1") == ["clip one.mp4"]  # not the other one
    summary = json.loads(res.stdout)
    assert summary["videos"] == {"total": 2, "ok": 1, "partial": 0, "skipped": 0, "failed": 1}
    (failure,) = summary["failures"]
    assert failure["video"] == str(folder / "broken.mp4") and failure["reason"]
    assert summary["status"] == "done_failures" and summary["exit_code"] == 1
    # The same folder as a root: the clip's output is the one already there (skipped).
    res = run_cli("run", str(folder), "--out", str(out), *on)
    assert "skipped: 1 video already done" in res.stderr
    assert {r["video"]: r["status"] for r in manifest(out)[-3:]} == {
        "clip one.mp4": "skipped",
        "other.mp4": "ok",
        "broken.mp4": "failed",
    }


@pytest.mark.slow
@pytest.mark.cluster
def test_scheduler_from_daskss_conventions_in_order(shared_cluster, tmp_path):
    root = tmp_path / "v"
    make_video(root / "a.ogv", seconds=1, codec="libtheora")  # Theora: found without --ext
    sched_file = tmp_path / "scheduler.json"
    sched_file.write_text(json.dumps({"type": "Scheduler", "address": shared_cluster.address}))
    bad = "tcp://127.0.0.1:9"  # nothing listens there
    env = dict(os.environ, DASK_SCHEDULER_ADDRESS=shared_cluster.address)
    env.pop("SNHOO_SCHEDULER", None)

    def run(*args, **extra):
        return run_cli("run", str(root), "--out", str(tmp_path / "out"), "-q", "--overwrite", *args, **extra)

    res = run(env=env)  # $DASK_SCHEDULER_ADDRESS
    assert res.returncode == 0, res.stderr
    assert manifest(tmp_path / "out")[-1]["worker"] in ("w0", "w1")  # the shared cluster's workers
    assert manifest(tmp_path / "out")[-1]["video"] == "a.ogv"
    # --scheduler-file comes before $SNHOO_SCHEDULER, and --scheduler before both.
    res = run("--scheduler-file", str(sched_file), env=dict(env, SNHOO_SCHEDULER=bad))
    assert res.returncode == 0, res.stderr
    res = run("--scheduler", shared_cluster.address, "--scheduler-file", str(tmp_path / "none.json"), env=env)
    assert res.returncode == 0, res.stderr
    # Local-cluster options with a scheduler: said in one line, the run goes on.
    res = run("--scheduler", shared_cluster.address, "--workers", "3", env=env)
    assert res.returncode == 0, res.stderr
    assert (
        "warning: --workers does nothing with a running scheduler: its own workers run the job"
        in res.stderr.splitlines()
    )


@pytest.mark.slow
def test_an_unreachable_scheduler_says_what_to_check(tmp_path):
    root = tmp_path / "v"
    make_video(root / "a.mp4", seconds=1)
    res = run_cli(
        "run", str(root), "--out", str(tmp_path / "out"), "--scheduler", "tcp://127.0.0.1:9", timeout=60
    )
    assert res.returncode == 1
    (line,) = res.stderr.strip().splitlines()[-1:]
    assert line.startswith(
        "snhoo-dask: error: cannot reach the Dask scheduler at tcp://127.0.0.1:9 within 10 s"
    )
    assert "check that a scheduler runs there" in line and "port 9 is open" in line


@pytest.mark.slow
def test_a_busy_dashboard_port_is_one_line_of_ours_and_v_logs(tmp_path):
    root = tmp_path / "v"
    make_video(root / "a.mp4", seconds=1)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = run_cli(
            "run",
            str(root),
            "--out",
            str(tmp_path / "out"),
            "--workers",
            "1",
            "--dashboard-address",
            f"127.0.0.1:{port}",
            "-q",
            "-v",
            timeout=120,
        )
    assert res.returncode == 0, res.stderr
    warned = [line for line in res.stderr.splitlines() if f"port {port}" in line]
    assert len(warned) == 1 and warned[0].startswith(f"warning: port {port} is in use"), res.stderr
    assert "UserWarning" not in res.stderr and "node.py" not in res.stderr
    assert "distributed.scheduler - INFO - " in res.stderr  # -v: Dask's own log lines


@pytest.mark.slow
def test_one_of_a_thing_is_said_in_the_singular(tmp_path):
    make_video(tmp_path / "cam" / "a.mp4", seconds=1)
    res = run_cli(
        "run", str(tmp_path / "cam"), "--out", str(tmp_path / "out"), "--fps", "1",
        "--workers", "1", "--dashboard-address", "127.0.0.1:0",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    first = res.stderr.splitlines()[0]
    assert first == f"1 video, 1 frame per second, output {tmp_path / 'out'}", res.stderr
    assert "1 ok, 0 skipped, 0 failed of 1 video; 1 image in " in res.stderr, res.stderr

"""What a job reads in OUT is only ever a plain file it can read without waiting, and an output
folder is never one around another run's.

Real CLI on its embedded cluster (tasks run in its threads), real ffmpeg; named pipes made
with ``mkfifo`` where the job reads its lock, fence, manifest and done records, before the
run and while its tasks are held before publishing (``SNHOO_PAUSE_DIR``).
"""

from __future__ import annotations

import os
import time

import pytest
from helpers import cli_popen, image_names, manifest, run_cli, start_serve, wait_until
from videos import make_video

pytestmark = pytest.mark.slow


def run(*args: str, timeout: float = 120):
    return run_cli(
        "run", *args, "--workers", "1", "--dashboard-address", "127.0.0.1:0", "-q", timeout=timeout
    )


def one_error_line(proc) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("snhoo-dask: error: "), proc.stderr
    return lines[0]


@pytest.mark.timeout(180)
def test_a_named_pipe_swapped_in_for_the_fence_mid_run_fails_the_videos_and_blocks_nothing(tmp_path):
    root, out, pause = tmp_path / "cam", tmp_path / "out", tmp_path / "pause"
    make_video(root / "a.mp4", seconds=1)
    make_video(root / "b.mp4", seconds=1)
    pause.mkdir()
    (pause / "publish.hold").touch()
    proc = cli_popen(
        "run", str(root), "--out", str(out), "--workers", "1", "--dashboard-address", "127.0.0.1:0", "-q",
        env=dict(os.environ, SNHOO_PAUSE_DIR=str(pause)),
    )  # fmt: skip
    try:
        wait_until(lambda: (pause / "publish.waiting").exists() or proc.poll() is not None, 90, "a held task")
        assert proc.poll() is None, proc.communicate()
        os.unlink(out / ".snhoo-run")
        os.mkfifo(out / ".snhoo-run")
        (pause / "publish.go").touch()
        released = time.monotonic()
        _, err = proc.communicate(timeout=60)  # a worker opening the pipe would wait for ever
    finally:
        if proc.poll() is None:
            proc.kill()  # the run this test started
            proc.communicate()
    assert time.monotonic() - released < 30
    assert proc.returncode == 1 and "Traceback" not in err, err
    records = manifest(out)
    assert len(records) == 2 and {r["status"] for r in records} == {"failed"}, records
    for rec in records:
        assert (
            rec["error"]
            == f"{out}/.snhoo-run is not a plain file (a named pipe); snhoo-dask does not read it"
        )
    assert not os.listdir(out / "cam")  # nothing published


@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", [".snhoo.lock", ".snhoo-run", "manifest.jsonl"])
def test_a_named_pipe_in_place_of_a_file_the_job_reads_is_refused_at_once(tmp_path, name):
    root, out = tmp_path / "cam", tmp_path / "out"
    make_video(root / "a.mp4", seconds=1)
    out.mkdir()
    if name == "manifest.jsonl":
        # A manifest is read only in a run's output folder (in any other it is a user's file,
        # and the job is refused for it): the folder is one, by its lock.
        (out / ".snhoo.lock").touch()
    os.mkfifo(out / name)
    started = time.monotonic()
    proc = run(str(root), "--out", str(out), timeout=60)
    assert time.monotonic() - started < 40
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]  # the fence and manifest are opened once the cluster is up
    assert line.startswith("snhoo-dask: error: ") and line.endswith(
        f"{out}/{name} is not a plain file (a named pipe); snhoo-dask does not read it"
    ), line
    assert not (out / "cam").exists()


@pytest.mark.timeout(180)
def test_a_named_pipe_as_a_done_record_makes_that_video_fail_not_wait(tmp_path):
    root, out = tmp_path / "cam", tmp_path / "out"
    make_video(root / "a.mp4", seconds=1)
    assert run(str(root), "--out", str(out)).returncode == 0
    done = out / "cam" / "a.mp4" / ".snhoo-done.json"
    os.unlink(done)
    os.mkfifo(done)
    proc = run(str(root), "--out", str(out), timeout=60)
    assert proc.returncode == 1, proc.stderr
    rec = manifest(out)[-1]
    assert rec["status"] == "failed" and "is not a finished snhoo-dask output" in rec["error"], rec
    assert os.path.exists(done) and len(image_names(out / "cam" / "a.mp4")) == 25


# -- an output folder around another run's --------------------------------------------------------


@pytest.mark.timeout(180)
def test_an_output_around_another_runs_output_anywhere_below_is_refused(tmp_path):
    a, b, p = tmp_path / "A" / "vids", tmp_path / "B" / "sub", tmp_path / "P"
    make_video(a / "x.mp4", seconds=1)
    make_video(b / "x.mp4", seconds=1)
    inner = p / "old" / "2025" / "inner"  # not a folder the outer job would write into
    assert run(str(b), "--out", str(inner), "--every", "5").returncode == 0
    before = sorted(os.listdir(inner))
    proc = run(str(a), "--out", str(p), "--every", "5")
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc)
    assert line == (
        f"snhoo-dask: error: the output folder {p} contains {inner}, the output folder of another "
        "snhoo-dask run (it holds .snhoo.lock); choose one that does not contain it, so that run can "
        "still be rerun"
    ), line
    assert sorted(os.listdir(p)) == ["old"] and sorted(os.listdir(inner)) == before
    rerun = run(str(b), "--out", str(inner), "--every", "5")
    assert rerun.returncode == 0 and manifest(inner)[-1]["status"] == "skipped", rerun.stderr


@pytest.mark.timeout(180)
def test_web_an_output_around_another_runs_output_is_refused(tmp_path):
    base, outs = tmp_path / "base", tmp_path / "outs"
    make_video(base / "vids" / "x.mp4", seconds=1)
    assert run(str(base / "vids"), "--out", str(outs / "o" / "deep" / "inner")).returncode == 0
    svc = start_serve(str(tmp_path), None, [str(base)], [str(outs)], str(tmp_path / "state"),
                      extra=["--workers", "1", "--dashboard-address", "127.0.0.1:0"])  # fmt: skip
    try:
        status, answer = svc.call("/api/jobs", "POST", {"roots": [str(base / "vids")], "out": "o"})
        assert status == 400 and answer["field"] == "out", answer
        assert "the output folder of another snhoo-dask run (it holds .snhoo.lock)" in answer["error"], answer
    finally:
        svc.stop()
    assert sorted(os.listdir(outs / "o")) == ["deep"]


# -- a user's own files in OUT --------------------------------------------------------------------

MINE = {
    "report.html": ("report.html", "<html>my own notes</html>", "replace"),
    "manifest.jsonl": ("manifest.jsonl", '{"mine": true}\n', "append to"),
    ".snhoo-tmp": (".snhoo-tmp/keep.txt", "keep me", "empty"),
}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", sorted(MINE))
def test_a_users_own_file_of_the_jobs_name_in_a_new_output_folder_refuses_the_job(tmp_path, name):
    root, out = tmp_path / "cam", tmp_path / "out"
    make_video(root / "a.mp4", seconds=1)
    rel, text, verb = MINE[name]
    (out / rel).parent.mkdir(parents=True, exist_ok=True)
    (out / rel).write_text(text)
    proc = run(str(root), "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    assert one_error_line(proc) == (
        f"snhoo-dask: error: the output folder {out} holds {name}, which no snhoo-dask run wrote "
        f"(it is not the output folder of a run) and a run would {verb}; move it away or choose "
        "another output folder"
    )
    assert (out / rel).read_text() == text
    assert sorted(os.listdir(out)) == [rel.split("/")[0]]  # nothing of the job's written there


@pytest.mark.timeout(180)
def test_a_users_files_put_in_a_runs_output_folder_are_left_as_they_are(tmp_path):
    root, out = tmp_path / "cam", tmp_path / "out"
    make_video(root / "a.mp4", seconds=1)
    assert run(str(root), "--out", str(out), "--every", "5").returncode == 0
    (out / ".snhoo-tmp").mkdir()
    (out / ".snhoo-tmp" / "keep.txt").write_text("keep me")
    (out / "report.html").write_text("<html>my own notes</html>")
    proc = run(str(root), "--out", str(out), "--every", "3")  # redoes the video, writes a report
    assert proc.returncode == 1, proc.stderr  # the frames are there, the promised report is not
    assert f"warning: {out}/report.html is not a report snhoo-dask wrote; it is left as it is" in proc.stderr
    assert manifest(out)[-1]["status"] == "ok"
    assert (out / ".snhoo-tmp" / "keep.txt").read_text() == "keep me"
    assert (out / "report.html").read_text() == "<html>my own notes</html>"
    assert sorted(os.listdir(out / ".snhoo-tmp")) == ["keep.txt"]


@pytest.mark.timeout(180)
def test_web_an_existing_folder_of_someones_files_is_refused_as_output(tmp_path):
    base, outs = tmp_path / "base", tmp_path / "outs"
    make_video(base / "vids" / "x.mp4", seconds=1)
    (outs / "theirs").mkdir(parents=True)
    (outs / "theirs" / "thesis.txt").write_text("their work")
    svc = start_serve(str(tmp_path), None, [str(base)], [str(outs)], str(tmp_path / "state"),
                      extra=["--workers", "1", "--dashboard-address", "127.0.0.1:0"])  # fmt: skip
    try:
        status, answer = svc.call("/api/jobs", "POST", {"roots": [str(base / "vids")], "out": "theirs"})
        assert status == 400 and answer["field"] == "out", answer
        assert "already holds files and is not the output folder of a snhoo-dask run" in answer["error"]
    finally:
        svc.stop()
    assert os.listdir(outs / "theirs") == ["thesis.txt"]


@pytest.mark.timeout(240)
def test_a_users_samples_parquet_in_the_output_folder_is_never_replaced_by_shards(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    root, out = tmp_path / "cam", tmp_path / "out"
    make_video(root / "a.mp4", seconds=1)
    assert run(str(root), "--out", str(out), "--every", "10").returncode == 0  # a run's folder now
    (out / "samples.parquet").write_bytes(b"my own table, not a parquet file")
    proc = run(str(root), "--out", str(out), "--every", "10", "--pack", "shards")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"snhoo-dask: error: {out}/samples.parquet is not an index snhoo-dask wrote and --pack "
        "shards would replace it; move it away or choose another output folder"
    )
    assert (out / "samples.parquet").read_bytes() == b"my own table, not a parquet file"
    assert not (out / "shards").exists()
    # Once it is moved away the job writes its own index, and a rerun may replace that one.
    (out / "samples.parquet").unlink()
    assert run(str(root), "--out", str(out), "--every", "10", "--pack", "shards").returncode == 0
    assert pq.read_table(out / "samples.parquet").num_rows == 3
    assert run(str(root), "--out", str(out), "--every", "5", "--pack", "shards").returncode == 0
    assert pq.read_table(out / "samples.parquet").num_rows == 5  # our own index, replaced

"""--pack shards end to end, read back by the real ``webdataset`` and ``pyarrow``: numbered
shards of bounded size whose keys are unique in the job, each sample's .json the same as
frames.csv says of that frame, the parquet files the same rows; a worker or the client
killed with SIGKILL mid-shard leaves no shard a loader would read half of, and a rerun ends
with every sample exactly once."""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal

import pytest
from dataset_videos import three_shots
from helpers import (
    cli_popen,
    frames_csv,
    manifest,
    records_by_video,
    run_cli,
    small_corpus,
    start_dask,
    wait_until,
)
from videos import make_video

from snhoo_dask.output.sheets import frame_listing, video_sheet

wds = pytest.importorskip("webdataset")
pq = pytest.importorskip("pyarrow.parquet")

pytestmark = [pytest.mark.slow, pytest.mark.cluster]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two workers that hold at a pause point when a test puts a .hold file in PAUSE."""
    base = tmp_path_factory.mktemp("dask")
    pause = base / "pause"
    pause.mkdir()
    procs = start_dask(str(base), 2, worker_env={"SNHOO_PAUSE_DIR": str(pause)})
    procs.pause = pause
    try:
        yield procs
    finally:
        procs.stop()


def run(cluster, root, out, *args):
    res = run_cli("run", str(root), "--out", str(out), "--scheduler", cluster.address, "-q", *args)
    assert "Traceback" not in res.stderr, res.stderr
    return res


def visible(out) -> list[str]:
    """The shard tars a loader globbing OUT/shards/*.tar reads, each checked to be whole:
    its stats beside it name it at its size, and its parquet is there."""
    tars = sorted(glob.glob(os.path.join(out, "shards", "*.tar")))
    for tar in tars:
        stem = tar[: -len(".tar")]
        with open(stem + "_stats.json", encoding="utf-8") as f:
            stats = json.load(f)
        assert stats["bytes"] == os.path.getsize(tar), tar
        assert os.path.exists(stem + ".parquet"), tar
    return tars


def samples(out) -> list[dict]:
    """Every sample of the shard folder, as the webdataset library reads it."""
    tars = visible(out)
    if not tars:
        return []
    return list(wds.WebDataset(tars, shardshuffle=False, empty_check=False))


def test_shards_read_by_webdataset_match_frames_csv_and_the_parquet_index(cluster, tmp_path):
    root, out, oracle = tmp_path / "root", tmp_path / "out", tmp_path / "folder"
    small_corpus(str(root))  # three good videos (one named in Chinese), one that is not a video
    three_shots(root / "shots" / "cuts.mp4")  # 320x240, 105 frames
    make_video(root / "cam1" / "long name with spaces.mp4", seconds=3)
    opts = ("--every", "7")
    assert run(cluster, root, oracle, *opts, "--pack", "folder").returncode == 1  # bad.mp4 failed
    res = run(cluster, root, out, *opts, "--pack", "shards", "--shard-size", "40KB")
    assert res.returncode == 1, res.stderr

    records = records_by_video(out)
    good = {v: r for v, r in records.items() if r["status"] == "ok"}
    assert len(good) == 5 and records["cam2/bad.mp4"]["status"] == "failed"
    tars = visible(out)
    assert len(tars) >= 3, tars  # the small size forced several shards
    assert [os.path.basename(t) for t in tars] == [f"{i:05d}.tar" for i in range(len(tars))]
    for r in good.values():
        assert r["out"].startswith("shards/") and os.path.exists(out / r["out"])
    # The report's and the web's pictures of a video never show a shard's (other videos') images.
    fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for r in good.values():
            assert video_sheet(fd, r["out"]) is None and frame_listing(fd, r["out"], 0, 10) is None
    finally:
        os.close(fd)

    got = samples(out)
    keys = [s["__key__"] for s in got]
    assert len(keys) == len(set(keys)), "duplicate sample keys"
    assert all("." not in k and "/" not in k for k in keys)
    assert len(got) == sum(r["frames"] for r in good.values()) > 0
    by_video: dict[str, list] = {}
    for s in got:
        meta = json.loads(s["json"])
        assert meta["key"] == s["__key__"]
        by_video.setdefault(meta["video"], []).append((meta, s["jpg"]))
    assert set(by_video) == set(good)
    for video, items in by_video.items():
        rows = frames_csv(oracle / "root" / video)
        items.sort(key=lambda m: m[0]["frame"])
        assert [m["frame"] for m, _ in items] == [int(r["frame"]) for r in rows], video
        for (meta, jpg), row in zip(items, rows, strict=True):
            assert meta["root"] == str(root)
            assert abs(meta["seconds"] - float(row["timestamp"])) < 1e-6
            assert meta["pts"] == round(float(row["timestamp"]) * 1e6)
            assert (meta["width"], meta["height"]) == (int(row["width"]), int(row["height"]))
            # The same encoder on the same frame: the shard holds the very image the folder does.
            assert jpg == (oracle / "root" / video / row["file"]).read_bytes(), (video, row)

    index = pq.read_table(out / "samples.parquet").to_pylist()
    assert sorted((r["key"], r["shard"]) for r in index) == sorted(
        (s["__key__"], os.path.basename(s["__url__"])) for s in got
    )
    per_shard = [r for t in tars for r in pq.read_table(t[:-4] + ".parquet").to_pylist()]
    assert sorted(per_shard, key=lambda r: r["key"]) == sorted(
        (json.loads(s["json"]) for s in got), key=lambda r: r["key"]
    )

    # A rerun with the same options skips every video and leaves the shards as they were.
    before = {t: os.path.getmtime(t) for t in tars}
    res = run(cluster, root, out, *opts, "--pack", "shards", "--shard-size", "40KB")
    assert [r["status"] for r in manifest(out)[-6:]].count("skipped") == 5, res.stderr
    assert {t: os.path.getmtime(t) for t in visible(out)} == before
    # The dry run says what the run did: the videos in the shards are skipped.
    dry = run(cluster, root, out, *opts, "--pack", "shards", "--dry-run")
    assert "5 skip (already done with these settings)" in dry.stdout + dry.stderr, dry.stdout + dry.stderr

    # Another selection: no sample of the earlier one stays visible.
    run(cluster, root, out, "--every", "10", "--pack", "shards", "--shard-size", "40KB")
    again = samples(out)
    frames = [json.loads(s["json"])["frame"] for s in again]
    assert frames and all(f % 10 == 0 for f in frames), sorted(set(frames))
    now = {r["video"]: r for r in manifest(out)[-6:]}
    assert len(again) == sum(r["frames"] for r in now.values() if r["status"] == "ok")
    assert len(pq.read_table(out / "samples.parquet")) == len(again)


def six_videos(root) -> list[str]:
    base = make_video(root / "a" / "v0.mp4", seconds=2)
    names = ["a/v0.mp4"]
    for i in range(1, 6):
        rel = f"{'ab'[i % 2]}/v{i}.mp4"
        os.makedirs(root / rel.split("/")[0], exist_ok=True)
        shutil.copyfile(base, root / rel)
        names.append(rel)
    return sorted(names)


def hold_last(cluster, held: str):
    for name in os.listdir(cluster.pause):
        os.unlink(cluster.pause / name)
    (cluster.pause / "publish.hold").write_text(held)


def mid_shard(out, cluster) -> bool:
    """Two shards published, a third open in .snhoo-tmp, and the held video waiting."""
    open_shard = glob.glob(os.path.join(out, ".snhoo-tmp", "*", "shard.tar"))
    return (cluster.pause / "publish.waiting").exists() and len(visible(out)) >= 2 and bool(open_shard)


def assert_every_sample_once(out, names: list[str]) -> None:
    got = samples(out)
    keys = [s["__key__"] for s in got]
    assert len(keys) == len(set(keys)) == 10 * len(names)
    per = {}
    for s in got:
        meta = json.loads(s["json"])
        per.setdefault(meta["video"], []).append(meta["frame"])
    assert {v: sorted(f) for v, f in per.items()} == {n: list(range(0, 50, 5)) for n in names}
    assert len(pq.read_table(out / "samples.parquet")) == len(got)


ARGS = ("--every", "5", "--pack", "shards", "--shard-size", "60KB")


@pytest.mark.timeout(240)
def test_worker_killed_mid_shard_leaves_no_half_shard_and_the_job_completes(cluster, tmp_path):
    from distributed import Client

    root, out = tmp_path / "root", tmp_path / "out"
    names = six_videos(root)
    hold_last(cluster, names[-1])
    proc = cli_popen("run", str(root), "--out", str(out), "--scheduler", cluster.address, "-q", *ARGS)
    try:
        wait_until(lambda: mid_shard(out, cluster), 120, "two shards published and a third open")
        assert len(samples(out)) % 10 == 0  # whole videos only, read whole
        with Client(cluster.address, timeout=10) as c:
            busy = c.run(lambda dask_worker: (os.getpid(), dask_worker.state.executing_count))
        (pid,) = [pid for pid, n in busy.values() if n]
        os.kill(pid, signal.SIGKILL)
        (cluster.pause / "publish.go").write_text("")
        _, err = proc.communicate(timeout=150)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    records = manifest(out)
    assert sorted(r["video"] for r in records) == names and all(r["status"] == "ok" for r in records)
    assert_every_sample_once(out, names)
    assert not os.path.exists(out / ".snhoo-tmp")


@pytest.mark.timeout(240)
def test_client_killed_mid_shard_records_only_published_videos_and_a_rerun_finishes(cluster, tmp_path):
    root, out = tmp_path / "root", tmp_path / "out"
    names = six_videos(root)
    hold_last(cluster, names[-1])
    proc = cli_popen("run", str(root), "--out", str(out), "--scheduler", cluster.address, "-q", *ARGS)
    try:
        wait_until(lambda: mid_shard(out, cluster), 120, "two shards published and a third open")
        os.kill(proc.pid, signal.SIGKILL)  # the shard writer itself
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # What a loader sees: whole shards only; every video recorded is in one of them (a video
    # may be in a shard and not recorded yet: the kill fell between the rename and the record).
    seen = samples(out)
    in_shards = {json.loads(s["json"])["video"] for s in seen}
    recorded = {r["video"] for r in manifest(out)}
    assert recorded <= in_shards and len(seen) == 10 * len(in_shards) and len(in_shards) < 6
    (cluster.pause / "publish.go").write_text("")
    res = run(cluster, root, out, *ARGS)
    assert res.returncode == 0, res.stderr
    last = {r["video"]: r["status"] for r in manifest(out)[-6:]}
    assert sorted(last) == names
    assert sorted(v for v, s in last.items() if s == "skipped") == sorted(in_shards)
    assert_every_sample_once(out, names)

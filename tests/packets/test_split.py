"""A long video cut into pieces gives the folder the whole video gives;
tiny videos run in batches, each still with its own record and its own failure (item 3).

Real encodes, the real CLI on its embedded cluster with two workers: each selection is run
cut (``--split-seconds 2``: pieces of 2 s or more) and whole (``--split-seconds 0``), and
every image and frames.csv must be the same bytes.
"""

from __future__ import annotations

import os
import shutil

import pytest
from helpers import cli_popen, manifest, records_by_video, run_cli, run_on, tree, wait_until
from videos import X264_GOP_25, encode

from snhoo_dask.frames.selection import Selection
from snhoo_dask.jobs.discover import discover
from snhoo_dask.jobs.tasks import batches
from snhoo_dask.model import Video
from snhoo_dask.packets.pieces import _cut_points, cut, pieces_wanted
from snhoo_dask.packets.thinning import scan
from snhoo_dask.video.probe import probe


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    base = tmp_path_factory.mktemp("split")
    return {
        "h264": encode(base / "h264" / "a.mp4", *X264_GOP_25),
        # Closed GOPs asked of x265 (its default is open): IDR pictures to cut at.
        "hevc": encode(
            base / "hevc" / "a.mkv",
            "-c:v",
            "libx265",
            "-x265-params",
            "keyint=25:min-keyint=25:no-open-gop=1:log-level=error",
        ),
        # Open GOPs: the I frames are not IDR, B-frames before each refer across it.
        "open-gop": encode(base / "open" / "a.mp4", *X264_GOP_25, "-x264-params", "open-gop=1"),
    }


def run_both(root: str, tmp_path, *selection: str) -> tuple[dict, dict, dict, dict]:
    """(cut tree, whole tree, cut record, whole record) of one video's root."""
    outs = {}
    for name, seconds in (("cut", "2"), ("whole", "0")):
        out = tmp_path / name
        r = run_cli(
            "run", root, "--out", str(out), "--workers", "2", "-q", "--split-seconds", seconds, *selection
        )
        assert r.returncode == 0, r.stderr
        (rec,) = manifest(out)
        outs[name] = (tree(out), rec)
    return outs["cut"][0], outs["whole"][0], outs["cut"][1], outs["whole"][1]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("codec", "selection"),
    [("h264", ["--every", "3"]), ("h264", []), ("h264", ["--fps", "7"]), ("hevc", ["--every", "4"])],
)
def test_a_video_cut_into_pieces_gives_the_same_folder(videos, tmp_path, codec, selection):
    root = os.path.dirname(videos[codec])
    cut_tree, whole_tree, cut_rec, whole_rec = run_both(root, tmp_path, *selection)
    assert cut_rec["pieces"] == 4, "12 s on 2 workers: two pieces per worker thread, 3 s each"
    assert whole_rec["pieces"] == 0
    assert cut_rec["status"] == whole_rec["status"] == "ok"
    expected = {"h264": {("--every", "3"): 100, (): 300, ("--fps", "7"): 84}, "hevc": {("--every", "4"): 75}}
    assert cut_rec["frames"] == whole_rec["frames"] == expected[codec][tuple(selection)]
    assert sorted(cut_tree) == sorted(whole_tree)
    assert len([n for n in cut_tree if n.endswith(".jpg")]) == cut_rec["frames"]
    different = [n for n in whole_tree if cut_tree[n] != whole_tree[n]]
    assert not different, different[:5]
    # The pieces skip what no one asked for, as the whole video does.
    assert cut_rec["undecoded"] == whole_rec["undecoded"]
    if selection:
        assert cut_rec["undecoded"] > 0


@pytest.mark.slow
def test_what_cannot_be_cut_runs_whole(videos, tmp_path):
    """Open GOPs (no IDR after the first picture) are not cut, nor is --pack tar or --scenes."""
    cut_tree, whole_tree, cut_rec, _ = run_both(os.path.dirname(videos["open-gop"]), tmp_path, "--every", "3")
    assert cut_rec["pieces"] == 0 and cut_rec["frames"] == 100
    assert cut_tree == whole_tree
    h264 = os.path.dirname(videos["h264"])
    for extra in (["--pack", "tar"], ["--scenes"], ["--every", "3", "--dedup"]):
        out = tmp_path / ("x" + "".join(extra))
        r = run_cli("run", h264, "--out", str(out), "--workers", "2", "-q", "--split-seconds", "2", *extra)
        assert r.returncode == 0, r.stderr
        assert manifest(out)[0]["pieces"] == 0, extra


@pytest.mark.slow
def test_a_cut_off_long_video_is_not_joined_from_pieces_as_if_whole(tmp_path):
    """Half of a 12 s MKV whose header still says 12 s: its pieces would each prove their
    images; it runs whole instead, and fails as truncated, as it does on one worker."""
    full = encode(tmp_path / "src" / "full.mkv", *X264_GOP_25)
    root = tmp_path / "root"
    root.mkdir()
    data = open(full, "rb").read()
    (root / "cut.mkv").write_bytes(data[: len(data) // 2])
    for seconds in ("2", "0"):
        out = tmp_path / f"out{seconds}"
        r = run_cli(
            "run", str(root), "--out", str(out), "--workers", "2", "-q", "--split-seconds", seconds, "--every", "3"
        )  # fmt: skip
        assert r.returncode == 1, r.stderr
        (rec,) = manifest(out)
        assert rec["status"] == "failed" and rec["pieces"] == 0, rec
        assert rec["error"].startswith("truncated: decoded "), rec["error"]
        assert "of the 12 s its header states" in rec["error"], rec["error"]
        assert not (out / "root" / "cut.mkv").exists()


def test_cut_points_are_idr_pictures_that_end_what_came_before(videos):
    h264 = videos["h264"]
    info = probe(h264)
    table = scan(h264, info)
    assert not isinstance(table, str) and len(table) == 300
    assert _cut_points(table) == list(range(25, 300, 25))  # every IDR but the first
    pieces = cut(table, info, 4, 2.0, Selection("every", every=3))
    assert [(p.first, p.end) for p in pieces] == [(0, 75), (75, 150), (150, 225), (225, 300)]
    assert all(p.packets == 75 and p.skip for p in pieces)
    # Each piece takes its share of the selection, by frame number in the whole video.
    assert [p.wanted for p in pieces] == [
        tuple(range(a, b, 3)) for a, b in ((0, 75), (75, 150), (150, 225), (225, 300))
    ]
    # Fewer pieces than asked when they would be shorter than the minimum.
    everything = Selection("all")
    assert len(cut(table, info, 4, 5.0, everything)) == 2
    assert cut(table, info, 4, 7.0, everything) is None
    whole = cut(table, info, 2, 2.0, everything, thin=False)
    assert [(p.first, p.end) for p in whole] == [(0, 150), (150, 300)] and not any(p.skip for p in whole)
    opened = videos["open-gop"]
    assert cut(scan(opened, probe(opened)), probe(opened), 4, 2.0, everything) is None


def test_only_a_video_that_would_finish_alone_is_cut():
    mb = 1 << 20
    assert pieces_wanted([100 * mb], 2, 10) == [4]
    assert pieces_wanted([60 * mb, 50 * mb, 40 * mb, 30 * mb, 20 * mb, 10 * mb], 2, 10) == [2, 1, 1, 1, 1, 1]
    assert pieces_wanted([10 * mb] * 8, 2, 10) == [1] * 8
    assert pieces_wanted([100 * mb], 1, 10) == [1], "one worker thread: nothing to run at once"
    assert pieces_wanted([900_000], 2, 10) == [1], "too small for two 10 s pieces at 400 kbit/s"
    assert pieces_wanted([900_000], 2, 2) == [4]


@pytest.mark.slow
@pytest.mark.cluster
def test_pieces_run_on_separate_worker_processes(shared_cluster, videos, tmp_path):
    """Pieces on real ``dask worker`` processes: each piece's rows travel to the join's
    worker, the images are renamed inside the shared OUT; the folder is the whole run's."""
    root = os.path.dirname(videos["h264"])
    trees = {}
    for name, seconds in (("cut", "2"), ("whole", "0")):
        out = tmp_path / name
        r = run_on(shared_cluster, root, "--out", str(out), "--every", "3", "--split-seconds", seconds)
        assert r.returncode == 0, r.stderr
        (rec,) = manifest(out)
        assert rec["pieces"] == (4 if name == "cut" else 0) and rec["frames"] == 100
        trees[name] = tree(out)
    assert trees["cut"] == trees["whole"]


@pytest.mark.slow
def test_a_piece_that_fails_fails_the_video_and_publishes_nothing(videos, tmp_path):
    """The pieces reopen the video by identity: a file changed after the plan fails them,
    the record names the piece, no folder appears and no piece's images are left behind."""
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(videos["h264"], root / "a.mp4")
    out = tmp_path / "out"
    pause = tmp_path / "pause"
    pause.mkdir()
    (pause / "piece.hold").touch()
    env = dict(os.environ, SNHOO_PAUSE_DIR=str(pause))
    proc = cli_popen(
        "run", str(root), "--out", str(out), "--workers", "2", "-q", "--split-seconds", "2", env=env
    )
    try:
        wait_until(lambda: (pause / "piece.waiting").exists(), 90, "a piece held before it opens the video")
        with open(root / "a.mp4", "ab") as f:
            f.write(b"\0" * 100)  # still being written to, say
        (pause / "piece.go").touch()
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 1, err
    (rec,) = manifest(out)
    assert rec["status"] == "failed"
    assert rec["error"].startswith("piece ") and "of 4 (frames " in rec["error"], rec["error"]
    assert "changed since discovery" in rec["error"], rec["error"]
    assert not (out / "root" / "a.mp4").exists()
    assert not (out / ".snhoo-tmp").exists(), os.listdir(out / ".snhoo-tmp")


@pytest.mark.slow
def test_a_batch_with_a_broken_clip_fails_that_clip_only(tmp_path):
    clip = encode(tmp_path / "src" / "clip.mp4", *X264_GOP_25, seconds=0.4)  # 10 frames
    root = tmp_path / "clips"
    for i in range(40):
        os.makedirs(root / f"d{i % 4}", exist_ok=True)
        shutil.copy(clip, root / f"d{i % 4}" / f"c{i:02d}.mp4")
    # Larger than the clips: longest first puts it at the head of a batch, with a clip after it.
    (root / "d1" / "broken.mp4").write_bytes(b"not a video at all" * 2000)
    found = discover([str(root)])
    groups, alone = batches(found.videos, 2)
    assert not alone and len(groups) == 21 and all(len(g) <= 2 for g in groups), "this job is batched"
    out = tmp_path / "out"
    r = run_cli("run", str(root), "--out", str(out), "--workers", "2", "-q", "--every", "5")
    assert r.returncode == 1, r.stderr
    records = records_by_video(out)
    assert len(records) == 41
    broken = records.pop("d1/broken.mp4")
    assert broken["status"] == "failed" and "not a readable video" in broken["error"]
    assert all(rec["status"] == "ok" and rec["frames"] == 2 for rec in records.values())
    for name in records:
        assert sorted(os.listdir(out / "clips" / name)) == [
            ".snhoo-done.json",
            "000000.jpg",
            "000005.jpg",
            "frames.csv",
        ]
    assert not (out / "clips" / "d1" / "broken.mp4").exists()


def test_a_batch_holds_one_disk_hosts_videos():
    """A batch runs where its disk is, so tiny videos of two storage hosts never share one."""
    videos = [
        Video("/d", "d", f"{i}.mp4", 1000 - i, disk_host=("192.0.2.10" if i % 3 else None)) for i in range(64)
    ]
    groups, alone = batches(videos, 2)
    assert not alone and sum(len(g) for g in groups) == 64
    for g in groups:
        assert len({v.disk_host for v in g}) == 1, g
        assert [v.size for v in g] == sorted((v.size for v in g), reverse=True)

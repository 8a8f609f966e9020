"""Dataset options end to end: real videos of known content, real ffmpeg, real Dask processes,
the real CLI, and the real ``webdataset`` reader."""

from __future__ import annotations

import csv
import io
import os
import re
import tarfile

import pytest
from dataset_videos import (
    MOTION_FRAMES,
    SHOT_FRAMES,
    SHOT_STARTS,
    STILL_FRAMES,
    closest_frame,
    dark_left_bright_right,
    reference_frames,
    still_then_motion,
    three_shots,
)
from helpers import frames_csv, manifest, records_by_video, run_on
from PIL import Image
from videos import frame_number, make_video

pytestmark = [pytest.mark.slow, pytest.mark.cluster]


def extract_one(cluster, tmp_path, make, name: str, *args: str):
    """The CLI over one video that ``make`` writes as cam/NAME: the video, OUT and its folder."""
    video = make(tmp_path / "cam" / name)
    out = tmp_path / "out"
    res = run_on(cluster, str(tmp_path / "cam"), "-o", str(out), *args)
    assert res.returncode == 0, res.stderr
    return video, out, out / "cam" / name


def test_max_side_scales_the_longer_side_and_never_enlarges(shared_cluster, tmp_path):
    root = tmp_path / "cam"
    make_video(root / "wide.mp4", seconds=2, size="1280x720")
    make_video(root / "small.mp4", seconds=2, size="64x48")
    out = tmp_path / "out"
    res = run_on(
        shared_cluster, str(root), "-o", str(out), "--every", "10", "--max-side", "512", "--format", "png"
    )
    assert res.returncode == 0, res.stderr
    for name, size in (("wide.mp4", (512, 288)), ("small.mp4", (64, 48))):
        folder = out / "cam" / name
        rows = frames_csv(folder)
        assert [int(r["frame"]) for r in rows] == [0, 10, 20, 30, 40]
        for r in rows:
            with Image.open(folder / r["file"]) as im:
                assert im.size == size
            assert (int(r["width"]), int(r["height"])) == size
            assert frame_number(folder / r["file"]) == int(r["frame"])  # still the right frame
    by_name = records_by_video(out)
    assert (by_name["wide.mp4"]["out_width"], by_name["wide.mp4"]["out_height"]) == (512, 288)
    assert (by_name["wide.mp4"]["width"], by_name["wide.mp4"]["height"]) == (1280, 720)
    assert (by_name["small.mp4"]["out_width"], by_name["small.mp4"]["out_height"]) == (64, 48)


def test_square_takes_the_centre_of_the_picture(shared_cluster, tmp_path):
    _, out, folder = extract_one(
        shared_cluster, tmp_path, dark_left_bright_right, "halves.mp4", "--frames", "0,5", "--square", "256",
        "--format", "png",
    )  # fmt: skip
    for r in frames_csv(folder):
        with Image.open(folder / r["file"]) as im:
            assert im.size == (256, 256)
            row = [im.convert("L").getpixel((x, 128)) for x in range(256)]
        # The source's dark/bright edge is at its centre, so a centred crop has it at column 128
        # (a crop from the left edge would have it at 256 * 640 / 720 = 227).
        edge = next(x for x, v in enumerate(row) if v > 128)
        assert 126 <= edge <= 130
    (rec,) = manifest(out)
    assert (rec["out_width"], rec["out_height"]) == (256, 256)


def test_scenes_writes_the_first_frame_of_every_shot_with_its_score(shared_cluster, tmp_path):
    video, out, folder = extract_one(
        shared_cluster, tmp_path, three_shots, "shots.mp4", "--scenes", "--format", "png"
    )
    rows = frames_csv(folder)
    assert [int(r["frame"]) for r in rows] == SHOT_STARTS
    assert [float(r["timestamp"]) for r in rows] == pytest.approx([i / 25 for i in SHOT_STARTS])
    scores = [float(r["scene_score"]) for r in rows]
    assert scores[0] == 0 and all(s > 0.3 for s in scores[1:])
    # Each image is the named source frame (not the one before the cut, nor after).
    reference = reference_frames(video)
    assert [closest_frame(folder / r["file"], reference) for r in rows] == SHOT_STARTS
    (rec,) = manifest(out)
    assert rec["status"] == "ok" and rec["frames"] == 3 and rec["error"] is None
    assert rec["selection"] == "first frame of each shot (scene score above 0.3)"


def test_scenes_agree_with_pyscenedetect_on_the_known_cuts(shared_cluster, tmp_path):
    scenedetect = pytest.importorskip("scenedetect")
    video, out, _ = extract_one(
        shared_cluster, tmp_path, three_shots, "shots.mp4", "--scenes", "--pack", "tar"
    )
    with tarfile.open(out / "cam" / "shots.mp4.tar") as t:
        ours = sorted(int(m.name.split(".")[0]) for m in t if m.name.endswith(".jpg"))
        scene_list = t.extractfile("__scenes__").read().decode()  # scenes.csv, as a member readers skip
    assert [line.split(",")[1] for line in scene_list.splitlines()[1:]] == ["1", "41", "71"]
    # PySceneDetect's ContentDetector with its defaults (threshold 27, HSV differences).
    theirs = [scene[0].frame_num for scene in scenedetect.detect(str(video), scenedetect.ContentDetector())]
    assert ours == theirs == SHOT_STARTS


def test_scenes_csv_is_pyscenedetects_scene_list_for_the_found_cuts(shared_cluster, tmp_path):
    pytest.importorskip("scenedetect")
    from scenedetect import FrameTimecode
    from scenedetect.output import write_scene_list

    _, out, folder = extract_one(shared_cluster, tmp_path, three_shots, "shots.mp4", "--scenes")
    ours = list(csv.reader(io.StringIO((folder / "scenes.csv").read_text())))
    starts = [int(r["frame"]) for r in frames_csv(folder)]
    assert starts == SHOT_STARTS
    # PySceneDetect's own writer over the same cuts and rate (its detector not involved).
    bounds = [*starts, SHOT_FRAMES]
    scenes = [
        (FrameTimecode(a, 25.0), FrameTimecode(b, 25.0)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    buf = io.StringIO()
    write_scene_list(buf, scenes, include_cut_list=False)
    theirs = list(csv.reader(io.StringIO(buf.getvalue())))
    assert ours[0] == theirs[0] and len(ours) == len(theirs) == 4
    for column, name in enumerate(theirs[0]):
        assert [r[column] for r in ours[1:]] == [r[column] for r in theirs[1:]], name
    # Listed in the done record, so resume checks it like every other file.
    (rec,) = manifest(out)
    assert rec["status"] == "ok" and rec["frames"] == 3
    assert run_on(shared_cluster, str(tmp_path / "cam"), "-o", str(out), "--scenes").returncode == 0
    assert manifest(out)[-1]["status"] == "skipped"
    (folder / "scenes.csv").unlink()
    assert run_on(shared_cluster, str(tmp_path / "cam"), "-o", str(out), "--scenes").returncode == 0
    assert manifest(out)[-1]["status"] == "ok" and (folder / "scenes.csv").exists()


def test_dedup_drops_a_still_stretch_and_counts_it(shared_cluster, tmp_path):
    video, out, folder = extract_one(
        shared_cluster, tmp_path, still_then_motion, "still.mp4", "--dedup", "--format", "png"
    )
    kept = [0, *range(STILL_FRAMES, STILL_FRAMES + MOTION_FRAMES)]
    rows = frames_csv(folder)
    assert [int(r["frame"]) for r in rows] == kept
    reference = reference_frames(video)  # lossless: every motion frame is unlike any other
    assert [closest_frame(folder / r["file"], reference) for r in rows] == kept
    (rec,) = manifest(out)
    # 31 images of 60 frames is not "truncated": the check counts decoded frames.
    assert rec["status"] == "ok" and rec["frames"] == len(kept)
    assert rec["dropped"] == STILL_FRAMES - 1


def test_dedup_thins_out_the_selected_frames_only(shared_cluster, tmp_path):
    _, out, folder = extract_one(
        shared_cluster,
        tmp_path,
        still_then_motion,
        "still.mp4",
        "--every",
        "2",
        "--dedup",
        "--max-side",
        "32",
    )
    rows = frames_csv(folder)
    assert [int(r["frame"]) for r in rows] == [0, *range(STILL_FRAMES, STILL_FRAMES + MOTION_FRAMES, 2)]
    assert {(r["width"], r["height"]) for r in rows} == {("32", "24")}
    (rec,) = manifest(out)
    assert rec["dropped"] == STILL_FRAMES // 2 - 1  # of the 15 still frames offered, 14 dropped


def test_a_cut_off_video_is_still_called_truncated_with_scenes_and_dedup(shared_cluster, tmp_path):
    root = tmp_path / "cam"
    make_video(root / "full.mkv", seconds=4, fps=25)
    data = (root / "full.mkv").read_bytes()
    (root / "cut.mkv").write_bytes(data[: len(data) // 2])  # the header still says 100 frames
    (root / "full.mkv").unlink()
    for args in (["--scenes"], ["--dedup"]):
        out = tmp_path / ("out" + args[0])
        res = run_on(shared_cluster, str(root), "-o", str(out), *args)
        assert res.returncode == 1
        (rec,) = manifest(out)
        assert rec["status"] == "failed" and re.match(
            r"truncated: decoded \d+ frames, [\d.]+ s of the 4 s its header states \(about 100 frames\)",
            rec["error"],
        )


def test_pack_tar_is_one_webdataset_tar_per_video_and_resumes(shared_cluster, tmp_path):
    wds = pytest.importorskip("webdataset")
    root = tmp_path / "cam"
    make_video(root / "day1" / "clip.mp4", seconds=2)
    out = tmp_path / "out"
    res = run_on(shared_cluster, str(root), "-o", str(out), "--every", "10", "--pack", "tar")
    assert res.returncode == 0, res.stderr
    tar_path = out / "cam" / "day1" / "clip.mp4.tar"
    # One tar, nothing loose beside it, no temporary folder left.
    assert sorted(os.listdir(out / "cam" / "day1")) == ["clip.mp4.tar"]
    assert not (out / ".snhoo-tmp").exists()
    samples = list(wds.WebDataset(str(tar_path), shardshuffle=False).decode("pil"))
    assert [s["__key__"] for s in samples] == [f"{i:06d}" for i in range(0, 50, 10)]
    for s in samples:
        meta = s["json"]
        assert meta["index"] == int(s["__key__"]) and meta["timestamp"] == pytest.approx(meta["index"] / 25)
        assert meta["video"] == "day1/clip.mp4" and meta["root"] == str(root)
        buf = io.BytesIO()
        s["jpg"].save(buf, format="PNG")
        assert frame_number(buf) == meta["index"]
    (rec,) = manifest(out)
    assert rec["out"] == "cam/day1/clip.mp4.tar" and rec["frames"] == 5

    # Same command again: skipped, the tar untouched.
    before = os.stat(tar_path).st_ino
    res = run_on(shared_cluster, str(root), "-o", str(out), "--every", "10", "--pack", "tar")
    assert res.returncode == 0, res.stderr
    assert manifest(out)[-1]["status"] == "skipped" and os.stat(tar_path).st_ino == before
    # Another selection: redone, the tar replaced whole.
    res = run_on(shared_cluster, str(root), "-o", str(out), "--every", "25", "--pack", "tar")
    assert res.returncode == 0, res.stderr
    assert manifest(out)[-1]["status"] == "ok"
    with tarfile.open(tar_path) as t:
        assert [m.name for m in t if m.name.endswith(".jpg")] == ["000000.jpg", "000025.jpg"]
    # Folder instead of tar is a different output: done again, as a folder.
    res = run_on(shared_cluster, str(root), "-o", str(out), "--every", "25")
    assert res.returncode == 0, res.stderr
    assert manifest(out)[-1]["status"] == "ok"
    assert [r["frame"] for r in frames_csv(out / "cam" / "day1" / "clip.mp4")] == ["0", "25"]


def test_pack_tar_never_replaces_a_tar_it_did_not_write(shared_cluster, tmp_path):
    root = tmp_path / "cam"
    make_video(root / "clip.mp4", seconds=1)
    out = tmp_path / "out"
    (out / "cam").mkdir(parents=True)
    with tarfile.open(out / "cam" / "clip.mp4.tar", "w") as t:
        t.add(root / "clip.mp4", arcname="users-own-file.mp4")
    before = (out / "cam" / "clip.mp4.tar").read_bytes()
    res = run_on(shared_cluster, str(root), "-o", str(out), "--pack", "tar", "--every", "5")
    assert res.returncode == 1
    (rec,) = manifest(out)
    assert "not a finished snhoo-dask output" in rec["error"]
    assert (out / "cam" / "clip.mp4.tar").read_bytes() == before


def test_report_shows_contact_sheets_read_from_the_tars(shared_cluster, tmp_path):
    root = tmp_path / "cam"
    make_video(root / "a.mp4", seconds=2)
    out = tmp_path / "out"
    res = run_on(shared_cluster, str(root), "-o", str(out), "--every", "5", "--pack", "tar")
    assert res.returncode == 0, res.stderr
    html = (out / "report.html").read_text(encoding="utf-8")
    # The page's script draws the table from its JSON data; the sheets ride in it.
    sheets = re.findall(r'"data:image/jpeg;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(sheets) == 1
    import base64

    sheet = Image.open(io.BytesIO(base64.b64decode(sheets[0])))
    assert sheet.size[0] > 3 * 64  # four frames side by side

"""What a record states and which pictures it names, on the files that fooled them (issue 35):
a time in a long pause, a stream rate, a duration nobody wrote, a file without its index.

Every image is checked against plain ffmpeg's picture at the index the image names
(``-vsync passthrough``: each presented picture once), through the real CLI.
"""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest
from helpers import frames_csv, run_png, written_images
from videos import ffmpeg

pytestmark = pytest.mark.slow


def plain_pictures(path, *before_input: str) -> list[np.ndarray]:
    """Every picture plain ffmpeg presents (its own stream choice), as RGB at its own size."""
    probe = subprocess.run(
        ["ffmpeg", "-v", "info", "-nostdin", *before_input, "-i", str(path), "-vsync", "passthrough"]
        + ["-vf", "showinfo", "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    sizes = [tuple(map(int, m)) for m in re.findall(r"\bs:(\d+)x(\d+)\b", probe)]
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", *before_input, "-i", str(path), "-vsync", "passthrough"]
        + ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True,
        check=True,
    ).stdout
    out, pos = [], 0
    for w, h in sizes:
        out.append(np.frombuffer(raw[pos : pos + w * h * 3], np.uint8).reshape(h, w, 3))
        pos += w * h * 3
    assert pos == len(raw), (path, pos, len(raw))
    return out


@pytest.fixture(scope="module")
def gap(tmp_path_factory):
    """23.976 fps; frame 47 (1.96 s) is shown until 602.0 s, then 24 more frames."""
    root = tmp_path_factory.mktemp("gap") / "videos"
    root.mkdir()
    source = ["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=24000/1001:duration=3"]
    pause = ["-vf", "setpts='if(gt(N,47),PTS+600/TB,PTS)'", "-vsync", "passthrough"]
    x264 = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "30"]
    ffmpeg(*source, *pause, *x264, str(root / "pause.mp4"))
    vp9 = ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-g", "30"]
    ffmpeg(*source, *pause, *vp9, str(root / "pause.webm"))
    return root


@pytest.mark.parametrize("how", [(), ("--decode-all",)], ids=["default", "decode-all"])
def test_a_time_in_a_long_pause_is_the_frame_shown_then_on_every_path(gap, tmp_path, how):
    records = run_png(gap, tmp_path / "out", "--times", "00:00:01,00:10:00,601.9,00:20:00", *how, timeout=600)
    for name in ("pause.mp4", "pause.webm"):
        record = records[name]
        assert record["status"] == "ok", record
        got = written_images(tmp_path / "out", record)
        assert sorted(got) == [23, 47], (name, record["path"], record["missing"])
        # The last frame (602.936 s) is shown for one frame at the stream's rate, not for 8 s.
        (said,) = record["missing"]
        assert re.fullmatch(r"time 1200s \(video lasts 602\.9[78]\d*s\)", said), said
        pictures = plain_pictures(gap / name)
        for k, image in got.items():
            assert np.array_equal(image, pictures[k]), (name, k)
    assert records["pause.webm"]["path"].startswith("plain ("), records["pause.webm"]["path"]
    assert records["pause.mp4"]["path"].startswith("plain (" if how else "fast"), records["pause.mp4"]["path"]


def test_the_recorded_rate_is_the_streams_not_an_average_over_a_pause(gap, tmp_path):
    records = run_png(gap, tmp_path / "out", "--frames", "0")
    assert records["pause.mp4"]["fps"] == pytest.approx(24000 / 1001, abs=1e-5)
    assert records["pause.webm"]["fps"] == pytest.approx(24000 / 1001, abs=1e-3)


def test_a_webm_written_to_a_pipe_has_an_unknown_duration_not_zero(tmp_path):
    root = tmp_path / "videos"
    root.mkdir()
    made = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i", "testsrc2=size=160x96:rate=30:duration=2"]
        + ["-c:v", "libvpx", "-deadline", "realtime", "-f", "webm", "-"],
        capture_output=True,
        check=True,
    ).stdout
    (root / "piped.webm").write_bytes(made)
    record = run_png(root, tmp_path / "out", "--every", "10")["piped.webm"]
    assert record["status"] == "ok", record
    assert record["duration"] is None
    assert sorted(written_images(tmp_path / "out", record)) == [0, 10, 20, 30, 40, 50]


def test_an_mp4_without_its_moov_says_so(tmp_path):
    root = tmp_path / "videos"
    root.mkdir()
    whole = tmp_path / "whole.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x96:rate=30:duration=2", "-c:v", "libx264", str(whole))
    data = whole.read_bytes()
    (root / "unfinished.mp4").write_bytes(data[: data.rindex(b"moov") - 4])
    record = run_png(root, tmp_path / "out")["unfinished.mp4"]
    assert record["status"] == "failed"
    assert record["error"].startswith("not a readable video: moov atom not found"), record["error"]


@pytest.fixture(scope="module")
def streams(tmp_path_factory):
    """Files with more than one picture stream, made as cameras and taggers make them."""
    root = tmp_path_factory.mktemp("streams") / "videos"
    root.mkdir()
    small = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=2"]
    large = ["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30:duration=2,hue=h=90"]
    x264 = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "15"]
    both = [*small, *large, "-map", "0", "-map", "1", *x264]
    # Neither flagged default: ffmpeg takes the larger (stream 1).
    ffmpeg(*both, "-disposition:v:0", "0", "-disposition:v:1", "0", str(root / "two.mkv"))
    # The smaller flagged default: ffmpeg takes it (stream 0), as a player would.
    ffmpeg(*both, "-disposition:v:0", "default", "-disposition:v:1", "0", str(root / "flagged.mkv"))
    # A cover picture larger than the video: never the video.
    cover = tmp_path_factory.mktemp("cover") / "cover.png"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=1280x720:duration=1", "-frames:v", "1", str(cover))
    clip = tmp_path_factory.mktemp("clip") / "clip.mp4"
    ffmpeg(*small, *x264, str(clip))
    ffmpeg(
        *["-i", str(cover), "-i", str(clip), "-map", "0", "-map", "1", "-c", "copy"],
        *["-disposition:v:0", "attached_pic", str(root / "cover.mp4")],
    )
    return root


EXPECTED_STREAM = {"two.mkv": (1, 640, 360), "flagged.mkv": (0, 320, 240), "cover.mp4": (0, 320, 240)}


@pytest.mark.parametrize(
    "how", [("--every", "7"), ("--every", "7", "--decode-all"), ()], ids=["default", "decode-all", "all"]
)
def test_one_stream_per_video_the_one_ffmpeg_picks_named_in_the_record_on_every_path(streams, tmp_path, how):
    records = run_png(streams, tmp_path / "out", *how, timeout=600)
    for name, (index, width, height) in EXPECTED_STREAM.items():
        record = records[name]
        assert record["status"] == "ok", record
        assert (record["stream"], record["width"], record["height"]) == (index, width, height), record
        assert (record["out_width"], record["out_height"]) == (width, height), record
        got = written_images(tmp_path / "out", record)
        pictures = plain_pictures(streams / name)
        assert sorted(got) == list(range(0, 60, int(how[1]) if how else 1)), (name, record["path"])
        for k, image in got.items():
            assert np.array_equal(image, pictures[k]), (name, record["path"], k)


@pytest.fixture(scope="module")
def cropped(tmp_path_factory):
    """An H.264 stream coded 640x368 whose SPS crops 6/10/4/12 px (left/right/top/bottom): the
    header says 624x352; libavcodec presents 630x352 unless told ``-flags unaligned``."""
    root = tmp_path_factory.mktemp("crop") / "videos"
    root.mkdir()
    ffmpeg(
        *["-f", "lavfi", "-i", "testsrc2=size=640x368:rate=30:duration=12"],
        *["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "30"],
        *["-bsf:v", "h264_metadata=crop_left=6:crop_right=10:crop_top=4:crop_bottom=12"],
        str(root / "crop.mp4"),
    )
    return root


@pytest.mark.parametrize(
    "how",
    [
        ("--every", "7", "--split-seconds", "0"),
        ("--frames", "3,40,200,359", "--split-seconds", "0"),
        ("--every", "7", "--decode-all", "--split-seconds", "0"),
        ("--split-seconds", "0"),
        ("--every", "7", "--split-seconds", "5", "--workers", "2"),
        ("--split-seconds", "5", "--workers", "2", "--decode-all"),
    ],
    ids=["default", "exact-frames", "decode-all", "all-frames", "pieces", "pieces-decode-all"],
)
def test_an_unaligned_crop_is_the_exact_crop_never_rescaled_on_every_path(cropped, tmp_path, how):
    # The file is the case: plain ffmpeg's picture is 630 wide, the exact crop 624.
    assert plain_pictures(cropped / "crop.mp4")[0].shape == (352, 630, 3)
    exact = plain_pictures(cropped / "crop.mp4", "-flags", "unaligned")
    assert exact[0].shape == (352, 624, 3) and len(exact) == 360
    record = run_png(cropped, tmp_path / "out", *how, timeout=600)["crop.mp4"]
    assert record["status"] == "ok", record
    size = (record["width"], record["height"], record["out_width"], record["out_height"])
    assert size == (624, 352, 624, 352), record
    if "pieces" in how or "5" in how:
        assert record["pieces"] >= 2, record
    got = written_images(tmp_path / "out", record)
    assert got, record
    for k, image in got.items():
        # Byte-exact against the exact crop: a picture rescaled (630 squeezed to 624, or any
        # scale at all) is not equal.
        assert np.array_equal(image, exact[k]), (record["path"], k, image.shape)
    rows = frames_csv(tmp_path / "out" / record["out"])
    assert {(r["width"], r["height"]) for r in rows} == {("624", "352")}

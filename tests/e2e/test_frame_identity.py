"""The frame identity on the files that broke the old models, through the real CLI.

Each case names the path that must run (the record's ``path``), and checks the images
against plain ffmpeg: the decoder's k-th presented picture (``-vsync passthrough``) for
the image named k, and the fast path's images byte for byte against ``--decode-all``'s.
The broad cross product lives in ``test_input_matrix.py``; these are the cases a reader
of the record must be able to trust.
"""

from __future__ import annotations

import os
import random
import subprocess

import numpy as np
import pytest
from helpers import manifest, run_cli, run_png, written_images
from oracle import probe_frames
from videos import ffmpeg

pytestmark = pytest.mark.slow

SOURCE = ["-f", "lavfi", "-i", "testsrc2=size=160x96:rate=30:duration=4"]


def decoded(path, width: int, height: int) -> np.ndarray:
    """Every picture plain ffmpeg presents, at the written size, as RGB."""
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-vsync", "passthrough", "-s", f"{width}x{height}"]
        + ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)


def key_frames(path) -> list[int]:
    return [k for k, (_, key) in enumerate(probe_frames(str(path))) if key]


def assert_frames_are_ffmpegs(src, out, record: dict) -> dict[int, np.ndarray]:
    """Each image named k is exactly plain ffmpeg's k-th picture (PNG: the same RGB)."""
    pictures = decoded(src, record["out_width"], record["out_height"])
    got = written_images(out, record)
    assert got, record
    for k, image in got.items():
        assert k < len(pictures), (record["video"], k, len(pictures))
        assert np.array_equal(image, pictures[k]), (record["video"], k)
    return got


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus") / "videos"
    root.mkdir()
    plain = root / "plain.mp4"
    ffmpeg(*SOURCE, "-c:v", "libx264", "-preset", "veryfast", "-g", "30", str(plain))
    for angle in (90, 180, 270):
        ffmpeg(
            "-i",
            str(plain),
            "-c",
            "copy",
            "-metadata:s:v:0",
            f"rotate={angle}",
            str(root / f"rot{angle}.mp4"),
        )
    ffmpeg("-i", str(plain), "-c", "copy", "-color_range", "pc", str(root / "fullrange.mkv"))
    ffmpeg(*SOURCE, "-c:v", "libx264", "-preset", "medium", str(root / "camera.avi"))
    ffmpeg(*SOURCE, "-c:v", "mpeg4", "-bf", "2", "-q:v", "4", str(root / "asp.avi"))
    ffmpeg(
        *SOURCE,
        "-c:v",
        "libvpx-vp9",
        "-g",
        "30",
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
        str(root / "web.webm"),
    )
    return root


def test_rotated_and_colour_tagged_videos_keep_the_fast_path_and_its_images_are_ffmpegs(corpus, tmp_path):
    fast = run_png(corpus, tmp_path / "fast", "--every", "7")
    slow = run_png(corpus, tmp_path / "slow", "--every", "7", "--decode-all")
    for name in ("plain.mp4", "rot90.mp4", "rot180.mp4", "rot270.mp4", "fullrange.mkv"):
        record = fast[name]
        assert record["status"] == "ok" and record["path"].startswith("fast"), record
        got = assert_frames_are_ffmpegs(corpus / name, tmp_path / "fast", record)
        assert sorted(got) == list(range(0, 120, 7))
        assert slow[name]["path"] == "plain (--decode-all)"
        assert tree_of(tmp_path / "fast", record) == tree_of(tmp_path / "slow", slow[name])
    assert (fast["rot90.mp4"]["out_width"], fast["rot90.mp4"]["out_height"]) == (96, 160)


def tree_of(out, record: dict) -> dict[str, bytes]:
    folder = os.path.join(out, record["out"])
    return {
        n: open(os.path.join(folder, n), "rb").read() for n in os.listdir(folder) if n != ".snhoo-done.json"
    }


def test_avi_and_vp9_run_the_plain_path_saying_why_and_name_frames_by_the_decoders_count(corpus, tmp_path):
    records = run_png(corpus, tmp_path / "out", "--frames", "0,31,100,119,500")
    avi, webm = records["camera.avi"], records["web.webm"]
    assert avi["path"].startswith("plain (AVI"), avi
    assert webm["path"].startswith("plain (vp9"), webm
    assert records["asp.avi"]["path"].startswith("plain (mpeg4"), records["asp.avi"]
    for name in ("camera.avi", "web.webm", "asp.avi"):
        record = records[name]
        assert record["status"] == "ok"
        got = assert_frames_are_ffmpegs(corpus / name, tmp_path / "out", record)
        assert sorted(got) == [0, 31, 100, 119]
        assert record["missing"] == ["frame 500 (video has 120 frames)"]


def test_key_frames_are_the_ones_the_decoder_marks(corpus, tmp_path):
    records = run_png(corpus, tmp_path / "out", "--keyframes")
    for name in ("plain.mp4", "web.webm", "camera.avi", "asp.avi"):
        got = assert_frames_are_ffmpegs(corpus / name, tmp_path / "out", records[name])
        assert sorted(got) == key_frames(corpus / name), name
    assert records["plain.mp4"]["path"].startswith("fast"), records["plain.mp4"]


def test_an_edit_list_cut_is_numbered_from_its_first_shown_frame(tmp_path):
    root = tmp_path / "cut"
    root.mkdir()
    whole = tmp_path / "whole.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x96:rate=30:duration=8",
        "-c:v",
        "libx264",
        "-g",
        "60",
        str(whole),
    )
    ffmpeg("-ss", "3.3", "-i", str(whole), "-t", "3", "-c", "copy", str(root / "cut.mp4"))
    for selection in (["--keyframes"], ["--every", "7"], []):
        out = tmp_path / ("out" + "".join(selection))
        (record,) = run_png(root, out, *selection).values()
        assert record["status"] == "ok", record
        assert record["path"].startswith("plain (an edit list" if selection else "plain (all frames"), record
        got = assert_frames_are_ffmpegs(root / "cut.mp4", out, record)
        assert min(got) >= 0
        if selection == ["--keyframes"]:
            assert sorted(got) == key_frames(root / "cut.mp4")


def test_damage_on_a_fast_path_sends_the_video_to_the_plain_path_with_warnings(tmp_path):
    root = tmp_path / "v"
    root.mkdir()
    clean = tmp_path / "clean.mp4"
    ffmpeg(*SOURCE, "-c:v", "libx264", "-preset", "veryfast", str(clean))
    data = bytearray(clean.read_bytes())
    # Inside the first picture, which every selection decodes (frame 0).
    start = data.find(b"mdat") + 300
    rng = random.Random(3)
    for _ in range(12):
        data[rng.randrange(start, start + 1500)] ^= 0x55
    (root / "damaged.mp4").write_bytes(bytes(data))
    (record,) = run_png(root, tmp_path / "out", "--every", "7").values()
    assert record["status"] == "ok", record
    assert record["path"].startswith("plain (the fast path was rejected: ffmpeg reported"), record
    assert record["warnings"] and record["warnings"][0].startswith("ffmpeg: "), record


def test_a_picture_size_change_mid_stream_keeps_the_numbering(tmp_path):
    root = tmp_path / "v"
    root.mkdir()
    parts = []
    for size in ("160x96", "320x180"):
        part = tmp_path / f"{size}.ts"
        ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30:duration=2", "-c:v", "libx264", str(part))
        parts.append(part.read_bytes())
    (root / "joined.ts").write_bytes(b"".join(parts))
    (record,) = run_png(root, tmp_path / "out", "--every", "7", "--decode-all").values()
    assert record["status"] == "ok", record
    got = written_images(tmp_path / "out", record)
    assert sorted(got) == list(range(0, 120, 7))  # n did not restart at the size change
    pictures = decoded(root / "joined.ts", 160, 96)
    for k, image in got.items():
        # Scaled by another path than plain ffmpeg's after the change: nearest, not equal.
        errors = {
            j: np.abs(image.astype(int) - pictures[j]).mean() for j in range(max(0, k - 3), min(120, k + 4))
        }
        assert min(errors, key=errors.get) == k, (k, errors)


def test_a_huge_picture_mid_stream_is_refused_by_the_decoder(tmp_path):
    root = tmp_path / "v"
    root.mkdir()
    small, huge = tmp_path / "small.ts", tmp_path / "huge.ts"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x96:rate=25:duration=1", "-c:v", "libx264", str(small))
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "color=c=red:s=8000x8000:d=0.04:r=25",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        str(huge),
    )
    (root / "mixed.ts").write_bytes(small.read_bytes() + huge.read_bytes() + small.read_bytes())
    result = run_cli("run", str(root), "--out", str(tmp_path / "out"), "-q", "--max-pixels", "1000000")
    assert result.returncode == 1, result.stderr
    (record,) = manifest(tmp_path / "out")
    assert record["status"] == "failed"
    assert record["error"] == "a picture in the stream is 8000x8000, above --max-pixels 1000000"

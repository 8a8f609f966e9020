"""ffprobe's answer turned into the facts the plan relies on: size as decoded (rotation),
the real video stream (not cover art), the frame rate, and a frame count when the container
has none.  Tiny real files made by ffmpeg, probed by ``snhoo_dask.video.probe`` directly."""

from __future__ import annotations

import io
import subprocess
from fractions import Fraction

import pytest
from PIL import Image
from videos import make_video

from snhoo_dask.video.probe import ProbeError, probe


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True, timeout=60)


def first_frame_size(path) -> tuple[int, int]:
    """The picture size real ffmpeg decodes, which is what the reader gets."""
    png = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-frames:v", "1", "-f", "image2pipe", "-c:v", "png", "-"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    return Image.open(io.BytesIO(png)).size


def test_size_rate_duration_and_frame_count(tmp_path):
    info = probe(make_video(tmp_path / "v.mp4", seconds=2, fps=25))
    assert (info.codec, info.width, info.height) == ("h264", 64, 48)
    assert (info.frame_rate, info.fps, info.duration) == (Fraction(25), 25.0, 2.0)
    assert info.nb_frames == 50 and info.estimated_frames == 50


def test_an_ntsc_rate_stays_an_exact_fraction(tmp_path):
    info = probe(make_video(tmp_path / "v.mp4", seconds=1.001, fps="30000/1001", gop=30))
    assert info.frame_rate == Fraction(30000, 1001)
    assert info.nb_frames == 30


@pytest.mark.parametrize("angle", [90, 270, 180])
def test_a_rotated_phone_video_has_the_size_ffmpeg_decodes(tmp_path, angle):
    plain = make_video(tmp_path / "plain.mp4", seconds=0.4)
    rotated = tmp_path / "rotated.mp4"
    ffmpeg("-i", plain, "-c", "copy", "-metadata:s:v:0", f"rotate={angle}", str(rotated))
    info = probe(str(rotated))
    assert (info.width, info.height) == first_frame_size(rotated)
    assert (info.width, info.height) == ((48, 64) if angle in (90, 270) else (64, 48))


def test_cover_art_is_not_a_video(tmp_path):
    cover = tmp_path / "cover.png"
    Image.new("RGB", (32, 32), (200, 0, 0)).save(cover)
    song = tmp_path / "song.m4a"  # an MP4 container: opened, its only picture is cover art
    ffmpeg(
        "-f", "lavfi", "-i", "sine=d=1", "-i", str(cover), "-map", "0", "-map", "1",
        "-c:a", "aac", "-c:v", "mjpeg", "-disposition:v", "attached_pic", str(song),
    )  # fmt: skip
    with pytest.raises(ProbeError, match="^no video stream in this file$"):
        probe(str(song))


def test_an_audio_file_is_refused_with_a_reason(tmp_path):
    song = tmp_path / "song.mp3"
    ffmpeg("-f", "lavfi", "-i", "sine=d=1", str(song))
    with pytest.raises(ProbeError, match="not in a video container format"):
        probe(str(song))


def test_a_container_without_a_frame_count_is_estimated_from_duration(tmp_path):
    info = probe(make_video(tmp_path / "v.mkv", seconds=2, fps=25))  # Matroska stores no count
    assert info.nb_frames is None
    assert info.duration == pytest.approx(2.0, abs=0.05)
    assert info.estimated_frames == 50


def test_a_file_that_is_not_a_video_says_so(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("this is a text file\n")
    with pytest.raises(ProbeError, match="^not a readable video: "):
        probe(str(text))

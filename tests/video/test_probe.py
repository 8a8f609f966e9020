"""The in-process probe (PyAV) tells the same facts as ffprobe, on real ffmpeg-made videos,
and those facts are the ones the plan relies on: size as decoded (rotation), the real video
stream (not cover art), the frame rate, and a frame count when the container has none.
Tiny real files made by ffmpeg, probed by ``snhoo_dask.video.probe`` directly."""

from __future__ import annotations

import io
import json
import subprocess
from fractions import Fraction

import pytest
from PIL import Image
from videos import ffmpeg, make_video

from snhoo_dask.video.probe import ProbeError, probe


def ffprobe(path: str, packets: bool = False) -> dict:
    cmd = ["ffprobe", "-v", "error", "-of", "json", "-show_format", "-show_streams"]
    if packets:
        cmd += ["-show_packets", "-show_entries", "packet=stream_index,pts_time,flags:stream:format"]
    return json.loads(subprocess.run(cmd + ["file:" + path], capture_output=True, check=True).stdout)


def expected_facts(path: str) -> dict:
    """What the old ffprobe-based probe derived from ffprobe's JSON, field by field."""
    data = ffprobe(path)
    s = next(s for s in data["streams"] if s["codec_type"] == "video")
    rotation = 0
    for side in s.get("side_data_list") or []:
        rotation = int(float(side.get("rotation", 0))) % 360
    width, height = s["width"], s["height"]
    if rotation in (90, 270):
        width, height = height, width
    rate = Fraction(s["avg_frame_rate"]) if s["avg_frame_rate"] != "0/0" else Fraction(s["r_frame_rate"])
    duration = float(s.get("duration") or data["format"]["duration"])
    nb = s.get("nb_frames")
    return {
        "codec": s["codec_name"],
        "width": width,
        "height": height,
        "frame_rate": rate,
        "duration": round(duration, 6),
        "start_time": round(float(s.get("start_time") or 0), 6),
        "pix_fmt": s["pix_fmt"],
        "nb_frames": int(nb) if nb and int(nb) > 0 else None,
    }


def facts(path: str) -> dict:
    info = probe(path)
    return {
        "codec": info.codec,
        "width": info.width,
        "height": info.height,
        "frame_rate": info.frame_rate,
        "duration": info.duration,
        "start_time": round(info.start_time, 6),
        "pix_fmt": info.pix_fmt,
        "nb_frames": info.nb_frames,
    }


VIDEOS = {
    "plain.mp4": {},
    "yuv420.mp4": {"extra": ["-pix_fmt", "yuv420p"]},
    "odd444.mp4": {"size": "65x49"},
    "odd420.mkv": {"size": "65x49", "codec": "ffv1", "extra": ["-pix_fmt", "yuv420p"]},
    "ntsc.mkv": {"fps": 30, "extra": ["-r", "30000/1001"]},
    "mpeg4.avi": {"codec": "mpeg4"},
    "offset.ts": {"extra": ["-f", "mpegts"]},
    "webm.webm": {"codec": "libvpx-vp9", "extra": ["-b:v", "100k"]},
}


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe")
    for name, kwargs in VIDEOS.items():
        make_video(root / name, seconds=2, **{"fps": 10, **kwargs})
    # Phones write the display rotation into the track header; ffmpeg sets it when remuxing.
    for angle in ROTATIONS:
        ffmpeg(
            "-i", str(root / "yuv420.mp4"), "-c", "copy",
            "-metadata:s:v:0", f"rotate={angle}", str(root / f"rotated{angle}.mp4"),
        )  # fmt: skip
    return root


ROTATIONS = (90, 180, 270)
NAMES = sorted(VIDEOS) + [f"rotated{a}.mp4" for a in ROTATIONS]


@pytest.mark.parametrize("name", NAMES)
def test_in_process_facts_equal_ffprobes(videos, name):
    path = str(videos / name)
    assert facts(path) == expected_facts(path)


def test_rotated_videos_report_the_upright_size(videos):
    sizes = {
        a: (probe(str(videos / f"rotated{a}.mp4")).width, probe(str(videos / f"rotated{a}.mp4")).height)
        for a in ROTATIONS
    }
    assert sizes == {90: (48, 64), 180: (64, 48), 270: (48, 64)}


def test_files_that_are_no_video_say_why(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("this is a text file\n")
    with pytest.raises(ProbeError, match="^not a readable video: "):
        probe(str(text))
    audio = tmp_path / "audio.mp4"
    ffmpeg("-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac", str(audio))
    with pytest.raises(ProbeError, match="^no video stream in this file$"):
        probe(str(audio))


def test_playlists_and_concat_lists_are_refused_with_the_reason(tmp_path):
    hls = tmp_path / "list.mp4"
    hls.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n/elsewhere/seg0.ts\n#EXT-X-ENDLIST\n")
    with pytest.raises(ProbeError, match=r"not a video file: an HLS playlist \(hls\), which would make"):
        probe(str(hls))
    concat = tmp_path / "list2.mp4"
    concat.write_text("ffconcat version 1.0\nfile /elsewhere/a.mp4\n")
    with pytest.raises(ProbeError, match=r"not a video file: a concat list \(concat\)"):
        probe(str(concat))


# -- the facts the plan relies on, on tiny files made for each test ---------------------------


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

"""The in-process probe (PyAV) tells the same facts as ffprobe, on real ffmpeg-made videos."""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction

import pytest
from videos import make_video

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
        subprocess.run(
            ["ffmpeg", "-v", "error", "-i", str(root / "yuv420.mp4"), "-c", "copy"]
            + ["-metadata:s:v:0", f"rotate={angle}", str(root / f"rotated{angle}.mp4")],
            check=True,
        )
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
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac", str(audio)], check=True
    )
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

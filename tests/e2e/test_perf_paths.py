"""The fast paths pick the same frames as before and stay honest: real ffmpeg, real Dask, the real CLI.

- JPEG from the decoder's YUV 4:2:0 planes against the RGB path (PNG, and RGB-in JPEG);
- exact frames and times, plain and fast, each image the frame it names;
- a playlist or concat list saved as a video is failed, and nothing outside is read;
- a file that is no video is failed before it is copied to scratch;
- the stall watchdog still kills an ffmpeg that produces nothing.
"""

from __future__ import annotations

import io
import os
import subprocess
import time

import numpy as np
import pytest
from helpers import image_names, records_by_video, run_on
from oracle import psnr
from PIL import Image
from videos import frame_number, make_video

from snhoo_dask.output.writers import JpegEncoder, PngEncoder, YuvFrame
from snhoo_dask.video.probe import probe
from snhoo_dask.video.reader import FrameReader, can_hand_planes

pytestmark = pytest.mark.cluster


def shown_frames(folder) -> dict[int, int]:
    """{frame index in the file name: frame the picture shows}."""
    return {int(n.split(".")[0]): frame_number(os.path.join(folder, n)) for n in image_names(folder)}


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.fixture(scope="module")
def grey420(tmp_path_factory):
    """Grey-level videos in 4:2:0, the pixel format that takes the planes path."""
    root = tmp_path_factory.mktemp("grey") / "cam"
    make_video(root / "clip.mp4", seconds=4, fps=25, gop=10, extra=["-pix_fmt", "yuv420p"])
    # One frame a second, each a key frame: 100 frames, each 3 apart an IDR picture of its own.
    make_video(root / "slow.mkv", seconds=100, fps=1, gop=1, extra=["-pix_fmt", "yuv420p"])
    return root


SPECS = [
    ([], {"clip.mp4": list(range(100)), "slow.mkv": list(range(100))}),
    (["--every", "7"], {"clip.mp4": list(range(0, 100, 7)), "slow.mkv": list(range(0, 100, 7))}),
    # 34 frames: in slow.mkv each its own IDR picture (the fast path feeds just those).
    (
        ["--frames", ",".join(map(str, [0, 1, *range(4, 100, 3)]))],
        {"clip.mp4": [0, 1, *range(4, 100, 3)], "slow.mkv": [0, 1, *range(4, 100, 3)]},
    ),
    (["--times", "0,1.5,2.04,3.99,50,97.5"], {"clip.mp4": [0, 37, 51, 99], "slow.mkv": [0, 1, 2, 3, 50, 97]}),
]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["jpg", "png"])
@pytest.mark.parametrize("spec, expected", SPECS, ids=["all", "every", "frames", "times"])
def test_planes_and_rgb_paths_write_exactly_the_selected_frames(
    shared_cluster, grey420, tmp_path, fmt, spec, expected
):
    assert can_hand_planes(probe(str(grey420 / "clip.mp4")))  # jpg here really takes the planes path
    out = tmp_path / "out"
    r = run_on(shared_cluster, str(grey420), "--out", str(out), "--format", fmt, *spec)
    assert r.returncode == 0, r.stderr
    recs = records_by_video(out)
    for name, frames in expected.items():
        shown = shown_frames(out / "cam" / name)
        assert sorted(shown) == frames, name
        assert all(shown[i] == i for i in frames), {i: s for i, s in shown.items() if s != i}
        assert recs[name]["frames"] == len(frames)


@pytest.fixture(scope="module")
def colour(tmp_path_factory):
    """Colour test pictures in the pixel formats and ranges cameras write."""
    root = tmp_path_factory.mktemp("colour")
    made = {}
    for name, args in {
        "tv.mp4": ["-pix_fmt", "yuv420p"],
        "full.mp4": ["-pix_fmt", "yuvj420p"],
        "odd.mkv": ["-c:v", "ffv1", "-pix_fmt", "yuv420p"],
        "bt709.mp4": ["-pix_fmt", "yuv420p", "-colorspace", "bt709", "-color_primaries", "bt709"],
    }.items():
        # Odd-sized: smooth colour ramps, so a misplaced plane (not chroma interpolation) would show.
        src = (
            "nullsrc=s=65x49:r=10,geq=lum='60+X*2':cb='110+Y/2':cr='140-X/4'"
            if name == "odd.mkv"
            else "testsrc2=s=320x240:r=10"
        )
        path = str(root / name)
        codec = [] if "-c:v" in args else ["-c:v", "libx264", "-crf", "10"]
        subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", src, "-t", "1", *codec, *args, path], check=True
        )
        made[name] = path
    return made


def read_all(path: str, planes: bool) -> list:
    info = probe(path)
    reader = FrameReader(path, info, {}, {}, 30, planes=planes)
    frames = []
    for f in reader.frames():
        frames.append(YuvFrame(f.y.copy(), f.u.copy(), f.v.copy()) if planes else f.copy())
    assert reader.finish(True) is None
    return frames


@pytest.mark.parametrize("name", ["tv.mp4", "full.mp4"])
def test_jpeg_from_planes_matches_jpeg_from_rgb(colour, name):
    path = colour[name]
    info = probe(path)
    assert can_hand_planes(info)
    planes, rgb = read_all(path, True), read_all(path, False)
    assert len(planes) == len(rgb) == 10
    assert (planes[0].width, planes[0].height) == (info.width, info.height)
    jpeg = JpegEncoder(90)
    for p, r in zip(planes, rgb, strict=True):
        from_planes, from_rgb = decode(jpeg.encode(p)), decode(jpeg.encode(r))
        assert from_planes.shape == r.shape
        # Both are q90 JPEGs of the same decoded picture: as close to it as each other.
        assert psnr(from_planes, r) > psnr(from_rgb, r) - 2
        assert psnr(from_planes, from_rgb) > 35
        # Whatever needs pixels (PNG) gets the same picture from the planes.
        assert psnr(decode(PngEncoder().encode(p)), r) > 35


def test_other_colour_matrices_keep_the_rgb_path(colour):
    assert probe(colour["bt709.mp4"]).color_matrix == "bt709"
    assert not can_hand_planes(probe(colour["bt709.mp4"]))


def test_odd_sizes_keep_the_rgb_path(colour):
    info = probe(colour["odd.mkv"])
    assert (info.width, info.height) == (65, 49) and not can_hand_planes(info)
    assert not can_hand_planes(probe(colour["tv.mp4"]), (511, 287))  # a resized, odd output
    assert can_hand_planes(probe(colour["tv.mp4"]), (512, 288))


# -- ffmpeg reads only the staged file ---------------------------------------------------------


def _never_read(path) -> None:
    """Set the access time far in the past: any read moves it (relatime), so a later check tells."""
    os.utime(path, (0, os.stat(path).st_mtime))


@pytest.mark.slow
def test_playlists_and_concat_lists_fail_and_nothing_outside_is_read(shared_cluster, tmp_path):
    root, outside, out = tmp_path / "cam", tmp_path / "outside", tmp_path / "out"
    make_video(root / "good.mp4", seconds=1, fps=10)
    outside.mkdir()
    src = make_video(outside / "secret.mp4", seconds=4, fps=10)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", src, "-c", "copy", "-f", "hls", "-hls_time", "1"]
        + ["-hls_list_size", "0", str(outside / "list.m3u8")],
        check=True,
    )
    segments = sorted(outside.glob("*.ts"))
    playlist = (outside / "list.m3u8").read_text()
    for seg in segments:
        playlist = playlist.replace(f"\n{seg.name}\n", f"\n{seg}\n")
    (root / "playlist.mp4").write_text(playlist)
    (root / "joined.mp4").write_text(f"ffconcat version 1.0\nfile {src}\n")
    watched = [*segments, outside / "secret.mp4"]
    for path in watched:
        _never_read(path)
    open(segments[0], "rb").read(1)  # the check itself must be able to see a read
    if os.stat(segments[0]).st_atime == 0:
        pytest.skip("this file system does not record reads (noatime)")
    _never_read(segments[0])

    r = run_on(shared_cluster, str(root), "--out", str(out))

    assert r.returncode == 1, r.stderr
    recs = records_by_video(out)
    assert recs["good.mp4"]["status"] == "ok"
    assert recs["playlist.mp4"]["status"] == "failed" and recs["playlist.mp4"]["frames"] == 0
    assert recs["playlist.mp4"]["error"] == (
        "not a video file: an HLS playlist (hls), which would make ffmpeg read other files"
    )
    assert recs["joined.mp4"]["status"] == "failed" and recs["joined.mp4"]["frames"] == 0
    assert recs["joined.mp4"]["error"].startswith("not a video file: a concat list (concat)")
    assert not (out / "cam" / "playlist.mp4").exists() and not (out / "cam" / "joined.mp4").exists()
    assert [p.name for p in watched if os.stat(p).st_atime != 0] == []


def test_ffmpeg_itself_refuses_a_playlist(tmp_path):
    """Even handed a playlist directly (as the probe never would), ffmpeg does not open it."""
    make_video(tmp_path / "src.mp4", seconds=2, fps=10)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(tmp_path / "src.mp4"), "-c", "copy", "-f", "hls"]
        + [str(tmp_path / "list.m3u8")],
        check=True,
    )
    info = probe(str(tmp_path / "src.mp4"))
    reader = FrameReader(str(tmp_path / "list.m3u8"), info, {}, {}, 30)
    assert list(reader.frames()) == []
    reason = reader.finish(True)
    assert reason and "ffmpeg failed while decoding" in reason


@pytest.mark.slow
def test_a_file_that_is_no_video_is_failed_before_it_is_copied(shared_cluster, tmp_path):
    root, out = tmp_path / "cam", tmp_path / "out"
    make_video(root / "good.mp4", seconds=1, fps=10)
    with open(root / "huge.mp4", "wb") as f:  # 3 GB, sparse: a copy would take long and fill scratch
        f.truncate(3 * 2**30)
    scratch = tmp_path / "scratch-is-a-file"
    scratch.write_text("")  # so any copy to scratch fails with its own reason

    r = run_on(shared_cluster, str(root), "--out", str(out), "--scratch", str(scratch), "--stage")

    recs = records_by_video(out)
    assert recs["huge.mp4"]["status"] == "failed"
    assert recs["huge.mp4"]["error"].startswith("not a readable video: ")
    # The good video did reach the copy, which is how we know the bad one never did.
    assert recs["good.mp4"]["error"].startswith("could not copy the video to local scratch")
    assert r.returncode == 1


def test_a_stalled_ffmpeg_is_killed_and_reported(tmp_path):
    make_video(tmp_path / "src.mp4", seconds=1, fps=10)
    info = probe(str(tmp_path / "src.mp4"))
    fifo = tmp_path / "stuck.mp4"
    os.mkfifo(fifo)  # ffmpeg blocks opening it: nobody ever writes
    started = time.monotonic()
    reader = FrameReader(str(fifo), info, {}, {}, 2)
    assert list(reader.frames()) == []
    assert reader.finish(True) == "timed out: ffmpeg produced no frame for 2 s"
    assert time.monotonic() - started < 30


def test_exact_frames_yield_each_requested_frame_in_order(grey420):
    """Straight through extraction's writer: 34 exact frames of one-IDR-a-second video, plain
    and fast (only their packets fed), and every image is the right frame."""
    from plans import take

    from snhoo_dask.frames.parsing import parse_selection
    from snhoo_dask.frames.plans import plan
    from snhoo_dask.packets.thinning import fast_plan

    path = str(grey420 / "slow.mkv")
    info = probe(path)
    wanted = [0, 1, *range(4, 100, 3)]
    sel = parse_selection(frames=",".join(map(str, wanted)))
    fast = fast_plan(sel, info, path, None, None)
    assert not isinstance(fast, str), fast
    assert fast.undecoded > 0
    plain, fed = take(path, info, plan(sel, info)), take(path, info, fast)
    assert plain.index == fed.index == wanted
    assert plain.shown() == wanted, [(i, s) for i, s in zip(wanted, plain.shown(), strict=True) if i != s]
    assert fed.data == plain.data

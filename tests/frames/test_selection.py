"""Frame specifications: what users type, and the images real ffmpeg then gives (frame k is
the k-th picture the decoder presents), on the plain path and on the fast path."""

import math
import subprocess
from dataclasses import replace
from fractions import Fraction

import pytest
from plans import take
from videos import make_video

from snhoo_dask.frames.filters import FilterError
from snhoo_dask.frames.parsing import parse_selection, parse_time
from snhoo_dask.frames.pickers import TIME_TOLERANCE
from snhoo_dask.frames.plans import plan
from snhoo_dask.frames.selection import (
    MODE_BY_NAME,
    MODE_LIST,
    STREAMING_MODES,
    SelectionError,
    count_selected,
    index_expr,
)
from snhoo_dask.options import DEFAULTS
from snhoo_dask.packets.thinning import fast_plan
from snhoo_dask.settings import dataset_options
from snhoo_dask.video.probe import probe


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(every=0), "--every must be (1 or more|from 1 to)"),
        (dict(fps="fast"), "--fps wants a number"),
        (dict(fps="-2"), "--fps must be above 0"),
        (dict(frames="1,,2"), "comma-separated"),
        (dict(frames="ten"), "--frames wants frame numbers"),
        (dict(frames="20-10"), "runs backwards"),
        (dict(frames="0-200000"), "more than 100000"),
        (dict(times="1:75"), "seconds must be below 60"),
        (dict(times="noon"), "--times wants times"),
        (dict(every=2, keyframes=True), "choose one frame selection"),
    ],
)
def test_bad_specs_say_why(kwargs, message):
    with pytest.raises(SelectionError, match=message):
        parse_selection(**kwargs)


def test_times_accept_seconds_and_clock_forms():
    assert parse_time("1.5") == 1.5
    assert parse_time("00:01:02.250") == pytest.approx(62.25)
    assert parse_time("01:02") == 62


@pytest.mark.parametrize(
    "every, words",
    [
        (1, "every frame"),
        (2, "every 2nd frame"),
        (3, "every 3rd frame"),
        (12, "every 12th frame"),
        (21, "every 21st frame"),
        (30, "every 30th frame"),
        (113, "every 113th frame"),
    ],
)
def test_every_reads_as_english_in_the_summary_and_records(every, words):
    assert parse_selection(every=every).describe() == words


def test_frames_are_sorted_deduplicated_and_ranges_expand():
    sel = parse_selection(frames="30,10-12,10")
    assert sel.frames == (10, 11, 12, 30)


# -- plans checked against real ffmpeg ------------------------------------------------------
# An NTSC-rate video (30000/1001, 300 frames): the rate where rounding index <-> time goes
# wrong first.  make_video's grey code tells which source frame each decoded picture is.

NTSC = Fraction(30000, 1001)


@pytest.fixture(scope="module")
def ntsc_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("ntsc") / "ntsc.mp4"
    return make_video(path, seconds=10.01, fps="30000/1001", gop=30)


def both_paths(video: str, **spec):
    """The images of the plain plan and of the fast plan (the same, byte for byte, when
    there is a fast plan; ``None`` for it when there is none)."""
    info = probe(video)
    sel = parse_selection(**spec)
    plain = take(video, info, plan(sel, info))
    fast_one = fast_plan(sel, info, video, None, None)
    if isinstance(fast_one, str):
        return plain, None
    fast = take(video, info, fast_one)
    assert fast.index == plain.index and fast.timestamp == plain.timestamp
    assert fast.data == plain.data, "the fast path's images are the plain path's"
    assert fast.record.missing == plain.record.missing
    return plain, fast


def fps_frames(fps: Fraction, rate: Fraction, total: int) -> list[int]:
    """--fps R by its definition: the first frame of each 1/R-second interval."""
    out, last = [], None
    for k in range(total):
        interval = math.floor((float(k / rate) + TIME_TOLERANCE) * fps)
        if last is None or interval > last:
            out.append(k)
        last = interval
    return out


def test_exact_frames_past_the_end_are_reported_not_dropped(ntsc_video):
    plain, fast = both_paths(ntsc_video, frames="0,299,300,5000")
    assert fast is not None
    assert plain.index == [0, 299] and plain.shown() == [0, 299 % 110]
    assert plain.record.missing == ["frame 300 (video has 300 frames)", "frame 5000 (video has 300 frames)"]


def test_fps_takes_the_first_frame_of_each_interval(tmp_path):
    video = make_video(tmp_path / "25.mp4", seconds=4, fps=25)
    plain, _ = both_paths(video, fps="2")
    assert plain.index == [0, 13, 25, 38, 50, 63, 75, 88] and plain.shown() == plain.index


@pytest.mark.parametrize("spec", [dict(every=7), dict(fps="10"), dict(fps="0.5"), dict(fps="2997/1000")])
def test_streaming_selections_label_exactly_what_ffmpeg_selects(ntsc_video, spec):
    plain, fast = both_paths(ntsc_video, **spec)
    sel = parse_selection(**spec)
    if sel.mode == "every":
        expected = list(range(0, 300, 7))
    else:
        expected = fps_frames(sel.fps, NTSC, 300)
    assert plain.index == expected
    assert plain.shown() == [i % 110 for i in expected]  # each image is the frame it names
    assert plain.timestamp == [round(float(i / NTSC), 6) for i in expected]
    assert len(expected) == count_selected(sel, NTSC, 300)


def test_every_and_fps_counts_at_the_ntsc_rate(ntsc_video):
    plain, _ = both_paths(ntsc_video, every=7)
    assert len(plain.index) == 43  # 0, 7, ..., 294
    # One frame per second of 10.01 s: frames 0, 30, 60, ..., 270 (0 s .. 9.009 s), 10 in all.
    plain, _ = both_paths(ntsc_video, fps="1")
    assert plain.index == [-((-k * 30000) // 1001) for k in range(10)]


@pytest.mark.parametrize("fps", ["30000/1001", "29.97003", "30", "60"])
def test_fps_at_or_above_the_video_rate_takes_every_frame_once(ntsc_video, fps):
    info = probe(ntsc_video)
    p = plan(parse_selection(fps=fps), info)
    assert p.streaming
    taken = take(ntsc_video, info, p)
    assert taken.index == list(range(300))  # no duplicates, none left out
    assert taken.shown() == [i % 110 for i in range(300)]


def test_exact_frames_land_on_each_requested_frame(ntsc_video):
    wanted = [0, 1, 29, 30, 31, 89, 150, 151, 152, 299]
    plain, fast = both_paths(ntsc_video, frames=",".join(map(str, wanted)))
    assert fast is not None
    assert plain.index == wanted and plain.record.missing == []
    assert plain.shown() == [i % 110 for i in wanted]


def test_times_pick_the_frame_shown_at_that_time(ntsc_video):
    # 1.001 s is exactly frame 30 at 30000/1001; 1.0 s is still frame 29 on screen.
    plain, fast = both_paths(ntsc_video, times="0,1,1.001,5.5,10.0,10.5")
    assert fast is not None
    assert plain.index == [0, 29, 30, 164, 299]
    assert plain.record.missing == ["time 10.5s (video lasts 10.01s)"]
    assert plain.shown() == [i % 110 for i in (0, 29, 30, 164, 299)]


def test_many_frames_past_the_end_are_summarised_and_none_left_is_nothing_to_do(ntsc_video):
    plain, _ = both_paths(ntsc_video, frames="298-330")
    assert plain.index == [298, 299]
    missing = plain.record.missing
    assert missing[:2] == ["frame 300 (video has 300 frames)", "frame 301 (video has 300 frames)"]
    assert len(missing) == 21 and missing[-1] == "and 11 more"
    info = probe(ntsc_video)
    sel = parse_selection(frames="300,400")
    assert isinstance(fast_plan(sel, info, ntsc_video, None, None), str)
    nothing = take(ntsc_video, info, plan(sel, info))
    assert nothing.index == [] and len(nothing.record.missing) == 2


def test_a_long_list_of_frames_is_one_range_for_ffmpeg_and_exact_in_the_images(ntsc_video):
    # Past MAX_TERMS_PER_PASS runs, ffmpeg keeps one range and the picker takes out the rest.
    info = probe(ntsc_video)
    near = plan(parse_selection(frames="0,59,119"), info)
    assert [p.select for p in near.passes] == ["eq(n,0)+eq(n,59)+eq(n,119)"]
    assert index_expr("n", list(range(0, 1000, 2))) == "between(n,0,998)"  # 500 runs
    assert index_expr("n", [*range(10, 20), 30]) == "between(n,10,19)+eq(n,30)"
    many = plan(parse_selection(frames=",".join(map(str, range(0, 300, 2)))), info)
    taken = take(ntsc_video, info, many)
    assert taken.index == list(range(0, 300, 2)) and taken.shown() == [i % 110 for i in taken.index]


def _ffprobe(video: str, entries: str) -> list[str]:
    """ffprobe's CSV lines for these entries of the first video stream."""
    cmd = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", entries, "-of", "csv=p=0"]
    return subprocess.run([*cmd, video], capture_output=True, text=True, check=True).stdout.split()


def _key_frames(video: str) -> set[int]:
    """The key frames as ffprobe lists them (the frames the decoder marks key: IDR pictures)."""
    start = float(_ffprobe(video, "stream=start_time")[0])
    rows = (line.split(",")[:2] for line in _ffprobe(video, "packet=pts_time,flags"))
    return {round((float(t) - start) * NTSC) for t, flags in rows if "K" in flags}


@pytest.mark.parametrize("ext", ["mp4", "ts", "mkv"])
def test_exact_frames_and_key_frames_are_the_same_in_every_container(tmp_path, ext):
    # MPEG-TS is why: its times are of the decode, its seeks land on the next key frame;
    # frames are counted as the decoder presents them, in every container alike.
    video = make_video(tmp_path / f"ntsc.{ext}", seconds=10.01, fps="30000/1001", gop=30)
    keys = _key_frames(video)
    # gop=30, and x264 starts one more where the grey code wraps (frames 110, 220)
    assert {30, 90, 140, 220, 280} <= keys and not {151, 141} & keys
    wanted = [30, 90, 151, 220, 280]
    plain, fast = both_paths(video, frames=",".join(map(str, wanted)))
    assert fast is not None, ext
    assert plain.index == wanted and plain.shown() == [i % 110 for i in wanted]
    # --keyframes: the frames the decoder marks key (x264's closed GOPs: its IDR pictures).
    plain, fast = both_paths(video, keyframes=True)
    assert fast is not None, ext
    assert plain.index == sorted(keys) and plain.shown() == [i % 110 for i in sorted(keys)]


def test_exact_frames_in_the_first_gop_of_mpeg_ts_with_b_frames_are_found(tmp_path):
    # With B-frames the first frame is decoded before it is shown: MPEG-TS's first decode
    # time is before the first presentation time, and frame 20 is still the 21st shown.
    # (codec "h264" is x264 too, but not make_video's lossless settings, which give no B-frames)
    extra = ["-x264-params", "b-adapt=0:bframes=3", "-pix_fmt", "yuv420p"]
    video = make_video(tmp_path / "bframes.ts", seconds=4, fps=30, gop=60, codec="h264", extra=extra)
    first_dts, start = (_ffprobe(video, e)[0].strip(",") for e in ("packet=dts", "stream=start_pts"))
    assert int(first_dts) < int(start)  # the first frame is decoded before it is shown
    plain, fast = both_paths(video, frames="20,90")
    assert fast is not None
    assert plain.index == [20, 90] and plain.shown() == [20, 90 % 110]


SAMPLE_VALUES = {"every": "5", "fps": "2", "frames": "0,10", "times": "0.5", "scenes": "0.4"}


@pytest.mark.parametrize("mode", [m.name for m in MODE_LIST])
def test_each_mode_answers_every_question_from_its_one_object(mode):
    """A mode is one object: the web's typed value, the description, the plain pass and the
    fast path's questions all come from it, and agree with the CLI's parse."""
    kind = MODE_BY_NAME[mode]
    sel = parse_selection(**kind.arguments(SAMPLE_VALUES.get(mode, "")))
    assert sel.mode == mode and sel.kind is kind
    assert sel.describe() and kind.label
    select, picker = kind.plain(sel)
    assert (select is None) == (mode == "all") and picker is not None
    assert (kind.slow_reason(sel) is None) == (mode in ("every", "fps", "frames", "times", "keyframes"))


# The modes whose frames come from one stream of every decoded picture: the ones --dedup
# thins out (docs/datasets.md).  Stated here, not read from the modes' flags.
DEDUP_MODES = {"all", "every", "fps", "scenes"}


@pytest.mark.parametrize("mode", [m.name for m in MODE_LIST])
def test_dedup_is_taken_with_the_streaming_modes_and_refused_with_the_others(mode):
    """--dedup with a mode that picks frames one by one is a usage error naming the mode;
    with a streaming mode it is a plan whose one pass deduplicates."""
    sel = parse_selection(**MODE_BY_NAME[mode].arguments(SAMPLE_VALUES.get(mode, "")))
    dedup = replace(DEFAULTS, dedup=True)
    if mode in DEDUP_MODES:
        assert dataset_options(sel, dedup).dedup
    else:
        with pytest.raises(FilterError, match=f"not with --{mode}:"):
            dataset_options(sel, dedup)
    assert set(STREAMING_MODES) == DEDUP_MODES

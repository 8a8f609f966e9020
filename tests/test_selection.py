"""Frame specifications: what users type, and the ffmpeg passes it becomes."""

from dataclasses import replace
from fractions import Fraction

import pytest

from snhoo_dask.probe import VideoInfo
from snhoo_dask.selection import SelectionError, parse_selection, parse_time, plan

INFO = VideoInfo(
    codec="h264",
    width=64,
    height=48,
    fps=25.0,
    duration=4.0,
    start_time=0.0,
    pix_fmt="yuv420p",
    frame_rate=Fraction(25),
    nb_frames=100,
)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(every=0), "--every must be 1 or more"),
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


def test_frames_are_sorted_deduplicated_and_ranges_expand():
    sel = parse_selection(frames="30,10-12,10")
    assert sel.frames == (10, 11, 12, 30)


def test_exact_frames_past_the_end_are_reported_not_dropped():
    p = plan(parse_selection(frames="0,99,100,5000"), INFO)
    assert p.expected_count == 2
    assert p.missing == ["frame 100 (video has 100 frames)", "frame 5000 (video has 100 frames)"]


def test_nearby_frames_share_one_seek_and_far_ones_seek_again():
    p = plan(parse_selection(frames="0,10,20,2000"), replace(INFO, nb_frames=3000))
    assert [[r.index for r in x.expected] for x in p.passes] == [[0, 10, 20], [2000]]
    assert "-ss" not in p.passes[0].input_options  # frame 0 needs no seek
    assert float(p.passes[1].input_options["-ss"]) == pytest.approx(1999.5 / 25)


def test_fps_count_matches_the_frames_ffmpeg_will_select():
    p = plan(parse_selection(fps="2"), INFO)
    assert p.expected_count == 8
    assert [p.passes[0].ref(k).index for k in range(8)] == [0, 13, 25, 38, 50, 63, 75, 88]

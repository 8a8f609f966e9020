"""Frame specifications: what users type, and the ffmpeg passes it becomes."""

import subprocess
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
from videos import make_video

from snhoo_dask.probe import VideoInfo, key_frames_before
from snhoo_dask.selection import (
    FrameRef,
    Pass,
    SelectionError,
    join_seeks,
    parse_selection,
    parse_time,
    plan,
    seek_targets,
)

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


# -- plans checked against real ffmpeg ------------------------------------------------------
# An NTSC-rate video (30000/1001, 300 frames): the rate where rounding index <-> time goes
# wrong first.  make_video's grey code tells which source frame each decoded picture is.

NTSC = Fraction(30000, 1001)
NTSC_INFO = replace(INFO, fps=29.97003, frame_rate=NTSC, nb_frames=300, duration=10.01)


@pytest.fixture(scope="module")
def ntsc_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("ntsc") / "ntsc.mp4"
    return make_video(path, seconds=10.01, fps="30000/1001", gop=30)


def decoded(video: str, p: Pass) -> list[int]:
    """The source frames (mod 110, the grey code's period) real ffmpeg yields for one pass
    (a joined pass opens the video once per entry of its ``inputs``, as the reader does)."""
    args = []
    for extra in p.inputs or [{}]:
        args += [x for kv in {**p.input_options, **extra}.items() for x in kv] + ["-i", video]
    args += [x for kv in p.output_options.items() for x in kv]
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", *args, "-f", "rawvideo", "-pix_fmt", "gray", "-"],
        capture_output=True,
        check=True,
    ).stdout
    size = 64 * 48
    # ffmpeg's grey output is full range: luma 16 + 2n comes out as 2n * 255 / 219.
    return [
        round(np.frombuffer(raw[i : i + size], np.uint8).mean() * 219 / 255 / 2)
        for i in range(0, len(raw), size)
    ]


def yielded(video: str, frame_plan) -> list[int]:
    """Every frame the whole plan yields, in order (mod 110)."""
    return [n for p in frame_plan.passes for n in decoded(video, p)]


def labels(frame_plan) -> list[FrameRef]:
    """What the plan says each yielded image is, for as many images as it expects."""
    refs = []
    for p in frame_plan.passes:
        count = len(p.expected) if p.expected is not None else frame_plan.expected_count
        refs += [p.ref(i) for i in range(count)]
    return refs


@pytest.mark.parametrize("spec", [dict(every=7), dict(fps="10"), dict(fps="0.5"), dict(fps="2997/1000")])
def test_streaming_plans_label_exactly_what_ffmpeg_selects(ntsc_video, spec):
    p = plan(parse_selection(**spec), NTSC_INFO)
    refs = labels(p)
    assert [r.index % 110 for r in refs] == yielded(ntsc_video, p)  # same count, same frames
    assert [r.timestamp for r in refs] == [round(float(r.index / NTSC), 6) for r in refs]
    assert refs[0].index == 0 and refs[-1].index < 300


def test_every_and_fps_counts_at_the_ntsc_rate():
    assert plan(parse_selection(every=7), NTSC_INFO).expected_count == 43  # 0, 7, ..., 294
    # One frame per second of 10.01 s: frames 0, 30, 60, ..., 270 (0 s .. 9.009 s), 10 in all.
    p = plan(parse_selection(fps="1"), NTSC_INFO)
    assert p.expected_count == 10
    assert [r.index for r in labels(p)] == [-((-k * 30000) // 1001) for k in range(10)]


@pytest.mark.parametrize("fps", ["30000/1001", "29.97003", "30", "60"])
def test_fps_at_or_above_the_video_rate_takes_every_frame_once(fps):
    p = plan(parse_selection(fps=fps), NTSC_INFO)
    everything = plan(parse_selection(), NTSC_INFO)
    assert (p.expected_count, p.streaming) == (300, True)
    assert [(x.input_options, x.output_options) for x in p.passes] == [({}, {})]  # no select: no duplicates
    assert labels(p) == labels(everything)


def test_exact_frames_seek_and_land_on_each_requested_frame(ntsc_video):
    wanted = [0, 1, 29, 30, 31, 89, 150, 151, 152, 299]
    p = plan(parse_selection(frames=",".join(map(str, wanted))), NTSC_INFO)
    assert [r.index for r in labels(p)] == wanted and p.missing == []
    assert yielded(ntsc_video, p) == [i % 110 for i in wanted]


def test_times_pick_the_frame_shown_at_that_time(ntsc_video):
    # 1.001 s is exactly frame 30 at 30000/1001; 1.0 s is still frame 29 on screen.
    p = plan(parse_selection(times="0,1,1.001,5.5,10.0,10.5"), NTSC_INFO)
    assert [r.index for r in labels(p)] == [0, 29, 30, 164, 299]
    assert p.missing == ["time 10.5s (video lasts 10.01s)"]
    assert yielded(ntsc_video, p) == [i % 110 for i in (0, 29, 30, 164, 299)]


def test_many_frames_past_the_end_are_summarised_and_none_left_is_nothing_to_do():
    p = plan(parse_selection(frames="298-330"), NTSC_INFO)
    assert [r.index for r in labels(p)] == [298, 299]
    assert p.missing[:2] == ["frame 300 (video has 300 frames)", "frame 301 (video has 300 frames)"]
    assert len(p.missing) == 21 and p.missing[-1] == "and 11 more"
    nothing = plan(parse_selection(frames="300,400"), NTSC_INFO)
    assert nothing.expected_count == 0 and nothing.passes == [] and len(nothing.missing) == 2


def test_frames_within_two_seconds_share_a_pass_and_a_pass_holds_at_most_200():
    # Two seconds at 30000/1001 is 59 frames: 0 and 59 share a pass, 59 and 119 do not.
    p = plan(parse_selection(frames="0,59,119"), NTSC_INFO)
    assert [[r.index for r in x.expected] for x in p.passes] == [[0, 59], [119]]
    assert p.passes[0].output_options == {"-vf": "select='eq(n,0)+eq(n,59)'", "-vsync": "0", "-vframes": "2"}
    assert p.passes[1].output_options == {"-vframes": "1"}
    assert float(p.passes[1].input_options["-ss"]) == pytest.approx(118.5 / NTSC, abs=1e-6)
    dense = plan(parse_selection(frames="0-249"), NTSC_INFO)
    assert [len(x.expected) for x in dense.passes] == [200, 50]


def _ffprobe(video: str, entries: str) -> list[str]:
    """ffprobe's CSV lines for these entries of the first video stream."""
    cmd = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", entries, "-of", "csv=p=0"]
    return subprocess.run([*cmd, video], capture_output=True, text=True, check=True).stdout.split()


def _key_frames(video: str) -> set[int]:
    """The key frames as ffprobe lists them (the truth the container reading must agree with)."""
    start = float(_ffprobe(video, "stream=start_time")[0])
    rows = (line.split(",")[:2] for line in _ffprobe(video, "packet=pts_time,flags"))
    return {round((float(t) - start) * NTSC) for t, flags in rows if "K" in flags}


@pytest.mark.parametrize("ext", ["mp4", "ts", "mkv"])
def test_exact_frames_seek_to_the_key_frame_before_them_in_every_container(tmp_path, ext):
    # MPEG-TS is why: ffmpeg's own seek there lands on the *next* key frame, and the
    # half-frame-early seek then yielded a later frame than the one asked for.
    video = make_video(tmp_path / f"ntsc.{ext}", seconds=10.01, fps="30000/1001", gop=30)
    keys = _key_frames(video)
    # gop=30, and x264 starts one more where the grey code wraps (frames 110, 220)
    assert {30, 90, 140, 220, 280} <= keys and not {151, 141} & keys
    wanted = [30, 90, 151, 220, 280]  # each more than 2 s (59 frames) from the next: a seek each
    sel = parse_selection(frames=",".join(map(str, wanted)))
    found = key_frames_before(video, seek_targets(sel, NTSC_INFO))
    assert {i: k.index for i, k in found.items()} == {30: 30, 90: 90, 151: 140, 220: 220, 280: 280}
    p = plan(sel, NTSC_INFO, key_frames=found)
    if ext == "mp4":  # frame 30 shows at 1.001 s: the seek names the key frame's time to the microsecond
        assert [x.input_options["-ss"] for x in p.passes] == [
            "1.001000",
            "3.003000",
            "4.671333",
            "7.340667",
            "9.342667",
        ]
    assert [r.index for r in labels(p)] == wanted
    assert yielded(video, p) == [i % 110 for i in wanted]
    # The same seeks joined into one ffmpeg (what extraction runs) yield the same frames.
    (joined,) = join_seeks(p.passes, NTSC)
    assert decoded(video, joined) == [i % 110 for i in wanted]


def test_exact_frames_in_the_first_gop_of_mpeg_ts_with_b_frames_are_found(tmp_path):
    # MPEG-TS seeks by decoding time.  With B-frames the first frame is decoded before it is
    # shown, so a seek to the first frame's (shown) time lands after it, and "the key frame
    # before frame 20" was not found: the half-frame-early seek then landed on the next key
    # frame and yielded frame 60 for frame 20.
    # (codec "h264" is x264 too, but not make_video's lossless settings, which give no B-frames)
    extra = ["-x264-params", "b-adapt=0:bframes=3", "-pix_fmt", "yuv420p"]
    video = make_video(tmp_path / "bframes.ts", seconds=4, fps=30, gop=60, codec="h264", extra=extra)
    first_dts, start = (_ffprobe(video, e)[0].strip(",") for e in ("packet=dts", "stream=start_pts"))
    assert int(first_dts) < int(start)  # the first frame is decoded before it is shown
    info = replace(INFO, fps=30.0, frame_rate=Fraction(30), nb_frames=120, duration=4.0)
    sel = parse_selection(frames="20,90")
    found = key_frames_before(video, seek_targets(sel, info))
    assert found[20].index == 0 and 90 in found
    assert yielded(video, plan(sel, info, key_frames=found)) == [20, 90 % 110]

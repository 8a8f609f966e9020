"""Dataset options without a cluster: what users type, the sizes and ffmpeg chains it becomes,
the one-line usage errors, and a tar written by the sink read back by ``webdataset``."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from fractions import Fraction

import pytest
from helpers import run_cli

from snhoo_dask.errors import UsageError
from snhoo_dask.frames.filters import Dedup, Resize, parse_dedup, parse_resize, scale_filter
from snhoo_dask.frames.frame_log import FrameLog
from snhoo_dask.frames.parsing import parse_selection
from snhoo_dask.frames.plans import plan
from snhoo_dask.frames.selection import SelectionError
from snhoo_dask.options import Options, check
from snhoo_dask.output.folder import OutputDir, TmpDir, read_done
from snhoo_dask.output.formats import FrameRow, TarSink
from snhoo_dask.settings import Settings, dataset_options
from snhoo_dask.video.probe import VideoInfo

WIDE = VideoInfo(
    codec="h264",
    width=1280,
    height=720,
    fps=25.0,
    duration=4.0,
    start_time=0.0,
    pix_fmt="yuv420p",
    frame_rate=Fraction(25),
    nb_frames=100,
)


@pytest.mark.parametrize(
    "resize, source, expected",
    [
        (Resize("max_side", 512), (1280, 720), (512, 288)),
        (Resize("max_side", 512), (720, 1280), (288, 512)),  # portrait: the height is the longer side
        (Resize("max_side", 512), (64, 48), (64, 48)),  # never enlarged
        (Resize("max_side", 512), (512, 300), (512, 300)),
        (Resize("square", 256), (1280, 720), (256, 256)),
        (Resize("square", 256), (64, 48), (256, 256)),  # a dataset needs one shape: enlarged
    ],
)
def test_written_size(resize, source, expected):
    assert resize.out_size(*source) == expected


def test_scale_filters_keep_the_aspect_and_crop_the_centre():
    assert scale_filter(Resize("max_side", 512), 1280, 720) == "scale=512:288:flags=area"
    assert scale_filter(Resize("max_side", 2000), 1280, 720) is None
    # 1280x720 -> 455x256, then the middle 256 columns: (455 - 256) // 2 = 99 from the left.
    assert scale_filter(Resize("square", 256), 1280, 720) == "scale=455:256:flags=area,crop=256:256:99:0"


def chain(p) -> str:
    """The -vf chain of a plan's only pass, as extraction builds it."""
    (only,) = p.passes
    log = FrameLog()
    try:
        return only.chain(log, (WIDE.width, WIDE.height))
    finally:
        log.close()


def test_plan_puts_the_scale_into_every_mode_and_tells_the_reader_the_size():
    resize = Resize("max_side", 512)
    for selection in [
        parse_selection(),
        parse_selection(every=10),
        parse_selection(frames="0,50,99"),
        parse_selection(times="0,2"),
        parse_selection(keyframes=True),
        parse_selection(scenes=True),
    ]:
        p = plan(selection, WIDE, resize=resize)
        assert p.out_size == (512, 288)  # what the reader is told (-s) and the records say
        assert "scale=512:288:flags=area" in chain(p), selection


def test_scenes_and_dedup_let_ffmpeg_name_the_frames():
    p = plan(parse_selection(every=5), WIDE, dedup=Dedup())
    vf = chain(p)
    # Logged as decoded before anything drops frames; deduplicated after the selection,
    # before scaling; what is kept logged last.
    assert vf.startswith("settb=AVTB,")
    assert vf.index("seen.txt") < vf.index("select='not(mod(n,5))'") < vf.index("mpdecimate")
    assert vf.index("mpdecimate") < vf.index("kept.txt") and vf.endswith("kept.txt':direct=1")
    scenes = plan(parse_selection(scenes=True, scene_threshold=0.25), WIDE)
    assert scenes.scored
    assert "select='eq(n,0)+gt(scene,0.25)'" in chain(scenes)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: parse_resize(512, 256), "choose --max-side or --square, not both"),
        (lambda: check("max_side", 0), "--max-side must be from 4"),
        (lambda: parse_dedup(False, hi=100), "--dedup-hi only applies with --dedup"),
        (lambda: parse_dedup(True, hi=100, lo=200), "must not be above --dedup-hi"),
        (lambda: check("dedup_frac", 1.5), "--dedup-frac must be from 0 to 1"),
        (lambda: dataset_options(parse_selection(frames="1,2"), Options(dedup=True)), "not with --frames"),
        (lambda: check("pack", "zip"), "--pack must be one of folder, tar"),
        (lambda: check("fmt", "webp"), "--format must be one of jpg, png"),
    ],
)
def test_bad_dataset_options_say_why(call, message):
    with pytest.raises(UsageError, match=message):
        call()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(scene_threshold=0.5), "--scene-threshold only applies with --scenes"),
        (dict(scenes=True, scene_threshold=1.5), "between 0 and 1"),
        (dict(scenes=True, every=3), "choose one frame selection"),
    ],
)
def test_bad_scene_options_say_why(kwargs, message):
    with pytest.raises(SelectionError, match=message):
        parse_selection(**kwargs)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--pack", "tar", "--format", "webp"], "--format must be one of jpg, png, not 'webp'"),
        (["--pack", "zip"], "--pack must be one of folder, tar"),
        (["--dedup", "--frames", "0,5"], "--dedup works with all frames, --every, --fps or --scenes"),
        (["--dedup", "--keyframes"], "not with --keyframes"),
        (["--max-side", "512", "--square", "256"], "choose --max-side or --square, not both"),
        (["--scene-threshold", "0.4"], "--scene-threshold only applies with --scenes"),
        (["--scenes", "--every", "5"], "choose one frame selection"),
        (["--dedup-lo", "10"], "--dedup-lo only applies with --dedup"),
    ],
)
def test_bad_combinations_are_one_line_usage_errors(tmp_path, args, message):
    root = tmp_path / "videos"
    root.mkdir()
    result = run_cli("run", str(root), "--out", str(tmp_path / "out"), *args)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("snhoo-dask: error: ") and message in result.stderr
    assert not (tmp_path / "out").exists()


def test_signatures_tell_the_options_apart_and_leave_old_outputs_alone():
    base = Settings(out="/o", selection=parse_selection())
    # Without the dataset options, exactly the plain signature: those options add keys only
    # when used.  Frames are named by the decoder's own count ("frame_identity": 2), so a
    # folder finished under the earlier naming (no such key) does not match: it is redone.
    old = {"selection": base.selection.signature(), "format": "jpg", "quality": 90}
    assert base.signature() == {**old, "frame_identity": 2}
    variants = [
        replace(base, pack="tar"),
        replace(base, resize=Resize("max_side", 512)),
        replace(base, resize=Resize("square", 512)),
        replace(base, dedup=Dedup()),
        replace(base, dedup=Dedup(hi=1000)),
        replace(base, selection=parse_selection(scenes=True)),
        replace(base, selection=parse_selection(scenes=True, scene_threshold=0.5)),
    ]
    signatures = [json.dumps(s.signature(), sort_keys=True) for s in [base, *variants]]
    assert len(set(signatures)) == len(signatures)


def test_a_sealed_tar_reads_with_webdataset_and_carries_its_done_record(tmp_path):
    wds = pytest.importorskip("webdataset")
    out = OutputDir(str(tmp_path))
    tmp = TmpDir(out)
    sink = TarSink(tmp, False, "day1/a.mp4", "/videos")
    for i in (0, 25):
        sink.add(f"{i:06d}.jpg", b"\xff\xd8 not decoded here", FrameRow(i, i / 25, f"{i:06d}.jpg", 64, 48))
    sink.close()
    folder, name = sink.seal({"signature": {"s": 1}, "record": {"frames": 2}})
    assert folder == tmp.fd
    path = os.path.join(tmp.path, name)
    samples = list(wds.WebDataset(path, shardshuffle=False))
    assert [s["__key__"] for s in samples] == ["000000", "000025"]  # the done record is not a sample
    assert json.loads(samples[1]["json"]) == {
        "index": 25,
        "timestamp": 1.0,
        "video": "day1/a.mp4",
        "root": "/videos",
        "width": 64,
        "height": 48,
    }
    os.rename(path, tmp_path / "a.mp4.tar")
    assert read_done(out.fd, "a.mp4.tar") == {"signature": {"s": 1}, "record": {"frames": 2}}
    tmp.remove()
    out.close()

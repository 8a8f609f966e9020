"""Decoding less gives the same images: frames no one asked for that no other
frame needs are never decoded (snhoo_dask/packets/thinning.py).

Real ffmpeg encodes of the kinds that make this hard (B-frames, HEVC, open GOPs, MPEG-TS's
start codes, variable frame rate); the real CLI runs each selection twice, skipping and with
``--decode-all``, and every image must be the same bytes.
"""

from __future__ import annotations

import functools
import os
import subprocess
from dataclasses import replace

import pytest
import videos
from helpers import records_by_video, run_cli, tree

from snhoo_dask.frames.plans import Plan
from snhoo_dask.frames.selection import Selection
from snhoo_dask.packets import h264_refs
from snhoo_dask.packets.thinning import fast_plan, needed_packets, scan
from snhoo_dask.video.probe import probe

# This file's videos: 4 s of the smaller noisy pattern unless a test says otherwise.
encode = functools.partial(videos.encode, source=videos.NOISY_SMALL, seconds=4)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("thin") / "videos"
    x264 = ["-c:v", "libx264", "-preset", "veryfast", "-g", "30"]
    return {
        # x264's defaults: 3 B-frames, pyramid (the middle B is a reference, the others not).
        "h264-bframes.mp4": encode(root / "h264-bframes.mp4", *x264),
        # Open GOPs: B-frames before a (non-IDR) I frame refer across it.
        "h264-open-gop.mkv": encode(root / "h264-open-gop.mkv", *x264, "-x264-params", "open-gop=1"),
        # CAVLC, four slices per picture: each slice's header read (h264_refs).
        "h264-cavlc-slices.mp4": encode(
            root / "h264-cavlc-slices.mp4", *x264, "-x264-params", "cabac=0:slices=4"
        ),
        # Three references, weighted P prediction (its table in the slice header), strict
        # B-pyramid: P-frames predicted from B-frame references too.
        "h264-ref3-weighted.mkv": encode(
            root / "h264-ref3-weighted.mkv",
            *x264,
            "-x264-params",
            "ref=3:weightp=2:b-pyramid=strict:bframes=5",
        ),
        # MPEG-TS: Annex B start codes instead of length-prefixed NAL units.
        "h264-annexb.ts": encode(root / "h264-annexb.ts", *x264),
        # HEVC (x265's defaults: B-frames, open GOP, one temporal layer).
        "hevc.mp4": encode(root / "hevc.mp4", "-c:v", "libx265", "-x265-params", "log-level=error"),
        # Variable frame rate, jittered: every other frame shown 0.4 frame late.  Its time
        # still rounds to its number, so it is thinned.
        "h264-vfr-jitter.mkv": encode(
            root / "h264-vfr-jitter.mkv",
            *x264,
            "-vsync",
            "vfr",
            "-enc_time_base",
            "1:1000",
            vf="setpts='(N+0.4*mod(N,2))/(30*TB)'",
        ),
        # Variable frame rate, a burst of frames 40-59 at twice the rate: times no longer
        # give frame numbers, so this one must be decoded whole.
        "h264-vfr-burst.mkv": encode(
            root / "h264-vfr-burst.mkv",
            *x264,
            "-vsync",
            "vfr",
            "-enc_time_base",
            "1:1000",
            vf="setpts='if(lt(N,40),N,if(lt(N,60),40+(N-40)/2,N-10))/(30*TB)'",
        ),
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    "selection",
    [
        ["--every", "3"],
        ["--fps", "7"],
        # Exact frames as one thinned stream instead of seeks (mid-GOP, adjacent, B-frames, last).
        ["--frames", "3,17,31,32,59,88,119"],
        ["--times", "0.1,1.05,2.5,3.3,3.9"],
        # Only early frames: the packets are read up to the IDR after the last one (scan).
        ["--frames", "3,17,31,40,44"],
    ],
    ids=["every 3", "fps 7", "frames", "times", "early frames"],
)
def test_skipped_decoding_gives_the_images_of_a_full_decode(corpus, tmp_path, selection):
    root = os.path.dirname(next(iter(corpus.values())))
    runs = {}
    for how in ("skip", "decode-all"):
        out = tmp_path / how
        extra = ["--decode-all"] if how == "decode-all" else []
        r = run_cli("run", root, "--out", str(out), *selection, *extra, "--workers", "1", "-q", timeout=240)
        assert r.returncode == 0, r.stderr
        runs[how] = out
    skipped, full = tree(runs["skip"]), tree(runs["decode-all"])
    assert skipped.keys() == full.keys() and len(full) > len(corpus) * 5
    assert [k for k in full if skipped[k] != full[k]] == []  # byte for byte
    recs = records_by_video(runs["skip"])
    assert all(r["status"] == "ok" for r in recs.values())
    for name in corpus:
        assert records_by_video(runs["decode-all"])[name]["undecoded"] == 0
        assert recs[name]["path"].startswith("fast: "), (name, recs[name]["path"])
        if name == "h264-vfr-burst.mkv":
            # Its times give ffmpeg's select no frame numbers: every picture fed is sent,
            # and the packet table names each by its time (checked image by image).
            assert recs[name]["undecoded"] > 0, recs[name]
        else:
            # A third to a half of the frames never reach the decoder.
            assert recs[name]["undecoded"] >= 120 // 4, (name, recs[name]["undecoded"])


def fast(path: str, selection: Selection) -> Plan | str:
    return fast_plan(selection, probe(path), path, None, None)


def packets_decoded(p: Plan) -> tuple[int, int]:
    """(packets fed, stand-ins among those written) from a fast plan's ``path``."""
    words = p.path.split()  # "fast: K of N packets decoded, S stand-ins"
    return int(words[1]), int(words[6])


def test_what_cannot_be_thinned_is_decoded_whole(corpus, tmp_path):
    """The guards, one by one: each answers with a reason (the plain path decodes
    everything) instead of guessing."""
    every_3 = Selection("every", every=3)
    cfr = corpus["h264-bframes.mp4"]
    p = fast(cfr, every_3)
    assert isinstance(p, Plan) and p.expected_count == 40
    assert 40 <= packets_decoded(p)[0] < 120 and p.undecoded == 120 - packets_decoded(p)[0]
    # Every 30th frame of a 30-frame GOP is its IDR picture: no other picture is needed,
    # not even the references after it (nothing selected is decoded after them before the
    # next IDR).
    only_idr = fast(cfr, Selection("every", every=30))
    assert isinstance(only_idr, Plan) and packets_decoded(only_idr) == (4, 0), only_idr.path
    # Variable frame rate: times no longer give frame numbers to ffmpeg's select; every
    # picture fed is sent and the packet table names each by its time.
    burst = corpus["h264-vfr-burst.mkv"]
    table = scan(burst, probe(burst))
    assert not isinstance(table, str) and table.rate is None
    assert scan(cfr, probe(cfr)).rate == 30
    burst_plan = fast(burst, every_3)
    assert isinstance(burst_plan, Plan) and burst_plan.passes[0].select is None
    assert isinstance(fast(cfr, Selection("every", every=1)), str)  # every frame: nothing to skip
    assert isinstance(fast(cfr, Selection("all")), str)
    mpeg4 = encode(tmp_path / "mpeg4.avi", "-c:v", "mpeg4", "-bf", "2", seconds=1)
    assert "H.264 and HEVC" in scan(mpeg4, probe(mpeg4))  # not H.264/HEVC: its headers are not read
    assert isinstance(fast(mpeg4, every_3), str)
    # Starts on a non-IDR picture: an open GOP's I frame, cut out without re-encoding (the
    # B-frames after it refer to frames before the cut: the decoder drops or damages them).
    for name, bsf in (("cut.ts", ["-bsf:v", "h264_mp4toannexb,dump_extra=freq=keyframe"]), ("cut.mkv", [])):
        # MKV: those B-frames also lose their times.  TS: parameter sets repeated at the I frame.
        cut = str(tmp_path / name)
        videos.ffmpeg("-ss", "1.5", "-i", corpus["h264-open-gop.mkv"], "-c", "copy", *bsf, cut)
        assert isinstance(scan(cut, probe(cut)), str), name
        assert isinstance(fast(cut, every_3), str), name


def test_a_scan_for_the_first_frames_stops_at_the_idr_after_them(corpus):
    """Exact frames read only the packets up to the last one asked for: everything decoded
    before an IDR picture is shown before it, so the table holds exactly the first frames."""
    for name in ("h264-bframes.mp4", "h264-annexb.ts", "hevc.mp4"):
        path = corpus[name]
        info = probe(path)
        whole, first = scan(path, info), scan(path, info, frames=41)
        assert not isinstance(whole, str) and not isinstance(first, str), (name, whole, first)
        assert len(whole) == 120
        # x264 -g 30: IDR pictures at frames 0, 30, 60, 90; 41 frames need those before 60.
        # x265 (default keyint 250, one IDR): the whole file is read.
        assert len(first) == (120 if name == "hevc.mp4" else 60), (name, len(first))
        assert sorted(first.numbers) == list(range(len(first)))
        assert first.numbers == whole.numbers[: len(first)]


def _picture_types(path: str) -> list[str]:
    """ffprobe's picture type of each frame, in display order."""
    cmd = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pict_type"]
    out = subprocess.run([*cmd, "-of", "csv=p=0", path], capture_output=True, text=True, check=True)
    return [line.split(",")[0] for line in out.stdout.split()]  # the first has side data: "I,"


def test_exact_frames_decode_only_the_pictures_they_are_predicted_from(corpus, tmp_path):
    """x264 veryfast (``ref=1``): a P-frame is predicted from the P-frame before it only (the
    slice header says so), so for one P-frame the decoder gets the IDR picture and the
    P-frames up to it.  Each B-frame reference decoded in between becomes a stand-in (every
    macroblock skipped, same place in the decoder's buffer); the other B-frames go."""
    path = corpus["h264-bframes.mp4"]
    types = _picture_types(path)
    target = max(n for n in range(30) if types[n] == "P")
    table = scan(path, probe(path), frames=target + 1, references=True)
    assert not isinstance(table, str) and table.pictures is not None
    keep, standins = needed_packets(table, {target}.__contains__)
    assert sorted(table.numbers[pos] for pos in keep) == [n for n in range(target + 1) if types[n] in "IP"]
    assert standins and all(types[table.numbers[pos]] == "B" and not table.droppable[pos] for pos in standins)
    # Without the headers (or where they are not modelled), every reference before it is kept.
    old, none = needed_packets(replace(table, pictures=None), {target}.__contains__)
    assert keep < old and none == {}
    # A streaming selection too: every 10th frame of a 30-frame GOP needs the P-frames up to
    # frame 20 (and the B-frame references between them stand in).
    every_10 = lambda n: n % 10 == 0  # noqa: E731
    streamed = fast(path, Selection("every", every=10))
    assert isinstance(streamed, Plan)
    fed, standing_in = packets_decoded(streamed)
    assert standing_in > 0 and fed < len(scan(path, probe(path)).keep(every_10))
    # Interlaced coding is not modelled: its references are all kept, as before.
    interlaced = encode(tmp_path / "interlaced.mp4", "-c:v", "libx264", "-flags", "+ildct+ilme", seconds=1)
    assert scan(interlaced, probe(interlaced), references=True).pictures is None


def test_a_stand_in_is_read_back_as_the_picture_it_stands_in_for(corpus):
    """A stand-in carries its picture's frame_num, order count and reference marking (what
    the decoder's buffer is built from), as a P-slice with one reference and no reordering;
    the parser (the same one that read the file) reads that back from its bytes."""
    path = corpus["h264-bframes.mp4"]
    table = scan(path, probe(path), references=True)
    assert not isinstance(table, str) and table.pictures is not None
    pictures = table.pictures
    keep = pictures.needed({table.numbers.index(29)})
    standins = pictures.standins(keep)
    assert standins
    for pos in standins:
        original = pictures.pictures[pos]
        parser = h264_refs.Parser(b"")
        parser.sps = {original.sps.sps_id: original.sps}  # the stream's own, as the decoder has it
        pps, slice_nal = pictures.standin(pos)
        assert parser.nal(pps) is None
        back = parser.nal(slice_nal)
        assert back is not None and [s.kind for s in back.slices] == [0]  # P
        assert back.slices[0].active == (1, 0) and back.slices[0].modifications == ((), ())
        same = (
            "nal_ref_idc",
            "idr",
            "frame_num",
            "poc_lsb",
            "delta_poc_bottom",
            "unused",
            "explicit_marking",
        )
        assert {k: getattr(back, k) for k in same} == {k: getattr(original, k) for k in same}
    # x264 marks references unused explicitly (MMCO 1) in B-frame references: written back too.
    assert any(pictures.pictures[pos].explicit_marking for pos in standins)


# -- quick checks of what the fast path reads and refuses -----------------------------------


def _sei_units(path: str) -> list[bytes]:
    """Every SEI NAL unit of an H.264 file's packets."""
    import av

    from snhoo_dask.packets.table import _nal_length_size, _nal_units

    with av.open(path) as container:
        stream = container.streams.video[0]
        size = _nal_length_size("h264", bytes(stream.codec_context.extradata or b""))
        units = []
        for packet in container.demux(stream):
            if packet.size:
                units += [bytes(n) for n in _nal_units(bytes(packet), size) if n and n[0] & 0x1F == 6]
        return units


@pytest.mark.parametrize(
    "params, recovery",
    [("open-gop=1", True), ("intra-refresh=1", True), ("bframes=2", False)],
    ids=["open GOP", "intra refresh", "plain"],
)
def test_recovery_points_are_found_in_x264_sei(tmp_path, params, recovery):
    from snhoo_dask.packets.table import _has_recovery_point

    path = encode(tmp_path / "r.mp4", "-c:v", "libx264", "-g", "10", "-x264-params", params, seconds=1.5)
    units = _sei_units(path)
    assert units, "x264 writes an SEI (its version) in every stream"
    assert any(_has_recovery_point(u) for u in units) is recovery
    table = scan(path, probe(path))
    assert not isinstance(table, str) and table.recovery is recovery
    # --keyframes: the decoder marks a recovery point key too; the fast path leaves it be.
    keyframes = fast(path, Selection("keyframes"))
    assert isinstance(keyframes, str) == recovery, keyframes


def test_scan_says_why_it_cannot_number_the_frames(tmp_path):
    src = encode(tmp_path / "src.mp4", "-c:v", "libx264", "-g", "30", seconds=10)
    avi = encode(tmp_path / "h264.avi", "-c:v", "libx264", seconds=1)
    assert probe(avi).codec == "h264"
    assert scan(avi, probe(avi)) == "AVI: its packets carry decode times, not presentation times"
    cut = str(tmp_path / "cut.mp4")
    videos.ffmpeg("-ss", "3.3", "-i", src, "-t", "5", "-c", "copy", cut)
    # The cut starts at the key frame before 3.3 s: an edit list hides the frames before it.
    assert scan(cut, probe(cut)) == "an edit list discards some of its packets"
    assert isinstance(fast(cut, Selection("every", every=3)), str)
    vp9 = encode(tmp_path / "vp9.webm", "-c:v", "libvpx-vp9", "-deadline", "realtime", seconds=0.5)
    assert scan(vp9, probe(vp9)) == "vp9: the fast paths read H.264 and HEVC packets only"


@pytest.mark.slow
def test_a_rotated_mp4_gives_the_same_images_fast_and_decoded_whole(tmp_path):
    """The display matrix does not survive the remux: the fast path restates ffmpeg's
    autorotation as filters (``probe._turn``) and its images are the plain path's."""
    src = encode(tmp_path / "src.mp4", "-c:v", "libx264", "-g", "15", seconds=2)  # 160x120
    root = tmp_path / "cam"
    root.mkdir()
    # What ffmpeg 5.1 autorotates with (checked against its own output, md5 of the raw frames).
    expected = {90: ("transpose=cclock",), 180: ("hflip", "vflip"), 270: ("transpose=clock",)}
    for angle in expected:
        videos.ffmpeg(
            "-i", src, "-c", "copy", "-metadata:s:v:0", f"rotate={angle}", str(root / f"r{angle}.mp4")
        )
        assert probe(str(root / f"r{angle}.mp4")).turn == expected[angle], angle
    outs = {}
    for how in ("fast", "decode-all"):
        out = tmp_path / how
        extra = ["--decode-all"] if how == "decode-all" else []
        r = run_cli(
            "run",
            str(root),
            "--out",
            str(out),
            "--format",
            "png",
            "--every",
            "30",
            "--workers",
            "1",
            "-q",
            *extra,
        )
        assert r.returncode == 0, r.stderr
        outs[how] = out
    recs = records_by_video(outs["fast"])
    for angle in expected:
        rec = recs[f"r{angle}.mp4"]
        assert rec["status"] == "ok" and rec["path"].startswith("fast:"), rec
        assert (rec["out_width"], rec["out_height"]) == ((120, 160) if angle != 180 else (160, 120))
        pngs = {}
        for how, out in outs.items():
            folder = out / "cam" / f"r{angle}.mp4"
            pngs[how] = {
                n: (folder / n).read_bytes() for n in sorted(os.listdir(folder)) if n.endswith(".png")
            }
        assert sorted(pngs["fast"]) == ["000000.png", "000030.png"]
        assert pngs["fast"] == pngs["decode-all"], angle
        assert records_by_video(outs["decode-all"])[f"r{angle}.mp4"]["path"] == "plain (--decode-all)"

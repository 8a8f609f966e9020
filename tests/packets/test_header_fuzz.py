"""Mutated H.264 headers never crash the slice-header reader (snhoo_dask.packets.h264_refs).

The reader runs on every H.264 file a job meets, damaged ones included, in the task that
plans the video: whatever the bytes, it must give pictures or raise
``h264_refs.Unsupported`` (the caller then keeps every reference picture), never another
exception.  Real parameter sets and slices come from x264 encodes of several kinds (CABAC
with B-frames, CAVLC with slices, weighted prediction, scaling lists, 4:4:4, order count
type 2, fields), demuxed with PyAV; Hypothesis flips, sets, inserts, deletes and cuts bytes
in the avcC record, in SPS/PPS NAL units and in slice headers, and the whole stream is fed
as the product feeds it (``Parser`` per packet, then ``Pictures``: the reference lists
replayed, the pictures a frame needs, the stand-ins and their packets).
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
from functools import cache

import av
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snhoo_dask.packets import h264_refs

ENCODES = {
    # name: x264 options (preset veryfast, 12 frames of testsrc2 at 64x48)
    "cabac-bframes": ["-x264-params", "bframes=3:b-pyramid=normal:ref=3"],
    "cavlc-slices": ["-x264-params", "cabac=0:slices=3"],
    "weighted": ["-x264-params", "ref=3:weightp=2:bframes=2:weightb=1"],
    "scaling-lists": ["-x264-params", "cqm=jvt"],
    "yuv444": ["-pix_fmt", "yuv444p", "-x264-params", "bframes=2"],
    "poc-type-2": ["-x264-params", "bframes=0"],
    "strict-pyramid": ["-x264-params", "bframes=5:b-pyramid=strict:ref=4:keyint=6"],
    "interlaced": ["-flags", "+ildct+ilme", "-x264-params", "bframes=2"],
}


def _nals(data: bytes) -> list[bytes]:
    """The NAL units of an avcC packet (4-byte lengths, as x264 in MP4 writes them)."""
    out, pos = [], 0
    while pos + 4 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        out.append(data[pos + 4 : pos + 4 + size])
        pos += 4 + size
    return out


@cache
def corpus() -> dict[str, tuple[bytes, list[list[bytes]]]]:
    """Each encode's avcC record and its packets' NAL units, in decode order (made once per
    session; a plain cache, not a fixture, so Hypothesis's reports show only the mutation)."""
    folder = tempfile.mkdtemp(prefix="snhoo-fuzz-")
    atexit.register(shutil.rmtree, folder, True)
    out = {}
    for name, opts in ENCODES.items():
        path = os.path.join(folder, f"{name}.mp4")
        cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=64x48:r=25"]
        cmd += ["-frames:v", "12", "-c:v", "libx264", "-preset", "veryfast"]
        cmd += ([] if "-pix_fmt" in opts else ["-pix_fmt", "yuv420p"]) + opts + [path]
        subprocess.run(cmd, check=True)
        with av.open(path) as container:
            stream = container.streams.video[0]
            extradata = bytes(stream.codec_context.extradata)
            packets = [_nals(bytes(p)) for p in container.demux(stream) if p.size]
        assert extradata[0] == 1 and packets, name
        out[name] = (extradata, packets)
    return out


def feed(extradata: bytes, packets: list[list[bytes]]) -> str:
    """The stream through the reader as the product reads it: 'unsupported', or 'read'
    after every query the product makes of the pictures."""
    try:
        parser = h264_refs.Parser(extradata)
        pictures = []
        for nals in packets:
            picture = None
            for nal in nals:
                found = parser.nal(nal, picture)
                if picture is not None and found is not picture:
                    raise h264_refs.Unsupported("two pictures in one packet")  # as thinning does
                picture = found
            if picture is None:
                raise h264_refs.Unsupported("a packet without a picture")  # as thinning does
            pictures.append(picture)
        if not pictures:
            return "empty"
        table = h264_refs.Pictures(pictures, set(parser.pps), 4)
        last = len(pictures) - 1
        for wanted in ({last}, {last // 2}, set(range(0, len(pictures), 5))):
            kept = table.needed(wanted)
            for pos in table.standins(kept):
                table.payload(pos)
        return "read"
    except h264_refs.Unsupported:
        return "unsupported"


# One mutation of a byte string: (kind, position as a fraction of the header part, value).
MUTATION = st.tuples(
    st.sampled_from(["flip", "set", "insert", "delete", "truncate", "zero-run"]),
    st.floats(min_value=0, max_value=1, allow_nan=False),
    st.integers(min_value=0, max_value=255),
)


def mutate(data: bytes, mutations: list[tuple[str, float, int]], span: int = 64) -> bytes:
    """``data`` with ``mutations`` applied within its first ``span`` bytes (the headers:
    past them a slice is macroblock data, which the reader never parses)."""
    b = bytearray(data)
    for kind, where, value in mutations:
        limit = max(1, min(len(b), span))
        pos = min(int(where * limit), limit - 1)
        if kind == "flip" and b:
            b[pos] ^= 1 << (value % 8)
        elif kind == "set" and b:
            b[pos] = value
        elif kind == "insert":
            b[pos:pos] = bytes([value])
        elif kind == "delete" and b:
            del b[pos : pos + 1 + value % 4]
        elif kind == "truncate":
            del b[pos:]
        elif kind == "zero-run":
            b[pos : pos + 3] = b"\x00\x00" + bytes([value % 4])
    return bytes(b)


FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,  # the same examples every run: a failure here is never a fluke
)


def test_the_corpus_is_read() -> None:
    """Unmutated, every progressive encode is read whole (so the fuzzing reaches the
    deep parts of the reader), and field coding is refused."""
    for name, (extradata, packets) in corpus().items():
        assert feed(extradata, packets) == ("unsupported" if name == "interlaced" else "read"), name


@FUZZ
@given(name=st.sampled_from(sorted(ENCODES)), mutations=st.lists(MUTATION, min_size=1, max_size=4))
def test_mutated_avcc_record(name: str, mutations) -> None:
    extradata, packets = corpus()[name]
    assert feed(mutate(extradata, mutations, span=len(extradata)), packets) in (
        "read",
        "unsupported",
        "empty",
    )


@FUZZ
@given(
    name=st.sampled_from(sorted(ENCODES)),
    target=st.sampled_from(["sps", "pps", "idr", "slice", "any"]),
    which=st.integers(min_value=0, max_value=1000),
    mutations=st.lists(MUTATION, min_size=1, max_size=4),
    inband=st.booleans(),
)
def test_mutated_parameter_sets_and_slice_headers(name, target, which, mutations, inband) -> None:
    """One NAL unit mutated: a parameter set (from the avcC record, sent in band before the
    first picture), the IDR slice, another slice, or any unit of the stream."""
    extradata, packets = corpus()[name]
    packets = [list(p) for p in packets]
    if target in ("sps", "pps"):
        sps_nal = extradata[8 : 8 + int.from_bytes(extradata[6:8], "big")]
        rest = 8 + len(sps_nal) + 1
        pps_nal = extradata[rest + 2 : rest + 2 + int.from_bytes(extradata[rest : rest + 2], "big")]
        nal = mutate(sps_nal if target == "sps" else pps_nal, mutations)
        if inband:  # a changed parameter set in the stream, before the first slice
            packets[0].insert(0, nal)
        else:  # the only one: the avcC record rewritten around it
            sps_new, pps_new = (nal, pps_nal) if target == "sps" else (sps_nal, nal)
            extradata = (
                extradata[:5] + b"\xe1" + len(sps_new).to_bytes(2, "big") + sps_new
                + b"\x01" + len(pps_new).to_bytes(2, "big") + pps_new
            )  # fmt: skip
    else:
        slots = [
            (p, n)
            for p, nals in enumerate(packets)
            for n, nal in enumerate(nals)
            if target == "any"
            or (nal and (nal[0] & 0x1F) == (5 if target == "idr" else 1) and target in ("idr", "slice"))
        ]
        if not slots:
            return
        p, n = slots[which % len(slots)]
        packets[p][n] = mutate(packets[p][n], mutations)
    assert feed(extradata, packets) in ("read", "unsupported", "empty")


@FUZZ
@given(
    name=st.sampled_from(sorted(ENCODES)),
    data=st.binary(min_size=0, max_size=40),
    kind=st.sampled_from([1, 5, 7, 8]),
    ref_idc=st.integers(min_value=0, max_value=3),
)
def test_random_nal_units(name, data, kind, ref_idc) -> None:
    """A NAL unit of random bytes with a real type (slice, IDR, SPS, PPS) in front of the
    stream's second picture."""
    extradata, packets = corpus()[name]
    packets = [list(p) for p in packets]
    packets[min(1, len(packets) - 1)].insert(0, bytes([(ref_idc << 5) | kind]) + data)
    assert feed(extradata, packets) in ("read", "unsupported", "empty")

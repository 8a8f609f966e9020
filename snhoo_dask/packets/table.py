"""The packet table: every picture packet of an H.264/HEVC video, read once and classed
from its NAL unit headers, none decoded.

Each packet is a *reference* picture (others are predicted from it) or not (H.264
``nal_ref_idc`` 0; HEVC sub-layer non-reference types with one temporal layer), an IDR
picture (nothing after one is predicted from anything before it) or not, and a key picture
or not.  The packets' presentation times, sorted, number the frames: the k-th smallest is
frame k (``selection``'s definition), which holds when every packet is one picture the
decoder presents (``scan`` refuses any stream where that is not shown: AVI's times, packets
to discard, a start that is not an IDR picture, duplicate times, temporal layers).  The
fast plans (``thinning``, ``pieces``) decide from this table.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ..video.probe import ProbeError, VideoInfo, open_container, video_stream
from . import h264_headers, h264_refs
from .h264_refs import Positions

CODECS = ("h264", "hevc")
_H264_PARAMETER_SETS = {7, 8}  # SPS, PPS: a packet carrying one is never dropped
_HEVC_PARAMETER_SETS = {32, 33, 34}  # VPS, SPS, PPS
_H264_IDR, _HEVC_IDR = {5}, {19, 20}
_HEVC_IRAP = set(range(16, 24))  # what the HEVC decoder marks as key frames
_H264_SEI, _RECOVERY_POINT = 6, 6


def _nal_length_size(codec: str, extradata: bytes) -> int | None:
    """The size of the length before each NAL unit (avcC/hvcC), or None for Annex B start codes."""
    if codec == "h264" and len(extradata) >= 5 and extradata[0] == 1:
        return (extradata[4] & 3) + 1
    if codec == "hevc" and len(extradata) >= 23 and extradata[0] == 1:
        return (extradata[21] & 3) + 1
    return None


def _nal_units(data: bytes | memoryview, length_size: int | None) -> Iterator[bytes | memoryview]:
    """The NAL units of one packet (views, when ``data`` is one)."""
    if length_size:
        pos = 0
        while pos + length_size <= len(data):
            size = int.from_bytes(data[pos : pos + length_size], "big")
            pos += length_size
            if size <= 0 or pos + size > len(data):
                return
            yield data[pos : pos + size]
            pos += size
        return
    for chunk in bytes(data).split(b"\x00\x00\x01")[1:]:  # Annex B: ``data`` is bytes
        if chunk:
            yield chunk


@dataclass(frozen=True)
class PacketTable:
    """Every picture packet of an H.264/HEVC stream, in decode order: what thinning and
    cutting into pieces (``pieces``) decide from.  Made only when each packet is one
    picture the decoder presents at its own time (``scan``)."""

    # One compact array per field, not an object per packet: a 10-hour video has nearly a
    # million packets, and the table is held for the whole task.  Flags are bytes, 0 or 1.
    pts: array[int]  # int64
    numbers: array[int]  # int32: each packet's frame number, its place among the times, sorted
    droppable: bytearray  # no other picture is predicted from it
    idr: bytearray
    params: bytearray  # carries parameter sets (SPS, PPS, VPS): never left out
    time_base: Fraction
    # H.264 only, when asked for (``scan(references=True)``): each picture's reference lists.
    pictures: h264_refs.Pictures | None = None
    key: bytearray = field(default_factory=bytearray)  # a key frame to the decoder (IDR, IRAP)
    recovery: bool = False  # H.264 recovery points: the decoder marks more key frames
    eof: bool = True  # every packet of the stream was read (else up to an IDR picture)
    # The frames' times in microseconds from frame 0, by frame number (int64).
    times_us: array[int] = field(default_factory=lambda: array("q"))
    # The rate frames are numbered at from their times, where every time is a whole number
    # of frames from the first (constant rate); None for a variable rate.
    rate: Fraction | None = None

    def __len__(self) -> int:
        return len(self.pts)

    def keep(self, selected: Callable[[int], bool], packets: range | None = None) -> Positions:
        """The packets (by decode position) the frames ``selected`` names need: the selected
        frames, and the reference pictures decoded before one of them since the last IDR
        picture.  A picture decoded after the last selected frame before the next IDR is
        needed by none: a frame is predicted only from pictures decoded before it, and
        nothing after an IDR picture from anything before it.  The first packet is always
        kept: it is where the numbering by time starts (``frame_number_expr``)."""
        where = packets if packets is not None else range(len(self.pts))
        kept = bytearray(len(self.pts))
        if where:
            kept[where[0]] = 1
        needed = False  # a selected frame is decoded later, before the next IDR picture
        for i in reversed(where):
            if selected(self.numbers[i]):
                kept[i] = 1
                needed = True
            elif (needed and not self.droppable[i]) or self.params[i]:
                kept[i] = 1
            if self.idr[i]:
                needed = False
        return Positions.of(kept)


@dataclass(frozen=True)
class _Class:
    """What one picture packet's NAL unit headers say about it."""

    droppable: bool  # no other picture is predicted from it
    idr: bool
    top: int  # the highest temporal id (HEVC; 0 for H.264)
    params: bool  # carries parameter sets
    key: bool  # what the decoder marks a key frame
    recovery: bool  # an H.264 recovery point SEI


def _classify(codec: str, nals: list[bytes | memoryview]) -> _Class | None:
    """The class of one packet, from its NAL units' headers; None if it holds no picture."""
    vcl = idr = params = key = recovery = False
    droppable = True
    top = 0
    for head in nals:
        if not len(head):
            continue
        if codec == "h264":
            kind = head[0] & 0x1F
            if kind == _H264_SEI:
                recovery |= _has_recovery_point(head)
            if kind in _H264_PARAMETER_SETS:
                droppable, params = False, True
            elif 1 <= kind <= 5:
                vcl = True
                idr |= kind in _H264_IDR
                droppable &= (head[0] >> 5) & 3 == 0
        else:
            if len(head) < 2:
                continue
            kind, tid = (head[0] >> 1) & 0x3F, (head[1] & 7) - 1
            top = max(top, tid)
            if kind in _HEVC_PARAMETER_SETS:
                droppable, params = False, True
            elif kind < 32:
                vcl = True
                idr |= kind in _HEVC_IDR
                key |= kind in _HEVC_IRAP
                # Even types below 16 are sub-layer non-reference pictures.
                droppable &= kind < 16 and kind % 2 == 0
    if codec == "h264":
        key = idr
    return _Class(droppable, idr, top, params, key, recovery) if vcl else None


def _has_recovery_point(nal: bytes | memoryview) -> bool:
    """Whether an H.264 SEI NAL unit holds a recovery point message (payload type 6)."""
    data = h264_headers._rbsp(nal)
    pos = 1
    while pos < len(data) and data[pos] != 0x80:  # 0x80: the RBSP's trailing bits
        kind = size = 0
        while pos < len(data) and data[pos] == 0xFF:
            kind, pos = kind + 255, pos + 1
        if pos >= len(data):
            return False
        kind, pos = kind + data[pos], pos + 1
        while pos < len(data) and data[pos] == 0xFF:
            size, pos = size + 255, pos + 1
        if pos >= len(data):
            return False
        size, pos = size + data[pos], pos + 1
        if kind == _RECOVERY_POINT:
            return True
        pos += size
    return False


def refusal(info: VideoInfo) -> str | None:
    """Why no fast path can name this video's frames (None: one may try)."""
    if info.codec not in CODECS:
        return f"{info.codec}: the fast paths read H.264 and HEVC packets only"
    if "avi" in info.container.split(","):
        return "AVI: its packets carry decode times, not presentation times"
    if info.turn is None:
        return "turned by a display matrix the fast paths cannot restate"
    return None


def scan(
    path: str, info: VideoInfo, frames: int | None = None, references: bool = False
) -> PacketTable | str:
    """The video's packet table (every packet read, none decoded), or the reason its
    frames cannot be numbered without decoding them all.

    ``frames``: only the first ``frames`` frames (in display order) are needed, so reading
    stops at the first IDR picture after that many packets: every picture decoded before
    an IDR picture is shown before it and before anything decoded after it, so the packets
    read are exactly the first frames shown, however they were reordered.

    ``references``: for H.264, also read every slice header and replay the reference lists
    (``h264_refs``), where the stream is one that module models."""
    why = refusal(info)
    if why:
        return why
    try:
        table = _read_packets(path, info.codec, info.stream, frames, references and info.codec == "h264")
    except ProbeError as e:
        return f"its packets could not be read ({e})"
    if isinstance(table, str):
        return table
    if not table.pts:
        return "no picture packets"
    if not table.idr[0]:
        return "it does not start at an IDR picture (the decoder may drop what comes before one)"
    times = np.frombuffer(table.pts, dtype=np.int64)
    order = np.argsort(times, kind="stable")
    shown = times[order]
    if len(shown) > 1 and not (shown[1:] != shown[:-1]).all():
        return "two packets share a presentation time"
    numbers = np.empty(len(order), dtype=np.int32)
    numbers[order] = np.arange(len(order), dtype=np.int32)
    del order
    try:
        times_us = _times_us(shown, table.time_base)
    except ProbeError as e:
        return str(e)
    return PacketTable(
        table.pts,
        _ints("i", numbers),
        table.droppable,
        table.idr,
        table.params,
        table.time_base,
        table.pictures,
        table.key,
        table.recovery,
        table.eof,
        times_us,
        _constant_rate(times_us),
    )


def _ints(code: str, values: np.ndarray) -> array:
    """A numpy array as a stdlib one: indexing it gives Python ints (numpy's scalars would
    reach JSON, Fractions and ffmpeg's command line)."""
    out = array(code)
    out.frombytes(values.astype(np.int32 if out.itemsize == 4 else np.int64).tobytes())
    return out


def _times_us(shown: np.ndarray, time_base: Fraction) -> array:
    """Each time from the first one's, rounded once (half up, as ffmpeg rounds): the times
    the plain path logs, since ffmpeg moves the stream's times to start at 0 before they
    become microseconds (MPEG-TS: rounding each absolute time first was 1 us off in
    frames.csv).  ``shown``: the packets' times, sorted."""
    num, den = time_base.numerator * 2_000_000, 2 * time_base.denominator
    span = int(shown[-1]) - int(shown[0])
    if span * num + den < 2**62:  # exact in 64-bit integers: floor((2 t num 1e6 + den) / 2 den)
        return _ints("q", ((shown - shown[0]) * num + time_base.denominator) // den)
    first = int(shown[0])
    try:
        return array("q", [((int(t) - first) * num + time_base.denominator) // den for t in shown])
    except OverflowError:
        raise ProbeError("presentation times too far apart to count in microseconds") from None


def _constant_rate(us: array[int]) -> Fraction | None:
    """The rate at which every frame's time (microseconds, sorted) is a whole number of
    frames from the first, as ffmpeg's ``select`` computes it (``frame_number_expr``); None
    for a variable rate."""
    if len(us) < 2:
        return None
    if us[-1] <= us[0]:
        return None
    # The mean rate, as the nearest fraction with a small denominator (30000/1001, 25, ...).
    rate = Fraction((len(us) - 1) * 1_000_000, us[-1] - us[0]).limit_denominator(1001)
    # The same float operations in the same order as ``round`` of each in Python, in numpy
    # (which rounds halves to even too).
    t = np.frombuffer(us, dtype=np.int64).astype(np.float64)
    k = np.rint((t * 1e-6 - us[0] * 1e-6) * float(rate.numerator) / float(rate.denominator))
    if not (k == np.arange(len(us), dtype=np.float64)).all():
        return None
    return rate


@dataclass
class _Packets:
    """What one read of a stream's packets gives: per packet (decode order) its time and
    flags (bytes, 0 or 1), and for the stream as a whole."""

    time_base: Fraction
    pts: array = field(default_factory=lambda: array("q"))
    droppable: bytearray = field(default_factory=bytearray)
    idr: bytearray = field(default_factory=bytearray)
    params: bytearray = field(default_factory=bytearray)
    key: bytearray = field(default_factory=bytearray)
    recovery: bool = False  # a recovery point was seen
    pictures: h264_refs.Pictures | None = None  # reference lists (``references``)
    eof: bool = True  # the stream's end was reached

    def add(self, pts: int, facts: _Class) -> None:
        self.pts.append(pts)
        self.droppable.append(facts.droppable)
        self.idr.append(facts.idr)
        self.params.append(facts.params)
        self.key.append(facts.key)
        self.recovery |= facts.recovery


def _read_packets(
    path: str, codec: str, index: int, frames: int | None = None, references: bool = False
) -> _Packets | str:
    """Every packet's time and class, and (``references``) the pictures' reference lists:
    up to the first IDR picture after ``frames`` packets (see ``scan``); or why a packet
    cannot be classed."""
    with open_container(path, packets_only=True) as container:
        stream = video_stream(container, index)
        time_base = Fraction(stream.time_base)
        extradata = bytes(stream.codec_context.extradata or b"")
        length_size = _nal_length_size(codec, extradata)
        headers = _Headers(extradata, length_size) if references else None
        read = _Packets(time_base)
        top = 0
        for packet in container.demux(stream):
            if not packet.size:
                continue  # the flush packet at the end
            if packet.pts is None:
                return "a packet has no presentation time"
            if packet.is_discard:
                return "an edit list discards some of its packets"
            if packet.is_corrupt:
                return "a packet is marked corrupt"
            # Length-prefixed NAL units are views of the packet, not copies (start codes are
            # searched for in bytes).
            nals = list(_nal_units(memoryview(packet) if length_size else bytes(packet), length_size))
            facts = _classify(codec, nals)
            if facts is None:
                return "a packet holds no picture"  # the count of frames would not hold
            if facts.idr and frames is not None and len(read.pts) > frames:
                read.eof = False
                break
            top = max(top, facts.top)
            if headers is not None:
                headers.packet(nals)
            read.add(packet.pts, facts)
        if top > 0:
            return "temporal sub-layers (a higher one may predict from a 'non-reference' one)"
        read.pictures = headers.pictures() if headers else None
        return read


class _Headers:
    """The slice headers of an H.264 stream's packets, read as they are demuxed; a stream
    ``h264_refs`` does not model gives no pictures (the references are then all kept)."""

    def __init__(self, extradata: bytes, length_size: int | None) -> None:
        self.length_size = length_size  # for the stand-ins' packets
        self.read: h264_refs.Replay | None = h264_refs.Replay()
        try:
            self.parser = h264_refs.Parser(extradata)
        except h264_refs.Unsupported:
            self.read = None

    def packet(self, nals: list[bytes | memoryview]) -> None:
        if self.read is None:
            return
        picture = None
        try:
            for nal in nals:
                found = self.parser.nal(nal, picture)
                if picture is not None and found is not picture:
                    raise h264_refs.Unsupported("two pictures in one packet")
                picture = found
        except h264_refs.Unsupported:
            self.read = None
            return
        if picture is None:
            self.read = None
            return
        try:
            self.read.add(picture)
        except h264_refs.Unsupported:
            self.read = None

    def pictures(self) -> h264_refs.Pictures | None:
        if self.read is None or not len(self.read):
            return None
        try:
            return h264_refs.Pictures(self.read, set(self.parser.pps), self.length_size)
        except h264_refs.Unsupported:
            return None

"""The fast path: decode only the pictures the selected frames need, and prove every image.

For an H.264 or HEVC video, the container's packets are read once (nothing decoded) and
each is classed from its NAL unit headers: a *reference* picture (others are predicted from
it) or not (H.264 ``nal_ref_idc`` 0; HEVC sub-layer non-reference types with one temporal
layer), IDR pictures (nothing after one is predicted from anything before it) and key
pictures.  The packets' presentation times, sorted, number the frames: the k-th smallest is
frame k (``selection``'s definition), which holds when every packet is one picture the
decoder presents (``scan`` refuses any stream where that is not shown: AVI's times, packets
to discard, a start that is not an IDR picture, duplicate times, temporal layers).

Then ffmpeg gets, remuxed (NUT) into its stdin, the selected frames and the pictures they
are predicted from: for H.264 through their reference lists (``h264_refs``), with an
all-skip stand-in for each reference picture in between that none needs, so the decoder's
buffer holds what a full decode's holds; else every reference picture since the IDR.  The
rest never reach the decoder.  What the remux loses (the display matrix, colour facts of
the container) is restated in the command (``VideoInfo.turn``, ``VideoInfo.colour``).

Every image of a fed pass is named by its time in ffmpeg's own log (``frame_log``) mapped
onto the packet table, and checked: a time that is no frame's, a frame not planned, one
missing, or any error ffmpeg reports raises ``FastPathRejected``, and the video is done
again on the plain path (``extract``).  ``fast_plan`` returns the plan, or the reason
there is none.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from itertools import takewhile
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from ..frames.filters import Dedup, Resize, scale_filter
from ..frames.frame_log import FrameLog
from ..frames.pickers import (
    Expect,
    FastPathRejected,
    FrameRef,
)
from ..frames.plans import Pass, Plan
from ..frames.selection import Selection
from ..video.probe import ProbeError, VideoInfo, open_container, video_stream
from . import h264_refs
from .h264_refs import Positions

if TYPE_CHECKING:
    import av
    import av.container
    import av.stream

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
    for chunk in data.split(b"\x00\x00\x01")[1:]:
        if chunk:
            yield chunk


@dataclass(frozen=True)
class PacketTable:
    """Every picture packet of an H.264/HEVC stream, in decode order: what thinning and
    cutting into pieces (``pieces``) decide from.  Made only when each packet is one
    picture the decoder presents at its own time (``scan``)."""

    # One compact array per field, not an object per packet: a 10-hour video has nearly a
    # million packets, and the table is held for the whole task.  Flags are bytes, 0 or 1.
    pts: Sequence[int]
    numbers: Sequence[int]  # each packet's frame number: its place among the times, sorted
    droppable: Sequence[int]  # no other picture is predicted from it
    idr: Sequence[int]
    params: Sequence[int]  # carries parameter sets (SPS, PPS, VPS): never left out
    time_base: Fraction
    # H.264 only, when asked for (``scan(references=True)``): each picture's reference lists.
    pictures: h264_refs.Pictures | None = None
    key: Sequence[int] = ()  # what the decoder marks a key frame (H.264 IDR, HEVC IRAP)
    recovery: bool = False  # H.264 recovery points: the decoder marks more key frames
    eof: bool = True  # every packet of the stream was read (else up to an IDR picture)
    # The frames' times in microseconds from frame 0, by frame number.
    times_us: Sequence[int] = ()
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


def _classify(codec: str, nals: list[bytes | memoryview]) -> tuple[bool, bool, int, bool, bool, bool] | None:
    """(droppable, IDR, highest temporal id, carries parameter sets, key, recovery point)
    of one packet, from its NAL units' headers; None if it holds no picture."""
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
    return (droppable, idr, top, params, key, recovery) if vcl else None


def _has_recovery_point(nal: bytes | memoryview) -> bool:
    """Whether an H.264 SEI NAL unit holds a recovery point message (payload type 6)."""
    data = h264_refs._rbsp(nal)
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
    pts, droppable, idr, params, key, recovery, time_base, pictures, eof = table
    if not pts:
        return "no picture packets"
    if not idr[0]:
        return "it does not start at an IDR picture (the decoder may drop what comes before one)"
    times = np.frombuffer(pts, dtype=np.int64)
    order = np.argsort(times, kind="stable")
    shown = times[order]
    if len(shown) > 1 and not (shown[1:] != shown[:-1]).all():
        return "two packets share a presentation time"
    numbers = np.empty(len(order), dtype=np.int32)
    numbers[order] = np.arange(len(order), dtype=np.int32)
    del order
    try:
        times_us = _times_us(shown, time_base)
    except ProbeError as e:
        return str(e)
    return PacketTable(
        pts,
        _ints("i", numbers),
        droppable,
        idr,
        params,
        time_base,
        pictures,
        key,
        recovery,
        eof,
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


def _constant_rate(us: Sequence[int]) -> Fraction | None:
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


def _read_packets(path: str, codec: str, index: int, frames: int | None = None, references: bool = False):
    """Every packet's time and class (pts, droppable, IDR, parameter sets, key), whether a
    recovery point was seen, the stream's time base, (``references``) its pictures'
    reference lists, and whether the stream's end was reached: up to the first IDR picture
    after ``frames`` packets (see ``scan``); or why a packet cannot be classed."""
    with open_container(path, packets_only=True) as container:
        stream = video_stream(container, index)
        time_base = Fraction(stream.time_base)
        extradata = bytes(stream.codec_context.extradata or b"")
        length_size = _nal_length_size(codec, extradata)
        headers = _Headers(extradata, length_size) if references else None
        pts = array("q")
        droppable, idr, params, key = bytearray(), bytearray(), bytearray(), bytearray()
        recovery = False
        eof = True
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
            if facts[1] and frames is not None and len(pts) > frames:
                eof = False
                break
            top = max(top, facts[2])
            if headers is not None:
                headers.packet(nals)
            pts.append(packet.pts)
            droppable.append(facts[0])
            idr.append(facts[1])
            params.append(facts[3])
            key.append(facts[4])
            recovery |= facts[5]
        if top > 0:
            return "temporal sub-layers (a higher one may predict from a 'non-reference' one)"
        pictures = headers.pictures() if headers else None
        return pts, droppable, idr, params, key, recovery, time_base, pictures, eof


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


def feed(
    path: str,
    index: int,
    keep: Positions | frozenset[int],
    sink: BinaryIO,
    standins: Mapping[int, bytes] | None = None,
) -> None:
    """Write the kept packets, with their own timestamps, as a NUT stream into ``sink``; in
    place of the packets at ``standins``' positions, its payloads (``h264_refs``)."""
    with open_container(path) as container:
        stream = video_stream(container, index)
        last = keep.last() if isinstance(keep, Positions) else max(keep, default=-1)
        # ffmpeg ends as soon as the stream does: nothing after the last kept packet is read.
        packets = takewhile(lambda item: item[0] <= last, enumerate(picture_packets(container, stream)))
        remux(stream, packets, keep.__contains__, standins or {}, sink)


def picture_packets(container: av.container.InputContainer, stream: av.stream.Stream) -> Iterator[av.Packet]:
    """The stream's packets in decode order, less the empty one that flushes at the end."""
    for packet in container.demux(stream):
        if packet.size:
            yield packet


def remux(
    stream: av.stream.Stream,
    packets: Iterable[tuple[int, av.Packet]],
    keep: Callable[[int], bool],
    standins: Mapping[int, bytes],
    sink: BinaryIO,
) -> None:
    """Write ``packets`` (by position) as a NUT stream of ``stream`` into ``sink``: those
    ``keep`` names, and the stand-ins' payloads in place of theirs, timed as they were."""
    import av

    with av.open(sink, "w", format="nut") as out:
        target = out.add_stream_from_template(stream)
        for pos, packet in packets:
            if pos in standins:
                standin = av.Packet(standins[pos])
                standin.pts, standin.dts, standin.time_base = packet.pts, packet.dts, packet.time_base
                standin.stream = target
                out.mux(standin)
            elif keep(pos):
                packet.stream = target
                out.mux(packet)


def needed_packets(
    table: PacketTable, wanted: Callable[[int], bool], packets: range | None = None
) -> tuple[Positions, Mapping[int, bytes]]:
    """The packets (decode positions, within ``packets``: all by default, else a run from an
    IDR picture) to decode for the frames ``wanted`` names, and the stand-ins' payloads by
    position.  The first packet is always kept: frames are numbered by time from it.

    For H.264 whose slice headers were read: the wanted pictures and those they are
    predicted from through their reference lists, with a stand-in for each reference
    picture in between that none of them needs (``h264_refs``).  Else every reference
    picture decoded before a wanted one since its IDR picture (``PacketTable.keep``)."""
    where = packets if packets is not None else range(len(table))
    pictures = table.pictures
    if pictures is None or not where:
        return table.keep(wanted, where), {}
    targets = {pos for pos in where if wanted(table.numbers[pos])} | {where[0]}
    last = max(targets)
    targets |= {pos for pos in where if pos <= last and table.params[pos]}
    keep = pictures.needed(targets)
    return keep, pictures.payloads(pictures.standins(keep))


class FedNaming:
    """A fed pass's image is the frame whose time (from the fed stream's first picture,
    frame ``first``) it has in the packet table; a time that is no frame's rejects the path."""

    def __init__(self, times_us: Sequence[int], first: int) -> None:
        self.times = times_us
        self.first = first
        us = np.asarray(times_us, dtype=np.int64)
        shortest = int(np.diff(us).min()) if len(us) > 1 else 4000
        # Rounding to microseconds (once in the table, once in ffmpeg) moves a time by 2 us
        # at most; a quarter of the shortest frame still tells neighbours apart.
        self.tolerance = max(2, min(1000, shortest // 4))

    def ref(self, log: FrameLog, pts: int, score: float | None) -> FrameRef:
        t = pts - log.first_pts() + self.times[self.first]
        k = bisect_left(self.times, t - self.tolerance)
        if k >= len(self.times) or abs(self.times[k] - t) > self.tolerance:
            raise FastPathRejected(f"ffmpeg presented a picture at {t / 1e6:.6f} s, which is no frame's time")
        return FrameRef(k, round(self.times[k] / 1e6, 6), score)


def frame_number_expr(rate: Fraction, first: int) -> str:
    """ffmpeg's number of the frame being filtered in a fed pass whose first picture is
    frame ``first``, from its time (``n`` counts only the pictures fed)."""
    return f"({first}+round((t-start_t)*{rate.numerator}/{rate.denominator}))"


def wanted_numbers(
    selection: Selection, table: PacketTable, info: VideoInfo, span: range
) -> tuple[list[int], list[str]] | str:
    """The frame numbers in ``span`` the selection takes, by the plain path's rules, from
    the packet table; and the requested frames the video does not have.  Or why not."""
    return selection.kind.wanted(selection, table, span, info.shown_rate)


def fed_pass(
    selection: Selection,
    times_us: Sequence[int],
    rate: Fraction | None,
    info: VideoInfo,
    wanted: list[int],
    missing: list[str],
    first: int,
    feed_it: Callable[[BinaryIO], None],
    resize: Resize | None,
) -> Pass:
    """The pass that decodes a fed stream whose first picture is frame ``first`` and takes
    exactly ``wanted`` from it (named and checked by the packet table)."""
    select = None
    if rate is not None:
        select = selection.kind.fed_select(selection, frame_number_expr(rate, first), wanted)
    # Without a constant rate ffmpeg cannot number what it decodes: it sends every picture
    # fed, and the picker keeps the wanted ones.
    return Pass(
        select,
        Expect(wanted),
        naming=FedNaming(times_us, first),
        input_options={f"-{option}": str(value) for option, value in info.colour},
        transforms=info.turn or (),
        scale=scale_filter(resize, info.width, info.height),
        feed=feed_it,
    )


def fast_plan(
    selection: Selection, info: VideoInfo, path: str, resize: Resize | None, dedup: Dedup | None
) -> Plan | str:
    """The plan that feeds ffmpeg only the packets the selected frames need, or why there
    is none for this video (the plain path then runs)."""
    if dedup is not None:
        return "--dedup compares every frame with the one before"
    slow = selection.kind.slow_reason(selection)
    if slow:
        return slow
    table = scan(path, info, frames=selection.kind.scan_limit(selection), references=True)
    if isinstance(table, str):
        return table
    found = wanted_numbers(selection, table, info, range(len(table)))
    if isinstance(found, str):
        return found
    wanted, missing = found
    if not wanted:
        return "none of the requested frames is in its packets"
    # Decode positions by frame number (the inverse of ``numbers``), for the wanted ones.
    position = np.empty(len(table), dtype=np.int64)
    position[np.frombuffer(table.numbers, dtype=np.int32)] = np.arange(len(table))
    targets = position[np.asarray(wanted, dtype=np.int64)]
    low, high = int(targets.min()), int(targets.max())
    del position, targets
    start = table.idr.rfind(1, 0, low + 1)
    keep, standins = needed_packets(table, set(wanted).__contains__, range(start, high + 1))
    if selection.kind.streaming and len(keep) >= len(table):
        return "the selected frames need every packet"
    first = min(table.numbers[pos] for pos in keep)
    feed_it = partial(feed, path, info.stream, keep, standins=standins)
    the_pass = fed_pass(selection, table.times_us, table.rate, info, wanted, missing, first, feed_it, resize)
    total = max(len(table), info.estimated_frames)
    # Every, fps and key frames look at the whole video: as on the plain path, a file that
    # ends well before its header's duration is truncated (told from the packets' times).
    whole = selection.kind.whole_video and table.eof
    return Plan(
        [the_pass],
        len(wanted),
        streaming=whole,
        missing=list(missing),
        out_size=resize.out_size(info.width, info.height) if resize else (info.width, info.height),
        claimed=info.estimated_frames,
        path=f"fast: {len(keep)} of {len(table)} packets decoded, {len(standins)} stand-ins",
        undecoded=max(0, total - len(keep)),
        reaches=table.times_us[-1] / 1e6 + float(1 / info.shown_rate) if whole else None,
        counted=len(table),
    )

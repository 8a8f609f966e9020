"""Decode less: a frame no one asked for, that no other frame is predicted from, is never decoded.

For a sparse streaming selection (``--every N``, ``--fps R``) of an H.264 or HEVC video, the
container's packets are read once (nothing decoded) and each is classed from its NAL unit
headers: a *reference* picture (others are predicted from it) or not (H.264 ``nal_ref_idc``
0; HEVC sub-layer non-reference types with one temporal layer), and IDR pictures (nothing
after one is predicted from anything before it).  Then the packets ffmpeg gets are the
selected frames and the reference pictures decoded before one of them since the last IDR,
remuxed (NUT) into its stdin; the rest never reach the decoder: x264's default B-frames
make about half the frames non-reference, and with every 30th frame of a 60-frame GOP the
second half of each GOP's references go too.  Every kept frame decodes exactly as from the
file (all of its references are there), so the images are the same bytes as a full decode's.

For H.264 the slice headers are read too (``h264_refs``), and a selected frame keeps only the
pictures it is predicted from, through its reference lists; a reference picture in between
that none needs goes to ffmpeg as a stand-in (every macroblock skipped, its place in the
decoder's buffer the same), so the buffer still holds what a full decode's holds
(``needed_packets``).

ffmpeg's ``select`` then cannot count frames with ``n`` (the skipped ones are missing), so
a frame's number is its time from the first frame times the rate.  That is the frame
number only for constant-rate video, and only when decoding starts at an IDR picture with
every packet timed and shown; anything else (variable rate, an open-GOP start, packets the
demuxer marks to discard, duplicate times) is decoded whole, as before.  ``thin`` says
which case applies; ``None`` means: decode everything.

Exact frames (``--frames``/``--times``) use the same table, read only up to the IDR picture
after the last one asked for, where reading those packets costs less than the seeks it
replaces (``_thinned_seeks``): one stream of, per requested frame, the pictures from the IDR
before it that it needs, instead of one seek per group of frames.  ffmpeg reads every fed
stream to its end; it is never stopped while the feed thread still writes.
"""

from __future__ import annotations

import os
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from itertools import takewhile
from typing import TYPE_CHECKING, BinaryIO

from . import h264_refs
from .filters import Dedup, Resize
from .probe import ProbeError, VideoInfo, open_container, video_stream
from .selection import MAX_TERMS_PER_PASS, SEEKING_MODES, Plan, Selection, plan, requested

if TYPE_CHECKING:
    import av
    import av.container
    import av.stream

CODECS = ("h264", "hevc")
_H264_PARAMETER_SETS = {7, 8}  # SPS, PPS: a packet carrying one is never dropped
_HEVC_PARAMETER_SETS = {32, 33, 34}  # VPS, SPS, PPS
_H264_IDR, _HEVC_IDR = {5}, {19, 20}


@dataclass(frozen=True)
class Thinned:
    """Which packets (by their order among the stream's non-empty packets) go to the decoder,
    and the stand-ins (``h264_refs``) that go in place of others."""

    keep: frozenset[int]
    total: int
    standins: Mapping[int, bytes]

    @property
    def skipped(self) -> int:
        return self.total - len(self.keep)


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
    """Every picture packet of a constant-rate H.264/HEVC stream, in decode order: what
    thinning and cutting into pieces (``pieces``) decide from.  Made only when each
    packet's frame number (its place in display order) is its time from the first frame
    times the rate, the stream starts at an IDR picture and no packet is untimed."""

    pts: tuple[int, ...]
    numbers: tuple[int, ...]  # each packet's frame number
    droppable: tuple[bool, ...]  # no other picture is predicted from it
    idr: tuple[bool, ...]
    params: tuple[bool, ...]  # carries parameter sets (SPS, PPS, VPS): never left out
    time_base: Fraction
    # H.264 only, when asked for (``scan(references=True)``): each picture's reference lists.
    pictures: h264_refs.Pictures | None = None

    def __len__(self) -> int:
        return len(self.pts)

    def keep(self, selected: Callable[[int], bool], packets: range | None = None) -> frozenset[int]:
        """The packets (by decode position) the frames ``selected`` names need: the selected
        frames, and the reference pictures decoded before one of them since the last IDR
        picture.  A picture decoded after the last selected frame before the next IDR is
        needed by none: a frame is predicted only from pictures decoded before it, and
        nothing after an IDR picture from anything before it.  The first packet is always
        kept: it is where the numbering by time starts (``frame_number_expr``)."""
        where = packets if packets is not None else range(len(self.pts))
        kept = {where[0]} if where else set()
        needed = False  # a selected frame is decoded later, before the next IDR picture
        for i in reversed(where):
            if selected(self.numbers[i]):
                kept.add(i)
                needed = True
            elif (needed and not self.droppable[i]) or self.params[i]:
                kept.add(i)
            if self.idr[i]:
                needed = False
        return frozenset(kept)


def _classify(codec: str, nals: list[bytes | memoryview]) -> tuple[bool, bool, int, bool] | None:
    """(droppable, IDR, highest temporal id, carries parameter sets) of one packet, from its
    NAL units' headers; None if it holds no picture."""
    vcl = idr = params = False
    droppable = True
    top = 0
    for head in nals:
        if codec == "h264":
            kind = head[0] & 0x1F
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
                # Even types below 16 are sub-layer non-reference pictures.
                droppable &= kind < 16 and kind % 2 == 0
    return (droppable, idr, top, params) if vcl else None


def scan(
    path: str, info: VideoInfo, frames: int | None = None, references: bool = False
) -> PacketTable | None:
    """The video's packet table (every packet read, none decoded), or None when the
    stream is not one whose frames can be numbered without decoding them all.

    ``frames``: only the first ``frames`` frames (in display order) are needed, so reading
    stops at the first IDR picture after that many packets: every picture decoded before
    an IDR picture is shown before it and before anything decoded after it, so the packets
    read are exactly the first frames shown, however they were reordered.

    ``references``: for H.264, also read every slice header and replay the reference lists
    (``h264_refs``), where the stream is one that module models."""
    if info.codec not in CODECS:
        return None
    try:
        table = _read_packets(path, info.codec, frames, references and info.codec == "h264")
    except ProbeError:
        return None
    if table is None:
        return None
    pts, droppable, idr, params, time_base, pictures = table
    if not pts or not idr[0]:
        return None  # frames before the first IDR may be dropped by the decoder itself
    if len(set(pts)) != len(pts):
        return None
    # Constant rate: the k-th frame shown is at exactly k frames from the first.
    shown = sorted(pts)
    ticks = info.frame_rate * time_base
    number = {t: round((t - shown[0]) * ticks) for t in shown}
    if any(number[t] != k for k, t in enumerate(shown)):
        return None
    return PacketTable(
        tuple(pts),
        tuple(number[t] for t in pts),
        tuple(droppable),
        tuple(idr),
        tuple(params),
        time_base,
        pictures,
    )


def thin(path: str, info: VideoInfo, selected: Callable[[int], bool]) -> Thinned | None:
    """The packets to decode for the frames ``selected`` (by frame number) asks for, or None
    when thinning cannot be shown to give exactly the frames a full decode gives."""
    table = scan(path, info, references=True)
    if table is None:
        return None
    keep, standins = needed_packets(table, selected)
    if len(keep) == len(table):
        return None
    return Thinned(keep, len(table), standins)


def _read_packets(
    path: str, codec: str, frames: int | None = None, references: bool = False
) -> tuple[list[int], list[bool], list[bool], list[bool], Fraction, h264_refs.Pictures | None] | None:
    """Every packet's time and class (pts, droppable, IDR, parameter sets), the stream's
    time base and (``references``) its pictures' reference lists, up to the first IDR
    picture after ``frames`` packets (see ``scan``); None if any packet cannot be classed."""
    with open_container(path, packets_only=True) as container:
        stream = video_stream(container)
        time_base = Fraction(stream.time_base)
        extradata = bytes(stream.codec_context.extradata or b"")
        length_size = _nal_length_size(codec, extradata)
        headers = _Headers(extradata, length_size) if references else None
        pts: list[int] = []
        droppable: list[bool] = []
        idr: list[bool] = []
        params: list[bool] = []
        top = 0
        for packet in container.demux(stream):
            if not packet.size:
                continue  # the flush packet at the end
            if packet.pts is None or packet.is_discard or packet.is_corrupt:
                return None
            # Length-prefixed NAL units are views of the packet, not copies (start codes are
            # searched for in bytes).
            nals = list(_nal_units(memoryview(packet) if length_size else bytes(packet), length_size))
            facts = _classify(codec, nals)
            if facts is None:
                return None  # a packet with no picture: the count of frames would not hold
            if facts[1] and frames is not None and len(pts) > frames:
                break
            top = max(top, facts[2])
            if headers is not None:
                headers.packet(nals)
            pts.append(packet.pts)
            droppable.append(facts[0])
            idr.append(facts[1])
            params.append(facts[3])
        if top > 0:
            return None  # temporal sub-layers: a higher one may predict from a "non-reference" one
        return pts, droppable, idr, params, time_base, headers.pictures() if headers else None


class _Headers:
    """The slice headers of an H.264 stream's packets, read as they are demuxed; a stream
    ``h264_refs`` does not model gives no pictures (the references are then all kept)."""

    def __init__(self, extradata: bytes, length_size: int | None) -> None:
        self.length_size = length_size  # for the stand-ins' packets
        self.read: list[h264_refs.Picture] | None = []
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
        else:
            self.read.append(picture)

    def pictures(self) -> h264_refs.Pictures | None:
        if not self.read:
            return None
        try:
            return h264_refs.Pictures(self.read, set(self.parser.pps), self.length_size)
        except h264_refs.Unsupported:
            return None


def feed(
    path: str, keep: frozenset[int], sink: BinaryIO, standins: Mapping[int, bytes] | None = None
) -> None:
    """Write the kept packets, with their own timestamps, as a NUT stream into ``sink``; in
    place of the packets at ``standins``' positions, its payloads (``h264_refs``)."""
    with open_container(path) as container:
        stream = video_stream(container)
        last = max(keep, default=-1)
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


def frame_number_expr(rate: Fraction) -> str:
    """ffmpeg's number of the frame being filtered, from its time (``n`` counts only the
    frames decoded, which here are not all)."""
    return f"round((t-start_t)*{rate.numerator}/{rate.denominator})"


def selected_numbers(selection: Selection, rate: Fraction) -> Callable[[int], bool] | None:
    """The frame-number test ``select`` applies for ``--every``/``--fps`` (see selection._plan);
    None for a selection that takes every frame or is not a sparse streaming one."""
    if selection.mode == "every" and selection.every and selection.every > 1:
        every = selection.every
        return lambda n: n % every == 0
    if selection.mode == "fps" and selection.fps:
        step = Fraction(selection.fps) / rate
        if step >= 1:
            return None
        a, b = step.numerator, step.denominator
        return lambda n: (n * a) // b > ((n - 1) * a) // b
    return None


def thinned_plan(
    selection: Selection, info: VideoInfo, path: str, resize: Resize | None, dedup: Dedup | None
) -> tuple[Plan, int] | None:
    """The plan of a sparse selection with only the packets worth decoding fed to ffmpeg,
    and how many frames are never decoded; None when the video is decoded whole (or, for
    exact frames and times, seeks as before)."""
    if selection.mode in SEEKING_MODES:
        return _thinned_seeks(selection, info, path, resize)
    selected = selected_numbers(selection, info.frame_rate) if dedup is None else None
    if selected is None:
        return None
    thinned = thin(path, info, selected)
    if thinned is None:
        return None
    result = plan(selection, info, resize=resize, frame_number=frame_number_expr(info.frame_rate))
    (only,) = result.passes
    only.feed = partial(feed, path, thinned.keep, standins=thinned.standins)
    return result, thinned.skipped


def needed_packets(
    table: PacketTable, wanted: Callable[[int], bool], packets: range | None = None
) -> tuple[frozenset[int], dict[int, bytes]]:
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
    return keep, {pos: pictures.payload(pos) for pos in pictures.standins(keep)}


# Exact frames read the packets up to the last one asked for only where that costs less
# than the seeks it replaces: about 1.4 ms per MB read here, against a key-frame interval
# decoded per seek.
SCAN_BYTES_PER_TARGET = 64 << 20


def _thinned_seeks(
    selection: Selection, info: VideoInfo, path: str, resize: Resize | None
) -> tuple[Plan, int] | None:
    """Exact frames (``--frames``/``--times``) as one stream of only what they need
    (``needed_packets``), from the IDR picture before the first of them.  Instead of one
    seek per group of frames, each decoding every picture from its key frame."""
    indices, _ = requested(selection, info)
    if not indices or len(indices) > MAX_TERMS_PER_PASS:
        return None
    # Packets are read up to the last frame asked for (see scan), about this many bytes:
    read = os.stat(path).st_size * min(1.0, (indices[-1] + 1) / max(1, info.estimated_frames))
    if read > SCAN_BYTES_PER_TARGET * len(indices):
        return None  # few frames far into a long file: seeking reads less of it
    table = scan(path, info, frames=indices[-1] + 1, references=True)
    if table is None:
        return None
    position = {number: pos for pos, number in enumerate(table.numbers)}
    if any(i not in position for i in indices):
        return None  # the header claims frames the packets do not hold: seek, as before
    targets = [position[i] for i in indices]
    idrs = [pos for pos, idr in enumerate(table.idr) if idr]
    start = idrs[bisect_right(idrs, min(targets)) - 1]
    keep, standins = needed_packets(table, set(indices).__contains__, range(start, max(targets) + 1))
    # Frames are numbered by time from the first one shown, which is the smallest kept.
    first = min(table.numbers[pos] for pos in keep)
    result = plan(
        selection, info, resize=resize, frame_number=f"({first}+{frame_number_expr(info.frame_rate)})"
    )
    (only,) = result.passes
    only.feed = partial(feed, path, keep, standins=standins)
    # The table may stop after the last frame asked for: the frames after it are not decoded either.
    return result, max(len(table), info.estimated_frames) - len(keep)

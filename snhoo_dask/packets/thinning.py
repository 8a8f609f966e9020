"""The fast path: decode only the pictures the selected frames need, and prove every image.

From the packet table (``table``: every packet read once, classed, none decoded), ffmpeg
gets, remuxed (NUT) into its stdin, the selected frames and the pictures they are
predicted from: for H.264 through their reference lists (``h264_refs``), with an all-skip
stand-in for each reference picture in between that none needs, so the decoder's buffer
holds what a full decode's holds; else every reference picture since the IDR.  The rest
never reach the decoder.  What the remux loses (the display matrix, colour facts of the
container) is restated in the command (``VideoInfo.turn``, ``VideoInfo.colour``).

Every image of a fed pass is named by its time in ffmpeg's own log (``frame_log``) mapped
onto the packet table, and checked: a time that is no frame's, a frame not planned, one
missing, or any error ffmpeg reports raises ``FastPathRejected``, and the video is done
again on the plain path (``extract``).  ``fast_plan`` returns the plan, or the reason
there is none.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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
from ..frames.plans import Naming, Pass, Plan
from ..frames.selection import Selection
from ..video.probe import VideoInfo, open_container, video_stream
from .h264_refs import Positions
from .table import PacketTable, scan

if TYPE_CHECKING:
    import av
    import av.container
    import av.stream


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


class FedNaming(Naming):
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

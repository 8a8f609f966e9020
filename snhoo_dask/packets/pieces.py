"""Cutting one long video into pieces that several workers extract at the same time.

A piece is a run of the video's packets in decode order that starts at an IDR picture
and shows exactly the frames ``[first, end)``: no picture in it is predicted from one
before it (an IDR allows none), and every frame shown in that range is decoded inside
it (the frames before the cut are exactly the packets before it: ``_cut_points``).  So
each piece decodes on its own, gives the same images as the whole video would, and
together the pieces give every frame once.  Its packets are remuxed (NUT) into its
ffmpeg's stdin, as a thinned pass's are; a piece of a sparse selection is thinned too.

Only a video whose packets could be numbered (``table.scan``: H.264/HEVC, starting at
an IDR, every packet one picture shown at its own time) is cut; the rest run whole, as one
task.  A piece names and checks its images as every fed pass does (``thinning.FedNaming``,
``pickers.Expect``): one that cannot prove them is rejected, and the video is extracted
whole on the plain path instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from typing import TYPE_CHECKING, BinaryIO

from ..errors import FastPathError
from ..frames.filters import Resize
from ..frames.plans import Plan
from ..frames.selection import Selection
from ..video.probe import VideoInfo, open_container, video_stream
from .table import PacketTable
from .thinning import fed_pass, needed_packets, picture_packets, remux, wanted_numbers

if TYPE_CHECKING:
    import av

# No more pieces than this per worker thread: enough to even out pieces of unequal speed.
PIECES_PER_SLOT = 2
# 400 kbit/s: below this few videos are worth cutting (a 360p phone clip is about 1 Mbit/s).
LOW_BYTES_PER_SECOND = 50_000


@dataclass(frozen=True)
class Piece:
    index: int  # 0-based, in frame order
    first: int  # the first frame it shows
    end: int  # one past its last frame
    start_pts: int  # its IDR picture's time (stream time base)
    packets: int  # its packets, in decode order from that IDR
    skip: frozenset[int]  # those (by offset from its start) no selected frame needs
    # (offset, payload): stand-ins fed in place of some of those (thinning.needed_packets)
    standins: tuple[tuple[int, bytes], ...] = ()
    wanted: tuple[int, ...] = ()  # the frames it takes, by number in the whole video

    @property
    def frames(self) -> int:
        return self.end - self.first

    def describe(self, pieces: int) -> str:
        return f"piece {self.index + 1} of {pieces} (frames {self.first}-{self.end - 1})"


def splittable(selection: Selection, dedup: object, pack: str) -> bool:
    """Whether a job's settings allow a video to be cut (its own stream decides the rest)."""
    return selection.kind.splittable and dedup is None and pack == "folder"


def pieces_wanted(sizes: list[int], slots: int, min_seconds: float) -> list[int]:
    """How many pieces to plan for each video (1: run it whole).

    A video is cut when it alone is more than half of one worker thread's fair share of
    the job (size stands in for length): it would otherwise be the one task still running
    at the end, on one core, while the others idle.  A job of many videos of like size
    cuts none of them, nor a video too small to hold two pieces of ``min_seconds`` even at
    a low bit rate (planning reads all of its packets)."""
    if slots < 2 or not sizes:
        return [1] * len(sizes)
    share = sum(sizes) / slots / PIECES_PER_SLOT
    floor = 2 * min_seconds * LOW_BYTES_PER_SECOND
    return [
        min(slots * PIECES_PER_SLOT, max(1, math.ceil(s / share))) if s > share and s >= floor else 1
        for s in sizes
    ]


def cut(
    table: PacketTable,
    info: VideoInfo,
    pieces: int,
    min_seconds: float,
    selection: Selection,
    thin: bool = True,
) -> list[Piece] | None:
    """The video cut at IDR pictures into at most ``pieces`` pieces of at least
    ``min_seconds`` each, as even as the cut points allow; None when it stays whole.
    ``thin``: each piece decodes only what its selected frames need; else every packet."""
    total = len(table)
    min_frames = max(1, math.ceil(min_seconds * float(info.frame_rate)))
    pieces = min(pieces, total // min_frames)
    if pieces < 2:
        return None
    points = _cut_points(table)
    cuts: list[int] = []
    for k in range(1, pieces):
        target = k * total // pieces
        best = min(points, key=lambda p: abs(p - target), default=None)
        if best is None:
            return None
        last = cuts[-1] if cuts else 0
        if best - last >= min_frames and total - best >= min_frames:
            cuts.append(best)
    if not cuts:
        return None
    bounds = [0, *cuts, total]
    result = []
    for i, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False)):
        span = range(a, b)
        found = wanted_numbers(selection, table, info, span)
        if isinstance(found, str):
            return None
        wanted = found[0]
        sparse = thin and selection.mode != "all"
        keep, standins = (
            needed_packets(table, set(wanted).__contains__, span) if sparse else (frozenset(span), {})
        )
        # Decode positions a..b-1 show frames a..b-1 (``_cut_points``).
        skip = frozenset(p - a for p in span if p not in keep)
        stand = tuple(sorted((p - a, payload) for p, payload in standins.items()))
        result.append(Piece(i, a, b, table.pts[a], b - a, skip, stand, tuple(wanted)))
    return result


def _cut_points(table: PacketTable) -> list[int]:
    """Decode positions where a piece may start: an IDR picture, with the packets before
    it showing exactly the frames before it (no picture decoded later is shown earlier)."""
    points = []
    highest = -1
    for i, number in enumerate(table.numbers):
        if i and table.idr[i] and highest == i - 1:
            points.append(i)
        highest = max(highest, number)
    return points


def piece_plan(
    selection: Selection,
    info: VideoInfo,
    piece: Piece,
    path: str,
    resize: Resize | None,
    times_us: Sequence[int],
    rate: Fraction | None,
) -> Plan:
    """The one pass that takes this piece's share of the selection: fed only its packets,
    naming each frame by its number in the whole video (``times_us``: every frame's time)."""
    feed_it = partial(feed_piece, path, info.stream, piece)
    the_pass = fed_pass(selection, times_us, rate, info, list(piece.wanted), [], piece.first, feed_it, resize)
    return Plan(
        [the_pass],
        len(piece.wanted),
        streaming=False,
        out_size=resize.out_size(info.width, info.height) if resize else (info.width, info.height),
        claimed=piece.frames,  # counted from the packets, not taken from the header
        path="fast: pieces",
        undecoded=len(piece.skip),
    )


class PieceNotFound(FastPathError):
    """The demuxer could not find the piece's first packet again."""


def feed_piece(path: str, index: int, piece: Piece, sink: BinaryIO) -> None:
    """Write the piece's packets (less those skipped, stand-ins for some) as a NUT stream
    into ``sink``.

    A seek to its IDR reads no packet before the piece (the container's index); a
    demuxer that seeks past it (an imprecise index) is read from the start instead."""
    with open_container(path) as container:
        stream = video_stream(container, index)
        container.seek(piece.start_pts, stream=stream, backward=True, any_frame=False)
        packets = picture_packets(container, stream)
        first = next(packets, None)
        if first is None or first.pts is None or first.pts > piece.start_pts:
            container.seek(0, stream=stream, backward=True, any_frame=False)
            packets = picture_packets(container, stream)
            first = next(packets, None)
        while first is not None and first.pts != piece.start_pts:
            first = next(packets, None)
        if first is None:
            raise PieceNotFound(f"no packet at the piece's start ({piece.start_pts})")
        numbered = _numbered(first, packets, piece.packets)
        remux(stream, numbered, lambda offset: offset not in piece.skip, dict(piece.standins), sink)


def _numbered(first: av.Packet, rest: Iterator[av.Packet], count: int) -> Iterator[tuple[int, av.Packet]]:
    """The piece's ``count`` packets by offset, ``first`` first; PieceNotFound if fewer."""
    packet: av.Packet | None = first
    for offset in range(count):
        if packet is None:
            raise PieceNotFound(f"the video ended {count - offset} packets early")
        yield offset, packet
        if offset + 1 < count:
            packet = next(rest, None)

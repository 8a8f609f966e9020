"""Which earlier pictures an H.264 picture is predicted from, read from its slice headers,
and stand-ins for the reference pictures nothing asked for needs.

``thinning`` keeps, for a requested frame, every reference picture decoded before it since
the last IDR.  With x264's defaults many of those are needed by nothing asked for: its
B-pyramid's middle B-frame is a reference, but P-frames (``ref=1``) are predicted only from
the P-frame before, through an explicit reordering of their reference list.  Only the
slice headers say so.  This module reads them (sequence and picture parameter sets, each
slice's reference list sizes and reorderings, its reference marking: ``h264_headers``), replays the decoded
picture buffer as the standard builds it, and gives, for each picture, the pictures its
reference lists hold; a requested frame needs those, and theirs, and so on.

A reference picture cannot simply be left out: the decoder would see a gap in
``frame_num`` and fill it with made-up pictures whose order counts are not the missing
ones', and those sort into the next B-frame's lists.  So a reference picture that is not
needed but is decoded before one that is gets a *stand-in* (``Pictures.standin``): a
P-picture with the same ``frame_num``, order count and reference marking, every macroblock
skipped, coded with CAVLC under a picture parameter set of its own (added in the same
packet).  The decoder's picture buffer then changes exactly as with the real picture, so
every kept picture is predicted from the same pictures as in a full decode; the stand-in's
own content (a copy of a reference picture) is seen by nothing but its own output frame,
which no selection takes.  Decoding one costs about a tenth of a real picture here.

Anything not modelled (fields, long-term references, memory management other than "this
short-term picture is unused", slice groups, gaps in ``frame_num``, ...) raises
``Unsupported``: the caller then keeps every reference picture, as before.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import NamedTuple, overload

from .h264_headers import _I, _P, _SPS, Parser, Picture, Unsupported, _Slice, _Writer

# The headers' reader and its error, where the replay's callers find them.
__all__ = ["Parser", "Picture", "Pictures", "Positions", "Replay", "Standins", "Unsupported"]


def _by_order(short: list[_Ref], poc: int, down: bool) -> list[_Ref]:
    """The pictures shown before ``poc`` (``down``: nearest first) or after it."""
    if down:
        return sorted((r for r in short if r.poc < poc), key=lambda r: -r.poc)
    return sorted((r for r in short if r.poc > poc), key=lambda r: r.poc)


class _Ref(NamedTuple):
    pos: int
    frame_num: int
    poc: int


class Replay:
    """The decoded picture buffer replayed as the standard builds it (8.2.4, 8.2.5) for
    frames with short-term references only, one picture at a time in decode order.

    Only what later questions need is kept, in flat arrays (a few bytes per picture, not an
    object per picture): a 10-hour video has nearly a million pictures.  The buffer itself
    holds at most ``max_num_ref_frames`` pictures."""

    def __init__(self) -> None:
        self.short: list[_Ref] = []  # most recent first
        self.prev = (0, 0, 0, 0)  # frame_num, frame number offset, order count MSB and LSB
        self.refs = array("i")  # every picture's reference list entries, one after another
        self.ends = array("L")  # where each picture's entries end in ``refs``
        self.frame_num = array("i")
        self.poc_lsb = array("i")
        self.flags = bytearray()  # nal_ref_idc (bits 0-1), IDR (bit 2), explicit marking (bit 3)
        self.sps_index = bytearray()  # into ``sps``
        self.sps: list[_SPS] = []
        self.delta_poc_bottom: dict[int, int] = {}  # where not 0
        self.unused: dict[int, tuple[int, ...]] = {}  # where not empty
        self.idrs = array("i")

    def __len__(self) -> int:
        return len(self.flags)

    def add(self, pic: Picture) -> None:
        """Take the next picture in decode order; Unsupported where it leaves the model."""
        pos = len(self.flags)
        sps = pic.sps
        max_frame_num = 1 << sps.log2_max_frame_num
        prev_frame_num, prev_offset, prev_msb, prev_lsb = self.prev
        if pic.idr:
            self.short.clear()
            prev_frame_num = prev_offset = prev_msb = prev_lsb = 0
        elif pic.frame_num not in (prev_frame_num, (prev_frame_num + 1) % max_frame_num):
            raise Unsupported("a gap in frame_num")
        poc, msb, offset = _order_count(pic, prev_msb, prev_lsb, prev_frame_num, prev_offset)
        for s in pic.slices:
            for ref_list in _lists(self.short, pic, s, poc):
                self.refs.extend(ref_list)
        if pic.reference:
            _mark(self.short, sps, pic, _Ref(pos, pic.frame_num, poc))
            prev_msb, prev_lsb = msb, pic.poc_lsb
        self.prev = (pic.frame_num, offset, prev_msb, prev_lsb)
        self._keep(pos, pic)

    def _keep(self, pos: int, pic: Picture) -> None:
        try:
            index = next(i for i, known in enumerate(self.sps) if known is pic.sps)
        except StopIteration:
            index = len(self.sps)
            self.sps.append(pic.sps)
        if index > 255:
            raise Unsupported("more sequence parameter sets than can be told apart")
        try:
            self.frame_num.append(pic.frame_num)
            self.poc_lsb.append(pic.poc_lsb)
            self.ends.append(len(self.refs))
        except OverflowError:
            raise Unsupported("a frame number or order count wider than 31 bits") from None
        self.flags.append(pic.nal_ref_idc | (4 if pic.idr else 0) | (8 if pic.explicit_marking else 0))
        self.sps_index.append(index)
        if pic.delta_poc_bottom:
            self.delta_poc_bottom[pos] = pic.delta_poc_bottom
        if pic.unused:
            self.unused[pos] = pic.unused
        if pic.idr:
            self.idrs.append(pos)

    def picture(self, pos: int) -> Picture:
        """Picture ``pos`` as read (less its slices, which only the replay needed)."""
        flags = self.flags[pos]
        return Picture(
            flags & 3, bool(flags & 4), self.frame_num[pos], self.poc_lsb[pos],
            self.delta_poc_bottom.get(pos, 0), self.sps[self.sps_index[pos]],
            [], self.unused.get(pos, ()), bool(flags & 8),
        )  # fmt: skip

    def references(self, pos: int) -> array:
        """The positions in picture ``pos``'s reference lists (every slice, every list)."""
        return self.refs[self.ends[pos - 1] if pos else 0 : self.ends[pos]]


class _PictureView(Sequence[Picture]):
    """The pictures, each rebuilt from the replay's arrays when asked for."""

    def __init__(self, replay: Replay) -> None:
        self.replay = replay

    def __len__(self) -> int:
        return len(self.replay)

    @overload
    def __getitem__(self, pos: int) -> Picture: ...
    @overload
    def __getitem__(self, pos: slice) -> list[Picture]: ...

    def __getitem__(self, pos: int | slice) -> Picture | list[Picture]:
        if isinstance(pos, slice):
            return [self.replay.picture(i) for i in range(len(self))[pos]]
        if pos < 0:
            pos += len(self)
        if not 0 <= pos < len(self):
            raise IndexError(pos)
        return self.replay.picture(pos)


class Positions:
    """A set of decode positions below ``size``, one byte each (a frozenset of a million
    positions would take some 60 MB)."""

    def __init__(self, size: int, members: Iterable[int] = ()) -> None:
        self.bits = bytearray(size)
        for pos in members:
            self.bits[pos] = 1
        self.count = self.bits.count(1)

    @classmethod
    def of(cls, bits: bytearray) -> Positions:
        out = cls(0)
        out.bits, out.count = bits, bits.count(1)
        return out

    def __contains__(self, pos: object) -> bool:
        return isinstance(pos, int) and 0 <= pos < len(self.bits) and bool(self.bits[pos])

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[int]:
        find, pos = self.bits.find, -1
        while (pos := find(1, pos + 1)) >= 0:
            yield pos

    def last(self) -> int:
        """The highest position held (-1: none)."""
        return self.bits.rfind(1)

    def first(self) -> int:
        """The lowest position held (-1: none)."""
        return self.bits.find(1)

    def __le__(self, other: object) -> bool:
        return all(pos in other for pos in self)  # type: ignore[operator]

    def __lt__(self, other: object) -> bool:
        return len(self) < len(other) and self <= other  # type: ignore[arg-type]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (Positions, set, frozenset)):
            return len(self) == len(other) and self <= other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


def _replay(pictures: Iterable[Picture]) -> Replay:
    replay = Replay()
    for pic in pictures:
        replay.add(pic)
    return replay


def _order_count(
    pic: Picture, prev_msb: int, prev_lsb: int, prev_frame_num: int, prev_offset: int
) -> tuple[int, int, int]:
    """The picture's order count (the smaller of its fields'), its MSB (type 0) and its
    frame number offset (type 2)."""
    sps = pic.sps
    if sps.poc_type == 0:
        half = 1 << (sps.log2_max_poc_lsb - 1)
        msb = prev_msb
        if pic.poc_lsb < prev_lsb and prev_lsb - pic.poc_lsb >= half:
            msb += 2 * half
        elif pic.poc_lsb > prev_lsb and pic.poc_lsb - prev_lsb > half:
            msb -= 2 * half
        top = msb + pic.poc_lsb
        return min(top, top + pic.delta_poc_bottom), msb, 0
    if pic.idr:
        return 0, 0, 0
    offset = prev_offset + ((1 << sps.log2_max_frame_num) if prev_frame_num > pic.frame_num else 0)
    return 2 * (offset + pic.frame_num) - (0 if pic.reference else 1), 0, offset


def _mark(short: list[_Ref], sps: _SPS, pic: Picture, ref: _Ref) -> None:
    """Reference marking after a reference picture: its MMCO 1s, or the sliding window."""
    if pic.explicit_marking:
        max_frame_num = 1 << sps.log2_max_frame_num
        for diff in pic.unused:
            target = (ref.frame_num - (diff + 1)) % max_frame_num
            hit = [r for r in short if r.frame_num == target]
            if not hit:
                raise Unsupported("marks unused a picture not held")
            short.remove(hit[0])
    elif short and len(short) >= max(sps.max_num_ref_frames, 1):
        short.pop()  # the oldest (smallest FrameNumWrap: frame_num has no gaps here)
    short.insert(0, ref)
    if len(short) > max(sps.max_num_ref_frames, 1):
        raise Unsupported("more reference pictures than the stream allows")


def _lists(short: list[_Ref], pic: Picture, s: _Slice, poc: int) -> list[tuple[int, ...]]:
    if s.kind == _I:
        return []
    if s.kind == _P:
        initial = [list(short)]
    else:
        before, after = _by_order(short, poc, True), _by_order(short, poc, False)
        initial = [before + after, after + before]
        if len(initial[1]) > 1 and initial[0] == initial[1]:
            initial[1][0], initial[1][1] = initial[1][1], initial[1][0]
    max_frame_num = 1 << pic.sps.log2_max_frame_num
    lists = []
    for lst, refs in enumerate(initial):
        size = s.active[lst]
        entries: list[_Ref | None] = (refs + [None] * size)[:size]
        pred = pic.frame_num
        for index, (op, value) in enumerate(s.modifications[lst]):
            pred = (pred - (value + 1) if op == 0 else pred + value + 1) % max_frame_num
            found = [r for r in short if r.frame_num == pred]
            if not found:
                raise Unsupported("reorders to a picture not held")
            i = index
            while i + 1 < size and not ((entry := entries[i]) is not None and entry.frame_num == pred):
                i += 1
            entries[index + 1 : i + 1] = entries[index:i]
            entries[index] = found[0]
        if any(r is None for r in entries):
            raise Unsupported("a reference list longer than the pictures held")
        lists.append(tuple(r.pos for r in entries if r is not None))
    return lists


class Pictures:
    """A stream's pictures in decode order, with their reference lists replayed
    (``pictures``: a list of ``Picture``, or a ``Replay`` that took them one by one)."""

    def __init__(
        self, pictures: Iterable[Picture] | Replay, pps_ids: set[int], length_size: int | None
    ) -> None:
        self.replay = pictures if isinstance(pictures, Replay) else _replay(pictures)
        self.pictures = _PictureView(self.replay)
        self.length_size = length_size  # of each NAL unit in a packet; None: Annex B start codes
        self.idrs = self.replay.idrs
        free = [i for i in range(256) if i not in pps_ids]
        if not free:
            raise Unsupported("no picture parameter set id left for the stand-ins")
        self.standin_pps_id = free[0]

    def needed(self, positions: Iterable[int]) -> Positions:
        """``positions``, every picture they are predicted from through any chain, and the
        IDR picture each is decoded after."""
        idrs, replay = self.idrs, self.replay
        positions = list(positions)
        starts = {idrs[bisect_right(idrs, pos) - 1] for pos in positions if idrs and idrs[0] <= pos}
        needed = Positions(len(replay), starts)
        bits, todo = needed.bits, list(positions)
        for pos in positions:
            bits[pos] = 1
        while todo:
            for pos in replay.references(todo.pop()):
                if not bits[pos]:
                    bits[pos] = 1
                    todo.append(pos)
        return Positions.of(bits)

    def standins(self, kept: Positions | frozenset[int] | set[int]) -> Positions:
        """The reference pictures not kept that a kept picture is decoded after, before the
        next IDR picture: each must be there, as a stand-in, for the buffer to hold the same
        pictures.  (Those after the last kept picture before an IDR are simply left out.)"""
        flags = self.replay.flags
        held = kept.bits if isinstance(kept, Positions) else Positions(len(flags), kept).bits
        out, later = bytearray(len(flags)), False
        for pos in range(len(flags) - 1, -1, -1):
            if held[pos]:
                later = True
            elif later and flags[pos] & 3:
                out[pos] = 1
            if flags[pos] & 4:
                later = False
        return Positions.of(out)

    def payloads(self, positions: Positions) -> Standins:
        """The stand-ins' packets at ``positions``, each made when asked for."""
        return Standins(self, positions)

    def standin(self, pos: int) -> list[bytes]:
        """The NAL units (without start codes or lengths) that stand in for picture ``pos``:
        a picture parameter set for CAVLC and a P-slice skipping every macroblock, with the
        picture's ``frame_num``, order count and reference marking."""
        pic = self.pictures[pos]
        sps = pic.sps
        if not pic.reference or pic.idr:
            raise ValueError("only a non-IDR reference picture gets a stand-in")
        pps = _Writer()
        pps.ue(self.standin_pps_id)
        pps.ue(sps.sps_id)
        pps.u(1, 0)  # CAVLC: no arithmetic coder to set up for skipped macroblocks
        pps.u(1, 1)  # bottom field order count present: written as the picture's own
        pps.ue(0)  # one slice group
        pps.ue(0)  # one reference picture in each list
        pps.ue(0)
        pps.u(1, 0)  # no weighted prediction
        pps.u(2, 0)
        pps.se(0)  # QP 26; chroma QP offset 0
        pps.se(0)
        pps.se(0)
        pps.u(1, 1)  # deblocking control present: the slice turns it off
        pps.u(1, 0)  # no constrained intra, no redundant pictures
        pps.u(1, 0)
        sl = _Writer()
        sl.ue(0)  # first macroblock
        sl.ue(5)  # P (every slice of the picture)
        sl.ue(self.standin_pps_id)
        sl.u(sps.log2_max_frame_num, pic.frame_num)
        if sps.poc_type == 0:
            sl.u(sps.log2_max_poc_lsb, pic.poc_lsb)
            sl.se(pic.delta_poc_bottom)
        sl.u(1, 0)  # the PPS's list size (1)
        sl.u(1, 0)  # no reordering
        if pic.explicit_marking:
            sl.u(1, 1)
            for diff in pic.unused:
                sl.ue(1)
                sl.ue(diff)
            sl.ue(0)
        else:
            sl.u(1, 0)
        sl.se(0)  # QP delta
        sl.ue(1)  # no deblocking
        sl.ue(sps.macroblocks)  # mb_skip_run: all of them
        return [pps.nal(0x68), sl.nal((pic.nal_ref_idc << 5) | 1)]

    def payload(self, pos: int) -> bytes:
        """The stand-in for picture ``pos`` as a packet of this stream."""
        if self.length_size is None:
            return b"".join(b"\x00\x00\x00\x01" + nal for nal in self.standin(pos))
        return b"".join(len(nal).to_bytes(self.length_size, "big") + nal for nal in self.standin(pos))


class Standins(Mapping[int, bytes]):
    """Stand-in packets by decode position, made when read (a 10-hour video has some
    hundred thousand; each is read once, as the stream is fed)."""

    def __init__(self, pictures: Pictures, positions: Positions) -> None:
        self.pictures, self.positions = pictures, positions

    def __getitem__(self, pos: int) -> bytes:
        if pos not in self.positions:
            raise KeyError(pos)
        return self.pictures.payload(pos)

    def __contains__(self, pos: object) -> bool:
        return pos in self.positions

    def __iter__(self) -> Iterator[int]:
        return iter(self.positions)

    def __len__(self) -> int:
        return len(self.positions)

"""H.264 headers read and written: sequence and picture parameter sets, and each slice's
header as far as its reference lists go (list sizes, reorderings, reference marking);
``Parser`` turns a stream's NAL units into ``Picture``s for the replay of its decoded
picture buffer (``h264_refs``), and ``_Writer`` writes the stand-ins' headers.

Anything not modelled (fields, long-term references, memory management other than "this
short-term picture is unused", slice groups, ...) raises ``Unsupported``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from ..errors import FastPathError

_SLICE_NALS = (1, 5)
_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}
_P, _B, _I = 0, 1, 2
# A slice header (with its weight table and reference marking) fits in far fewer bytes;
# a NAL unit shorter than that is read whole.
_HEADER_BYTES = 48


class Unsupported(FastPathError):
    """A stream (or a stream feature) whose reference lists this module does not replay."""


class _Bits:
    """Big-endian bit reader over an RBSP (emulation prevention bytes already removed)."""

    def __init__(self, data: bytes, start_bit: int = 0) -> None:
        self.value = int.from_bytes(data, "big")
        self.size = len(data) * 8
        self.pos = start_bit

    def u(self, n: int) -> int:
        if self.pos + n > self.size:
            raise Unsupported("header runs past its NAL unit")
        self.pos += n
        return (self.value >> (self.size - self.pos)) & ((1 << n) - 1)

    def ue(self) -> int:
        rest = self.size - self.pos
        tail = self.value & ((1 << rest) - 1)
        zeros = rest - tail.bit_length()
        if not tail or zeros > 31:
            raise Unsupported("bad Exp-Golomb code")
        self.pos += zeros
        return self.u(zeros + 1) - 1

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


def _rbsp(nal: bytes | memoryview, limit: int | None = None) -> bytes:
    data = bytes(nal[:limit] if limit else nal)
    return data.replace(b"\x00\x00\x03", b"\x00\x00")


@dataclass(frozen=True)
class _SPS:
    sps_id: int
    macroblocks: int  # in a frame
    chroma_array_type: int
    log2_max_frame_num: int
    poc_type: int
    log2_max_poc_lsb: int
    max_num_ref_frames: int


@dataclass(frozen=True)
class _PPS:
    sps: _SPS
    bottom_field_poc_present: bool
    num_ref_idx_default: tuple[int, int]
    weighted_pred: bool
    weighted_bipred_idc: int
    redundant_pic_cnt_present: bool


def _skip_scaling_list(bits: _Bits, size: int) -> None:
    last = nxt = 8
    for _ in range(size):
        if nxt:
            nxt = (last + bits.se() + 256) % 256
        last = nxt or last


def _parse_sps(nal: bytes | memoryview) -> tuple[int, _SPS]:
    bits = _Bits(_rbsp(nal), 8)
    profile = bits.u(8)
    bits.u(16)  # constraint flags, level
    sps_id = bits.ue()
    chroma = 1
    if profile in _HIGH_PROFILES:
        chroma = bits.ue()
        if chroma == 3 and bits.u(1):
            raise Unsupported("separate colour planes")
        bits.ue(), bits.ue(), bits.u(1)  # bit depths, qpprime_y_zero_transform_bypass
        if bits.u(1):
            for i in range(8 if chroma != 3 else 12):
                if bits.u(1):
                    _skip_scaling_list(bits, 16 if i < 6 else 64)
    log2_max_frame_num = bits.ue() + 4
    poc_type = bits.ue()
    log2_max_poc_lsb = 0
    if poc_type == 0:
        log2_max_poc_lsb = bits.ue() + 4
    elif poc_type != 2:
        raise Unsupported(f"picture order count type {poc_type}")
    max_num_ref_frames = bits.ue()
    bits.u(1)  # gaps_in_frame_num_value_allowed_flag (a gap is refused when met)
    macroblocks = (bits.ue() + 1) * (bits.ue() + 1)
    if not bits.u(1):
        raise Unsupported("field or MBAFF coding")
    return sps_id, _SPS(
        sps_id, macroblocks, chroma, log2_max_frame_num, poc_type, log2_max_poc_lsb, max_num_ref_frames
    )


def _parse_pps(nal: bytes | memoryview, sps: dict[int, _SPS]) -> tuple[int, _PPS]:
    bits = _Bits(_rbsp(nal), 8)
    pps_id, sps_id = bits.ue(), bits.ue()
    if sps_id not in sps:
        raise Unsupported("a PPS before its SPS")
    bits.u(1)  # entropy_coding_mode_flag
    bottom = bool(bits.u(1))
    if bits.ue():
        raise Unsupported("slice groups")
    defaults = (bits.ue() + 1, bits.ue() + 1)
    weighted_pred, bipred = bool(bits.u(1)), bits.u(2)
    bits.se(), bits.se(), bits.se()  # pic_init_qp, pic_init_qs, chroma_qp_index_offset
    bits.u(2)  # deblocking_filter_control_present_flag, constrained_intra_pred_flag
    redundant = bool(bits.u(1))
    return pps_id, _PPS(sps[sps_id], bottom, defaults, weighted_pred, bipred, redundant)


class _Slice(NamedTuple):
    kind: int  # _P, _B or _I
    active: tuple[int, int]  # reference list sizes
    modifications: tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]


@dataclass
class Picture:
    """One coded picture, as its slice headers describe it."""

    nal_ref_idc: int
    idr: bool
    frame_num: int
    poc_lsb: int
    delta_poc_bottom: int
    sps: _SPS
    slices: list[_Slice] = field(default_factory=list)
    unused: tuple[int, ...] = ()  # MMCO 1: difference_of_pic_nums_minus1 of each
    explicit_marking: bool = False

    @property
    def reference(self) -> bool:
        return self.nal_ref_idc != 0


def _skip_weights(bits: _Bits, pps: _PPS, kind: int, active: tuple[int, int]) -> None:
    bits.ue()
    if pps.sps.chroma_array_type:
        bits.ue()
    for lst in range(2 if kind == _B else 1):
        for _ in range(active[lst]):
            if bits.u(1):
                bits.se(), bits.se()
            if pps.sps.chroma_array_type and bits.u(1):
                bits.se(), bits.se(), bits.se(), bits.se()


def _parse_slice(nal: bytes | memoryview, pps: dict[int, _PPS], picture: Picture | None) -> Picture:
    """The slice's header, added to ``picture`` (its first slice makes a new one)."""
    nal_ref_idc, nal_type = (nal[0] >> 5) & 3, nal[0] & 0x1F
    for limit in (_HEADER_BYTES, None):
        bits = _Bits(_rbsp(nal, limit), 8)
        try:
            return _slice_header(bits, nal_ref_idc, nal_type == 5, pps, picture)
        except Unsupported:
            if limit is None or len(nal) <= limit:
                raise
    raise AssertionError("unreachable")


def _slice_header(
    bits: _Bits, nal_ref_idc: int, idr: bool, pps_table: dict[int, _PPS], picture: Picture | None
) -> Picture:
    first_mb = bits.ue()
    kind = bits.ue() % 5
    if kind > _I:
        raise Unsupported("SP/SI slices")
    pps = pps_table.get(bits.ue())
    if pps is None:
        raise Unsupported("a slice before its PPS")
    sps = pps.sps
    frame_num = bits.u(sps.log2_max_frame_num)
    if idr:
        bits.ue()  # idr_pic_id
    poc_lsb = delta_bottom = 0
    if sps.poc_type == 0:
        poc_lsb = bits.u(sps.log2_max_poc_lsb)
        if pps.bottom_field_poc_present:
            delta_bottom = bits.se()
    if pps.redundant_pic_cnt_present and bits.ue():
        raise Unsupported("redundant pictures")
    if kind == _B:
        bits.u(1)  # direct_spatial_mv_pred_flag
    active = (0, 0)
    if kind != _I:
        active = pps.num_ref_idx_default
        if bits.u(1):
            active = (bits.ue() + 1, bits.ue() + 1 if kind == _B else active[1])
        if kind == _P:
            active = (active[0], 0)
    modifications: list[tuple[tuple[int, int], ...]] = [(), ()]
    for lst in range(2 if kind == _B else (1 if kind == _P else 0)):
        if bits.u(1):
            ops = []
            while (op := bits.ue()) != 3:
                if op > 1:
                    raise Unsupported("long-term reference reordering")
                ops.append((op, bits.ue()))
                if len(ops) > active[lst]:
                    raise Unsupported("more reorderings than references")
            modifications[lst] = tuple(ops)
    if (pps.weighted_pred and kind == _P) or (pps.weighted_bipred_idc == 1 and kind == _B):
        _skip_weights(bits, pps, kind, active)
    explicit, unused = False, []
    if nal_ref_idc:
        if idr:
            bits.u(1)  # no_output_of_prior_pics_flag
            if bits.u(1):
                raise Unsupported("long-term reference")
        elif bits.u(1):
            explicit = True
            while (op := bits.ue()) != 0:
                if op != 1:
                    raise Unsupported(f"memory management operation {op}")
                unused.append(bits.ue())
    this = _Slice(kind, active, (modifications[0], modifications[1]))
    if first_mb == 0 or picture is None:
        return Picture(
            nal_ref_idc, idr, frame_num, poc_lsb, delta_bottom, sps,
            [this], tuple(unused), explicit,
        )  # fmt: skip
    if (frame_num, poc_lsb, nal_ref_idc) != (picture.frame_num, picture.poc_lsb, picture.nal_ref_idc):
        raise Unsupported("slices of one picture disagree")
    picture.slices.append(this)
    return picture


class Parser:
    """Reads one H.264 stream's packets in decode order, one ``Picture`` per packet."""

    def __init__(self, extradata: bytes) -> None:
        self.sps: dict[int, _SPS] = {}
        self.pps: dict[int, _PPS] = {}
        if len(extradata) >= 7 and extradata[0] == 1:  # avcC: the parameter sets are here
            pos, count = 6, extradata[5] & 0x1F
            for kind in (7, 8):
                for _ in range(count):
                    if pos + 2 > len(extradata):
                        raise Unsupported("avcC ends inside its parameter sets")
                    size = int.from_bytes(extradata[pos : pos + 2], "big")
                    if pos + 2 + size > len(extradata):
                        raise Unsupported("avcC ends inside its parameter sets")
                    self.nal(extradata[pos + 2 : pos + 2 + size])
                    pos += 2 + size
                if kind == 7:
                    if pos >= len(extradata):
                        raise Unsupported("avcC has no count of picture parameter sets")
                    count, pos = extradata[pos], pos + 1

    def nal(self, nal: bytes | memoryview, picture: Picture | None = None) -> Picture | None:
        """Take one NAL unit; returns the picture it is a slice of (None for anything else)."""
        if not len(nal):
            return picture
        kind = nal[0] & 0x1F
        if kind == 7:
            sps_id, sps = _parse_sps(nal)
            # A picture parameter set holds the SPS it was read against: one redefined
            # would leave later slices read (and stand-ins written) against the old one.
            if sps_id in self.sps and sps != self.sps[sps_id]:
                raise Unsupported("a sequence parameter set redefined")
            self.sps[sps_id] = sps
        elif kind == 8:
            pps_id, pps = _parse_pps(nal, self.sps)
            if pps_id in self.pps and pps != self.pps[pps_id]:
                raise Unsupported("a picture parameter set redefined")
            self.pps[pps_id] = pps
        elif kind in _SLICE_NALS:
            return _parse_slice(nal, self.pps, picture)
        elif kind in (20, 21):
            raise Unsupported("multiview or depth coding")
        return picture


class _Writer:
    """Big-endian bit writer for an RBSP."""

    def __init__(self) -> None:
        self.value = self.size = 0

    def u(self, n: int, v: int) -> None:
        self.value, self.size = (self.value << n) | v, self.size + n

    def ue(self, v: int) -> None:
        code = v + 1
        self.u(2 * code.bit_length() - 1, code)

    def se(self, v: int) -> None:
        self.ue(2 * v - 1 if v > 0 else -2 * v)

    def nal(self, header: int) -> bytes:
        """The NAL unit: header byte, RBSP with its stop bit, emulation prevention added."""
        self.u(1, 1)
        self.u(-self.size % 8, 0)
        rbsp = self.value.to_bytes(self.size // 8, "big")
        out, zeros = bytearray([header]), 0
        for byte in rbsp:
            if zeros >= 2 and byte <= 3:
                out.append(3)
                zeros = 0
            out.append(byte)
            zeros = zeros + 1 if byte == 0 else 0
        return bytes(out)

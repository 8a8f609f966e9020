"""Decode plans: the ffmpeg passes that make one video's images.

``plan()`` is the *plain* plan: ffmpeg decodes the file itself, the selection's ``select``
expression keeps the frames asked for, and every image is named by ffmpeg's own log of
what it decoded (``frame_log``).  Fast plans (``packets``) build the same ``Plan`` from
fewer packets and prove every image with ``pickers.Expect``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from ..video.probe import VideoInfo
from .filters import Dedup, Resize, dedup_filter, scale_filter
from .frame_log import FrameLog
from .pickers import FrameRef, Picker, TakeIndices
from .selection import STREAMING_MODES, Selection, SelectionError, index_expr


class Naming:
    """Plain: an image is the picture at its place among those the decoder presented."""

    def ref(self, log: FrameLog, pts: int, score: float | None) -> FrameRef:
        return FrameRef(log.position(pts), round((pts - log.first_pts()) / 1e6, 6), score)


@dataclass
class Pass:
    """One ffmpeg run through scikit-video's reader, and which frame each image is."""

    select: str | None  # ffmpeg's select expression (None: every picture)
    picker: Picker
    naming: Naming = field(default_factory=Naming)
    input_options: dict[str, str] = field(default_factory=dict)
    # Filters first in the chain, applied explicitly where a fed stream lost what the
    # container said (its rotation).
    transforms: tuple[str, ...] = ()
    dedup: Dedup | None = None
    scale: str | None = None  # --max-side/--square
    # A fast pass: ffmpeg reads a NUT stream of some of the packets, written by this
    # into its stdin (thinning, pieces); None: it reads the file itself.
    feed: Callable[[BinaryIO], None] | None = None

    def chain(self, log: FrameLog, size: tuple[int, int]) -> str:
        """The -vf filter chain: log, turn, fix the size (a picture-size change mid-stream
        is scaled to the first), select, deduplicate, resize, log what is kept."""
        parts = [log.head(), *self.transforms, f"scale={size[0]}:{size[1]}"]
        if self.select:
            parts.append(f"select='{self.select}'")
        if self.dedup is not None:
            # Deduplicate before scaling, so what counts as "the same" does not depend on the size.
            parts += [log.candidates(), dedup_filter(self.dedup)]
        if self.scale:
            parts.append(self.scale)
        parts.append(log.kept())
        return ",".join(parts)


@dataclass
class Plan:
    passes: list[Pass]
    expected_count: int  # images a fast plan gives (a plain one: the header's frame count)
    streaming: bool  # the pass decodes the whole video: how far it got is checked
    missing: list[str] = field(default_factory=list)  # requested frames past the end
    out_size: tuple[int, int] = (0, 0)  # (width, height) of the written images
    scored: bool = False  # frames carry ffmpeg's scene score (frames.csv gets a column)
    claimed: int = 0  # source frames the container's header claims (see length.believable)
    path: str = "plain"  # which path made the images, and why (the record's ``path``)
    undecoded: int = 0  # frames a fast path never decoded
    # A fast plan read every packet: the time the video's pictures reach (the last one's
    # time plus a frame), for the truncation check its decoded pictures cannot make.
    reaches: float | None = None
    counted: int = 0  # and the frames its packets hold


def plan(
    selection: Selection, info: VideoInfo, resize: Resize | None = None, dedup: Dedup | None = None
) -> Plan:
    """The plain plan: ffmpeg decodes the whole file and keeps the selected frames, resized
    and deduplicated as asked (all inside ffmpeg); ffmpeg's log names every image."""
    if dedup is not None and not selection.kind.streaming:
        raise SelectionError(f"--dedup needs a streaming selection ({', '.join(STREAMING_MODES)})")
    select, picker = selection.kind.plain(selection)
    the_pass = Pass(
        select,
        picker,
        dedup=dedup,
        scale=scale_filter(resize, info.width, info.height),
    )
    return Plan(
        [the_pass],
        info.estimated_frames,
        streaming=not selection.kind.exact,
        out_size=resize.out_size(info.width, info.height) if resize else (info.width, info.height),
        scored=selection.kind.scored,
        claimed=info.estimated_frames,
    )


def refetch_pass(done: Pass) -> Pass | None:
    """The pass that takes the frames ``done``'s picker wanted but ffmpeg did not send it
    (``Picker.refetch``: a time in a long gap), by number; None when there are none."""
    if not done.picker.refetch or done.feed is not None:
        return None
    wanted = list(done.picker.refetch)
    return Pass(index_expr("n", wanted), TakeIndices(wanted), scale=done.scale)

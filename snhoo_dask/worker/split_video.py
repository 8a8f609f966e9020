"""One long video extracted as pieces by several workers: the bodies of its three kinds of task.

    plan_split     open the video, read its packets (none decoded), cut it (pieces.cut)
    extract_piece  one per piece, on any worker: its frames into a temporary folder of its own
    join_pieces    move every piece's images into one folder, write frames.csv and the
                   completion record, publish it in one rename: the video's one record

The published folder is the one the video would have had whole: the same images under the
same names, one frames.csv, one done record.  A piece that fails fails the video (its task
raises VideoFailed naming the piece; Dask hands that to the join), and nothing is published;
the other pieces' folders are swept with the job's temporary folders.  A piece whose images
do not prove out (``FastPathRejected``) returns ``Rejected``, and the join extracts the
whole video on the plain path instead.  A video that cannot be cut runs whole in the first
piece's task, as ``extract_video``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import partial

from ..frames.length import cut_short
from ..frames.pickers import FastPathRejected
from ..fs.fsafe import remove_tree, walk
from ..model import OK, Video, VideoRecord
from ..output.folder import publish
from ..output.formats import FolderSink, FrameRow
from ..packets.pieces import Piece, cut, piece_plan
from ..packets.table import scan
from ..settings import Settings
from ..video.probe import VideoInfo, probe
from .extract import (
    DecodeFailure,
    Failure,
    done_by_this_run,
    extract_video,
    guarded,
    make_tmp,
    on_decoder,
    worker_name,
    write_frames,
)
from .pause import pause_point
from .progress import Reporter
from .source import bounded, open_video
from .staging import how_to_read, worker_host


@dataclass(frozen=True)
class Split:
    """What ``plan_split`` found: the pieces, or None to run the video whole."""

    pieces: list[Piece] | None
    info: VideoInfo | None = None
    source: str | None = None  # the identity read, as records store it
    started: float = 0.0  # wall clock (the pieces run on other machines)
    times_us: Sequence[int] = ()  # every frame's time (the pieces name their images by it)
    rate: Fraction | None = None  # constant rate the frames are numbered at, if any


@dataclass(frozen=True)
class Rejected:
    """A piece that could not prove its images: the video is extracted whole, plainly."""

    reason: str


@dataclass
class PieceResult:
    """A finished piece: its images wait in OUT/.snhoo-tmp/<folder> for the join."""

    folder: str
    rows: list[FrameRow]
    undecoded: int
    worker: str
    out_size: tuple[int, int]
    decoder: str
    read_on: str | None = None
    local: bool | None = None


def plan_split(video: Video, settings: Settings, wanted: int) -> Split:
    """Cut the video into at most ``wanted`` pieces (raises VideoFailed for a file that is
    no video, as its whole extraction would)."""
    started = time.time()

    def body(record: VideoRecord) -> Split:
        with open_video(video, settings.timeout) as source:
            info = bounded(
                settings.timeout, "reading its header", partial(probe, source.path, settings.max_pixels)
            )
            thin = not settings.decode_all and settings.selection.mode != "all"
            # The slice headers are worth reading only where frames are skipped.
            table = bounded(
                settings.timeout, "reading its packets", partial(scan, source.path, info, references=thin)
            )
            if isinstance(table, str):
                return Split(None)
            frame = float(1 / info.shown_rate)
            if cut_short(info.duration, table.times_us[-1] / 1e6 + frame, frame):
                # Cut off before its header's end: run whole, where that fails the video
                # (the pieces would each prove their images and join as if complete).
                return Split(None)
            pieces = cut(table, info, wanted, settings.split_seconds, settings.selection, thin)
            if pieces is not None:  # the job now knows this video's images and pieces
                expected = sum(len(p.wanted) for p in pieces)
                Reporter(settings.run_id, video.out_rel, expected=expected, pieces=len(pieces)).frames(0)
            return Split(pieces, info, source.ident.to_text(), started, table.times_us, table.rate)

    return guarded(video, settings, body)


def extract_piece(
    split: Split, index: int, video: Video, settings: Settings
) -> PieceResult | Rejected | VideoRecord | None:
    """Piece ``index``'s images in a folder of their own; None if the plan has no such piece.
    For a video that is not cut, the first piece's task extracts (and publishes) it whole."""
    if split.pieces is None:
        return extract_video(video, settings) if index == 0 else None
    if index >= len(split.pieces):
        return None
    piece = split.pieces[index]
    info = split.info
    assert info is not None

    def body(record: VideoRecord) -> PieceResult | Rejected:
        pause_point("piece", f"{video.rel}#{index}")
        try:
            return on_decoder(settings, record, partial(attempt, record))
        except FastPathRejected as e:
            return Rejected(f"{piece.describe(len(split.pieces or []))}: {e}")

    def attempt(record: VideoRecord, decoder: str) -> PieceResult:
        with (
            settings.open_out() as out,
            open_video(video, settings.timeout) as source,
        ):
            # Never staged (a piece would copy the whole file for its part): a worker on
            # another host than the disk's reads its packets over the network.
            read = bounded(
                settings.timeout,
                "reading its header",
                partial(how_to_read, source.path, video.disk_host, "never", worker_host()),
            )
            frame_plan = piece_plan(
                settings.selection, info, piece, source.path, settings.resize, split.times_us, split.rate
            )
            tmp = make_tmp(out)
            progress = Reporter(
                settings.run_id, video.out_rel, index, frame_plan.expected_count, len(split.pieces or [])
            )
            try:
                sink = FolderSink(tmp)
                written, _, _, log = write_frames(
                    source.path, info, frame_plan, settings, sink, record, (source.fd,), decoder, progress
                )
                bounded(settings.timeout, "checking it was not changed", source.check_unchanged)
                # Exact (the piece's frames were counted from its packets); write_frames has
                # checked every image against them.
                if written != frame_plan.expected_count:
                    detail = f": {log}" if log else ""
                    raise DecodeFailure(
                        f"truncated: got {written} of {frame_plan.expected_count} frames{detail}"
                    )
                progress.frames(written, end=True)
            except BaseException:
                tmp.remove()
                raise
            tmp.keep()
            assert frame_plan.out_size is not None
            return PieceResult(
                tmp.name,
                sink.rows,
                len(piece.skip),
                record.worker or "",
                frame_plan.out_size,
                record.decoder or "",
                read.read_on,
                read.local,
            )

    return guarded(video, settings, body, what=piece.describe(len(split.pieces)))


def join_pieces(
    video: Video, settings: Settings, split: Split, *results: PieceResult | Rejected | VideoRecord | None
) -> VideoRecord:
    """The video's folder made from its pieces' images and published; its record."""
    if split.pieces is None:
        whole = results[0]
        assert isinstance(whole, VideoRecord)
        return whole
    rejected = [r for r in results if isinstance(r, Rejected)]
    if rejected:
        _sweep(settings, [r for r in results if isinstance(r, PieceResult)])
        return extract_video(video, settings, plain=f"the fast path was rejected: {rejected[0].reason}")
    pieces = [r for r in results if isinstance(r, PieceResult)]
    info = split.info
    assert info is not None and len(pieces) == len(split.pieces)

    def body(record: VideoRecord) -> VideoRecord:
        with settings.open_out() as out:
            done = done_by_this_run(video, settings, out)
            if done is not None:
                return done  # the join ran again after publishing (a worker died): that output
            tmp = make_tmp(out)
            try:
                rows = _gather(tmp.base, tmp.fd, pieces)
                if not rows:
                    raise Failure("ffmpeg produced no frames")
                info.fill(record)
                record.frames = len(rows)
                record.size = video.size
                record.source = split.source
                record.staged = False
                record.undecoded = sum(p.undecoded for p in pieces)
                record.pieces = len(pieces)
                record.path = f"fast: {len(pieces)} pieces"
                record.out_width, record.out_height = pieces[0].out_size
                record.worker = ", ".join(dict.fromkeys([*(p.worker for p in pieces), worker_name()]))
                record.worker_frames = {}
                for p in pieces:
                    record.worker_frames[p.worker] = record.worker_frames.get(p.worker, 0) + len(p.rows)
                record.decoder = ", ".join(dict.fromkeys(p.decoder for p in pieces))
                record.read_on = ", ".join(dict.fromkeys(p.read_on for p in pieces if p.read_on)) or None
                record.local = _all_local([p.local for p in pieces])
                record.finish(OK, seconds=round(time.time() - split.started, 3))
                sink = FolderSink(tmp)
                sink.rows = rows
                sink.close()
                finished = sink.seal({"signature": settings.signature(), "record": record.to_dict()})
                if not publish(
                    tmp, finished, out, video.out_rel, settings.signature(), record.size, record.source
                ):
                    return done_by_this_run(video, settings, out) or record
                return record
            finally:
                for p in pieces:
                    remove_tree(tmp.base, p.folder)
                tmp.remove()

    return guarded(video, settings, body)


def _all_local(pieces: list[bool | None]) -> bool | None:
    """A video is read locally when every piece was; not when any piece was not."""
    if False in pieces:
        return False
    return None if None in pieces else True


def _sweep(settings: Settings, pieces: list[PieceResult]) -> None:
    """Remove the folders of pieces whose images will not be used."""
    with settings.open_out() as out:
        base = make_tmp(out)
        try:
            for p in pieces:
                remove_tree(base.base, p.folder)
        finally:
            base.remove()


def _gather(tmp_base: int, into: int, pieces: list[PieceResult]) -> list[FrameRow]:
    """Move every piece's images into the folder ``into`` (renames inside OUT: no copy);
    their rows, in frame order."""
    rows: list[FrameRow] = []
    for p in pieces:
        folder = walk(tmp_base, [p.folder])
        try:
            for row in p.rows:
                os.rename(row.file, row.file, src_dir_fd=folder, dst_dir_fd=into)
        finally:
            os.close(folder)
        rows.extend(p.rows)
    return rows

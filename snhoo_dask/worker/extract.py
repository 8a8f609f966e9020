"""Extract the selected frames of one video: the body of every Dask task.

open OUT and the video by descriptor (the very file discovery saw) -> read its header
(a file that is no video fails here, before any copy) -> stage locally -> plan -> read
with scikit-video -> write images into a temporary folder -> publish it in one rename
-> return the record.
A video that yields nothing usable raises ``VideoFailed`` (carrying its record), so
the Dask task is marked erred in the dashboard instead of showing a green success.
"""

from __future__ import annotations

import errno
import os
import socket
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from ..errors import VideoError
from ..frames.frame_log import REINIT, FrameLog
from ..frames.length import believable, cut_short, false_claim
from ..frames.pickers import FastPathRejected, FrameRef
from ..frames.plans import Plan, plan, refetch_pass
from ..fs.fsafe import disk_gone, fd_path
from ..model import FAILED, OK, PARTIAL, Video, VideoFailed, VideoRecord
from ..output.folder import OutputDir, TmpDir, UnsafePath, finished_record, publish
from ..output.formats import FrameRow, make_sink
from ..output.writers import make_encoder, wants_planes
from ..packets.thinning import fast_plan
from ..settings import Settings, new_record
from ..video.ffmpeg import EXACT_CROP
from ..video.hwaccel import CPU, decoder_for, fell_back, input_options
from ..video.malloc import tune_this_process
from ..video.probe import VideoInfo, probe
from .pause import pause_point
from .progress import Reporter
from .source import SOURCE_DISK, Source, SourceHung, bounded, open_video
from .staging import how_to_read, staged, worker_host

T = TypeVar("T")


class Failure(VideoError):
    """Stop this video (or piece) with a human reason."""


class DecodeFailure(Failure):
    """ffmpeg did not decode what was planned: the one failure another decoder may not have
    (``on_decoder`` tries the CPU after the GPU's)."""


def worker_name() -> str:
    try:
        from distributed import get_worker

        w = get_worker()
        return str(w.name if w.name is not None else w.address)
    except (ImportError, ValueError):
        return f"{socket.gethostname()}:{os.getpid()}"


def extract_video(video: Video, settings: Settings, plain: str | None = None) -> VideoRecord:
    """Process one video; return its ``ok`` record or raise VideoFailed with a ``failed`` one.
    ``plain``: the reason to decode it the plain way without trying a fast path."""
    return guarded(video, settings, partial(_extract_video, video, settings, plain))


def guarded(video: Video, settings: Settings, body: Callable[[VideoRecord], T], what: str = "") -> T:
    """``body(record)`` with this video's fresh record; a failure whose reason a user can
    act on (a bad file, a full disk, a link in the way) raises VideoFailed with that
    reason, prefixed with ``what`` (which part of the video failed)."""
    started = time.monotonic()
    tune_this_process()
    record = new_record(video, settings)
    record.worker = worker_name()
    try:
        return body(record)
    except VideoError as e:
        reason = str(e)
    except OSError as e:
        reason = os_reason(e, settings.out)
    reason = f"{what}: {reason}" if what else reason
    record.finish(FAILED, error=reason, frames=0, seconds=round(time.monotonic() - started, 3))
    raise VideoFailed(record)


def _extract_video(video: Video, settings: Settings, plain: str | None, record: VideoRecord) -> VideoRecord:
    started = time.monotonic()
    pause_point("open", video.rel)
    with settings.open_out() as out:
        done = done_by_this_run(video, settings, out)
        if done is not None:
            # The task ran again (its result was lost with a worker) after the video was
            # published by this same run: report that output instead of redoing it.
            return done
        with open_video(video, settings.timeout) as source:
            return on_decoder(
                settings, record, partial(_extract, video, source, settings, out, record, started, plain)
            )


def on_decoder(settings: Settings, record: VideoRecord, attempt: Callable[[str], T]) -> T:
    """``attempt(decoder)`` on this worker's decoder (``--hwaccel``); if the GPU fails to
    decode, once more on the CPU, the record saying why (any other failure is the video's
    whatever decodes it).  ``attempt`` starts its output afresh."""
    decoder = decoder_for(settings.hwaccel)
    record.decoder = decoder
    if decoder == CPU:
        return attempt(CPU)
    try:
        return attempt(decoder)
    except DecodeFailure as e:
        record.decoder = fell_back(str(e))
        return attempt(CPU)


def _extract(
    video: Video,
    source: Source,
    settings: Settings,
    out: OutputDir,
    record: VideoRecord,
    started: float,
    plain: str | None,
    decoder: str,
) -> VideoRecord:
    """The body of a task, once OUT and the video are open: every read is of ``source``,
    every write below ``out``; frames decoded on ``decoder``.  A fast path where one may
    run; if it cannot prove its images, the plain path, the record saying why."""
    record.size = source.ident.size
    record.source = source.ident.to_text()  # what was read: resume compares it
    pause_point("opened", video.rel)
    # The header only: cheap even over a share, and before the copy.  Every read of the
    # source below is bounded by --timeout (ffmpeg's own reads by reader.py's watchdog): a
    # disk that stops answering (a stopped FUSE daemon, a hung share) fails the video.
    here = worker_host()
    info, read = bounded(
        settings.timeout,
        "reading its header",
        lambda: (
            probe(source.path, settings.max_pixels),
            how_to_read(source.path, video.disk_host, settings.stage, here),
        ),
    )
    record.staged, record.read_on, record.local = read.staged, read.read_on, read.local
    info.fill(record)
    pause_point("probed", video.rel)
    local = (
        staged(source, settings.scratch, partial(bounded, settings.timeout, "copying it to local scratch"))
        if record.staged
        else nullcontext(source.fd)
    )
    # The original or its staged copy: read through its descriptor only, never by a name.
    with local as fd:
        path, fds = fd_path(fd), (fd,)
        pause_point("staged", video.rel)
        if plain is None:
            plain = "--decode-all" if settings.decode_all else None
        task = _Task(video, source, settings, out, record, started, decoder, info, path, fds)
        if plain is None:
            fast = _fast_plan(settings, info, path, "the scratch disk" if record.staged else SOURCE_DISK)
            if isinstance(fast, Plan):
                try:
                    return _run(task, fast)
                except FastPathRejected as e:
                    plain = f"the fast path was rejected: {e}"
            else:
                plain = fast
        frame_plan = plan(settings.selection, info, settings.resize, settings.dedup)
        frame_plan.path = f"plain ({plain})"
        return _run(task, frame_plan)


def _fast_plan(settings: Settings, info: VideoInfo, path: str, disk: str) -> Plan | str:
    """The fast plan, or why there is none: a failure while reading the packets or planning
    is a reason to decode the plain way, never a failed video; a disk that does not answer
    (``disk``: the one ``path`` is on) fails it, as the plain way would only wait again."""
    try:
        return bounded(
            settings.timeout,
            "reading its packets",
            partial(fast_plan, settings.selection, info, path, settings.resize, settings.dedup),
            disk,
        )
    except SourceHung:
        raise
    except Exception as e:  # noqa: BLE001 - any surprise in the fast path's model means: plain
        return f"the fast path could not plan ({type(e).__name__}: {e})"


@dataclass(frozen=True)
class _Task:
    """One video's task once its output and source are open and its header read."""

    video: Video
    source: Source
    settings: Settings
    out: OutputDir
    record: VideoRecord
    started: float
    decoder: str
    info: VideoInfo
    path: str  # what ffmpeg reads: the source's descriptor, or its staged copy
    fds: tuple[int, ...]  # descriptors ffmpeg inherits


def _run(task: _Task, frame_plan: Plan) -> VideoRecord:
    """Write the plan's images into a fresh temporary folder and publish it; the record."""
    video, settings, out, record = task.video, task.settings, task.out, task.record
    record.dropped = 0
    record.warnings = []
    record.path = frame_plan.path
    record.undecoded = frame_plan.undecoded
    record.out_width, record.out_height = frame_plan.out_size
    record.missing = list(frame_plan.missing)
    tmp = sink = None
    progress = Reporter(
        settings.run_id, video.out_rel, expected=expected_images(frame_plan, settings, task.info)
    )
    progress.frames(0)  # decoding starts: the job shows the video running
    try:
        tmp = make_tmp(out)
        sink = make_sink(settings.pack, tmp, frame_plan.scored, video.rel, video.root)
        written, decoded, reached, log = write_frames(
            task.path, task.info, frame_plan, settings, sink, record, task.fds, task.decoder, progress
        )
        bounded(settings.timeout, "checking it was not changed", task.source.check_unchanged)
        record.frames = written
        cut = _check_complete(frame_plan, task.info, written, decoded, reached, record, log)
        status = OK
        if cut is not None:
            # A GPU that stopped early may be the decoder's failure, not the file's: the CPU
            # tries it again (on_decoder) before the frames are kept as a partial video.
            if not settings.keep_partial or task.decoder != CPU:
                raise DecodeFailure(cut)
            status = PARTIAL
            record.error = cut
            record.reached_frames, record.reached_seconds = _reach(frame_plan, decoded, reached)
        record.finish(status, seconds=round(time.monotonic() - task.started, 3))
        finished = sink.seal({"signature": settings.signature(), "record": record.to_dict()})
        pause_point("publish", video.rel)
        target = settings.output_rel(video)
        if not publish(tmp, finished, out, target, settings.signature(), record.size, record.source):
            # An equal result was published meanwhile; the record must describe what is on disk.
            return done_by_this_run(video, settings, out) or record
        return record
    finally:
        if sink is not None:
            sink.abort()  # after seal() a no-op; else it closes a half-written tar
        if tmp is not None:
            tmp.remove()  # after a publish only an empty folder is left


def expected_images(frame_plan: Plan, settings: Settings, info: VideoInfo) -> int | None:
    """How many images a plan should write, for the progress shown (None: cannot be told
    before decoding: scene cuts, key frames decoded plainly, near-duplicates dropped)."""
    if settings.dedup is not None:
        return None
    if frame_plan.path.startswith("fast"):
        return frame_plan.expected_count  # counted from the packets
    kind = settings.selection.kind
    if kind.name in ("keyframes", "scenes"):
        return None
    return kind.count(settings.selection, info.frame_rate, info.estimated_frames)


def done_by_this_run(video: Video, settings: Settings, out: OutputDir) -> VideoRecord | None:
    source = video.ident.to_text() if video.ident else None
    previous = finished_record(out, video.out_rel, settings.signature(), video.size, source)
    if previous is None or previous.run != settings.run_id or previous.status != OK:
        return None
    return previous


def make_tmp(out: OutputDir) -> TmpDir:
    try:
        return TmpDir(out)
    except UnsafePath:
        raise
    except OSError as e:
        raise Failure(f"cannot write to the output folder {out.path}: {e.strerror}") from None


def write_frames(
    path: str,
    info: VideoInfo,
    frame_plan: Plan,
    settings: Settings,
    sink,
    record: VideoRecord,
    pass_fds: tuple[int, ...] = (),
    decoder: str = CPU,
    progress: Reporter | None = None,
) -> tuple[int, int, float, str]:
    """Write every planned frame into the sink; return the images written, the pictures
    decoded, how far into the video they reached (seconds, for the truncation check) and
    ffmpeg's condensed log.  Each image is named by
    ffmpeg's own log of what it decoded (``frame_log``); a fast pass whose images do not
    prove out raises FastPathRejected."""
    # Imported here: a client that only submits tasks to a running cluster never decodes,
    # and importing scikit-video runs ``ffmpeg -version`` (0.15 s).
    from ..video.reader import FrameReader, can_hand_planes

    encoder = make_encoder(settings.fmt, settings.quality)
    width, height = frame_plan.out_size
    planes = wants_planes(settings.fmt) and can_hand_planes(info, frame_plan.out_size)
    written = decoded = 0
    reached = 0.0
    logs = []
    # The decoder refuses any picture above --max-pixels, also one after a size change.
    decoding = {**REINIT, **EXACT_CROP, "-max_pixels": str(settings.max_pixels)}
    if settings.run.decoder_threads:
        decoding["-threads"] = str(settings.run.decoder_threads)
    decoding.update(input_options(decoder))

    def add(ref: FrameRef, picture) -> None:
        name = f"{ref.index:06d}.{encoder.extension}"
        sink.add(
            name, encoder.encode(picture), FrameRow(ref.index, ref.timestamp, name, width, height, ref.score)
        )

    passes = list(frame_plan.passes)
    while passes:
        p = passes.pop(0)
        log = FrameLog()
        try:
            output = {
                "-vf": p.chain(log, (info.width, info.height)),
                "-vsync": "passthrough",  # each decoded picture once: no duplicates, no drops
                # Timed as the chain's microseconds (frame_log: strictly increasing), not in
                # 1/rate: pictures closer than a frame (variable rate) made the pipe's muxer
                # report "non monotonically increasing dts", a false error in the record.
                "-enc_time_base": "1:1000000",
                "-s": f"{width}x{height}",
            }
            reader = FrameReader(
                path,
                info,
                {**decoding, **p.input_options},
                output,
                settings.timeout,
                planes,
                None,
                pass_fds,
                p.feed,
            )
            images, before = 0, written
            # Only a pass read to its end waits for ffmpeg to exit; stopped early on purpose
            # (every exact frame found), or by a failure, ffmpeg is killed at once.  A fed pass
            # is never stopped: killing ffmpeg would race the thread writing its stdin.
            complete = False
            try:
                for frame in reader.frames():
                    pts, score = log.kept_entry(images)
                    images += 1
                    ref = p.naming.ref(log, pts, score)
                    if p.picker.offer(ref):
                        for image in p.picker.take(ref, frame):
                            add(*image)
                            written += 1
                        if progress is not None:
                            progress.frames(written)
                    if p.picker.done and p.feed is None:
                        break
                else:
                    complete = True
            finally:
                reason = reader.finish(complete)
            if reader.refused:
                raise Failure(reader.refused)
            # On a GPU, ffmpeg failing is the decoder's failure first (on_decoder then runs it
            # again on the CPU, a piece on its own); on the CPU, the fast path's.
            if reason and p.feed is not None and not reader.stalled and decoder == CPU:
                raise FastPathRejected(reason)
            if reason:
                raise DecodeFailure(reason)
            seen = log.seen() if complete else None
            if seen:
                reached = max(reached, (seen[-1] - seen[0]) / 1e6 + float(1 / info.shown_rate))
            for image in p.picker.finish(seen, info.shown_rate):
                add(*image)
                written += 1
            if reader.log and p.feed is not None:
                raise FastPathRejected(f"ffmpeg reported: {reader.log}")
            if reader.log:
                record.warnings.append(f"ffmpeg: {reader.log}")
                logs.append(reader.log)
            record.missing.extend(p.picker.missing)
            follow = refetch_pass(p)
            if follow is not None:
                passes.append(follow)
            decoded += log.count("seen") if complete else images
            if p.dedup is not None:
                record.dropped += max(0, log.count("cand") - (written - before))
        finally:
            log.close()
    sink.close((decoded, reached))
    return written, decoded, reached, "; ".join(logs)


def _check_complete(
    frame_plan: Plan,
    info: VideoInfo,
    written: int,
    decoded: int,
    reached: float,
    record: VideoRecord,
    log: str,
) -> str | None:
    """Fail a video with nothing usable; return why it ends early (truncated), or None."""
    if written == 0:
        if record.missing:
            raise Failure("none of the requested frames exist: " + ", ".join(record.missing[:5]))
        raise DecodeFailure("ffmpeg produced no frames" + (f" ({log})" if log else ""))
    decoded, reached = _reach(frame_plan, decoded, reached)
    if not believable(frame_plan.claimed, record.size):
        # A false header, not a cut-off file: keep the frames, drop the claimed length.
        record.missing.append(false_claim(record.duration, frame_plan.claimed, record.size))
        record.duration = None
    elif frame_plan.streaming and cut_short(info.duration, reached, float(1 / info.shown_rate)):
        detail = f": {log}" if log else ""
        return (
            f"truncated: decoded {decoded} frames, {reached:.3f} s of the {info.duration:g} s "
            f"its header states (about {frame_plan.claimed} frames){detail}"
        )
    return None


def _reach(frame_plan: Plan, decoded: int, reached: float) -> tuple[int, float]:
    """(pictures, seconds) the video reaches: a fast plan's are told by its packets, not by
    the pictures fed to the decoder."""
    if frame_plan.reaches is not None:
        return frame_plan.counted, round(frame_plan.reaches, 6)
    return decoded, round(reached, 6)


def os_reason(e: OSError, out: str) -> str:
    if e.errno == errno.ENOSPC:
        return f"no space left on device while writing to {out}"
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write to the output folder {out}: {e.strerror}"
    if e.errno == errno.ENOTCONN:
        return str(disk_gone(e))
    return f"{e.strerror or e} ({e.filename})" if e.filename else str(e)

"""What a video file is, read in-process from its container header, with failures in words.

PyAV opens the header with FFmpeg's own demuxers, the way ffprobe would, but inside the
worker: no second FFmpeg process per video (ffprobe's start alone costs about 0.1 s of
CPU, most of the per-video overhead on short clips).  Only the local file may be opened
(``file`` protocol) and only by demuxers of real video containers: a playlist (HLS,
DASH), a concat list or any other format that makes FFmpeg read further files is
refused before it can open anything.
"""

from __future__ import annotations

import errno
import math
import os
import struct
from dataclasses import dataclass
from fractions import Fraction

from .ffmpeg import SAFE_DEMUXERS, input_url, refused_format
from .record import VideoRecord


class ProbeError(Exception):
    """The file is not a readable video; the message is the human reason."""


# Pixels per frame above which a video is refused before anything decodes it (--max-pixels).
# 8K UHD is 33 Mpx; a 16000x16000 H.264 file of 50 KB decodes to 384 MB a frame, and
# ffmpeg, the pipe and the encoder each hold copies: 1.4 GB for one frame, measured here.
DEFAULT_MAX_PIXELS = 64_000_000


def _pixels(n: int) -> str:
    return f"{n / 1_000_000:g} Mpx" if n >= 1_000_000 else f"{n} px"


def check_picture(width: int, height: int, max_pixels: int | None) -> None:
    """ProbeError if one frame of this size has more pixels than ``max_pixels`` allows."""
    if max_pixels is not None and width * height > max_pixels:
        raise ProbeError(
            f"picture {width}x{height} is {_pixels(width * height)}, above --max-pixels {_pixels(max_pixels)}"
        )


@dataclass(frozen=True)
class VideoInfo:
    codec: str
    width: int
    height: int
    fps: float
    duration: float
    start_time: float
    pix_fmt: str
    frame_rate: Fraction
    nb_frames: int | None
    color_matrix: str = ""  # "" when the file does not say (ffmpeg then assumes BT.601)
    full_range: bool = False  # JPEG-range samples (yuvj*, or tagged full range)

    @property
    def estimated_frames(self) -> int:
        """Frame count from the container, or from duration x rate when it has none."""
        if self.nb_frames:
            return self.nb_frames
        return int(round(self.duration * float(self.frame_rate)))

    def fill(self, record: VideoRecord) -> None:
        """Copy the facts a manifest record carries."""
        record.codec, record.width, record.height = self.codec, self.width, self.height
        record.fps, record.duration = self.fps, self.duration


def _rate(value) -> Fraction | None:
    if value is None:
        return None
    try:
        rate = Fraction(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return rate if rate > 0 else None


def probe(path: str, max_pixels: int | None = None) -> VideoInfo:
    """Return the first video stream's facts, or raise ProbeError with the reason (also for
    a picture above ``max_pixels``, found before any frame of it is decoded)."""
    with open_container(path, max_pixels) as container:
        return _facts(container, path, max_pixels)[0]


def probe_keyframes(path: str) -> tuple[VideoInfo, list[float]]:
    """``probe`` plus the key frames' times from the stream start.

    Packets are read, not decoded, so this stays cheap even for long videos.
    """
    with open_container(path) as container:
        info, stream = _facts(container, path)
        container.seek(0)
        keys = []
        for packet in container.demux(stream):
            if packet.is_keyframe and packet.pts is not None:
                keys.append(float(packet.pts * stream.time_base) - info.start_time)
        return info, sorted(keys)


@dataclass(frozen=True)
class KeyFrame:
    """A key frame as ffmpeg's input seek can land on it exactly."""

    index: int  # frame number from the stream's start
    microseconds: int  # its time as ``-ss`` counts it (from the file's start)


# Packets read after one seek before giving up on finding the key frame (the frames found
# so far are still used): more than a minute of 60 fps video without a key frame.
_MAX_PACKETS = 4000
_SEEK_TRIES = 6  # seek again this many times, 1, 2, 4 ... s earlier, if a seek landed late


def key_frames_before(path: str, indices: list[int]) -> dict[int, KeyFrame]:
    """For each frame, the last key frame at or before it, from the container's packets.

    ffmpeg's accurate seek (``-ss`` half a frame early) trusts the demuxer to land at or
    before the time asked.  Some do not: in MPEG-TS it lands on the next key frame and
    the requested frame is silently replaced by a later one.  And on a frame that is a key
    frame itself, the half frame lands on the key frame before it and decodes a whole
    key-frame interval for nothing.  So the key frame is found here, by reading packets
    (nothing is decoded) until the requested frame's turn, and ffmpeg is sent to that key
    frame's own time to the microsecond: ffmpeg rounds that one way for the seek and for
    the frames it drops, so it lands on the key frame and keeps it.  A frame this cannot
    vouch for is left out (its seek stays as it was).
    """
    import av

    found: dict[int, KeyFrame] = {}
    try:
        with open_container(path) as container:
            info, stream = _facts(container, path)
            tb, rate, start = stream.time_base, info.frame_rate, stream.start_time
            if not tb or tb < Fraction(1, 500_000) or start is None:
                return found  # a microsecond would not name one tick (or no start to count from)
            start_us = container.start_time or 0
            for i in indices:
                pts = _last_key_at_or_before(container, stream, start + i / rate / tb, 1 / rate / tb / 2)
                if pts is None:
                    continue
                index = math.floor((pts - start) * tb * rate + Fraction(1, 2))
                if 0 <= index <= i:
                    found[i] = KeyFrame(index, round(pts * tb * 1_000_000) - start_us)
    except (ProbeError, av.FFmpegError, OSError):
        pass  # an unseekable or damaged file: the frames found so far, the rest seek as usual
    return found


def _last_key_at_or_before(container, stream, target: Fraction, half: Fraction) -> int | None:
    """The pts of the last key frame shown at or before ``target`` (both in the stream's
    time base), or None."""
    back = 0
    # MPEG-TS seeks by decoding time: sent to the first frame's (shown) time, it lands after
    # that frame when B-frames have it decoded earlier.  A second before the start is safe.
    floor = stream.start_time - int(1 / stream.time_base)
    for _ in range(_SEEK_TRIES):
        at = max(floor, int(target + half / 2) - back)
        container.seek(at, stream=stream, backward=True, any_frame=False)
        best = None
        for n, packet in enumerate(container.demux(stream)):
            if n > _MAX_PACKETS:
                return best
            if packet.pts is not None and packet.is_keyframe:
                if packet.pts > target + half:
                    break  # key frames come in order: the rest are later still
                best = packet.pts
            if packet.dts is not None and packet.dts > target + half:
                break  # past the requested frame in decoding order: no key frame for it remains
        if best is not None:
            return best
        if at == floor:
            return None
        back = max(2 * back, int(1 / stream.time_base))  # landed after it: a second earlier, then more
    return None


def open_container(path: str, max_pixels: int | None = None, packets_only: bool = False):
    """The container, opened as only a local video may be (see the module's docstring).

    ``packets_only``: for reading packets' times and bytes, never frames; the header
    analysis then decodes nothing: 0.6 ms instead of 5.4 ms per one-second 360p clip,
    measured here.  Not for remuxing: what it leaves unknown (the pixel format, and for
    Matroska the B-frame delay its decode times are derived from) a muxer needs."""
    import av  # here, not at import: the client process never probes

    reason = refused_format(path)
    if reason:
        raise ProbeError(f"not a video file: {reason}")
    # One decoder thread for the few frames the header analysis decodes: starting a
    # thread per core costs more than the decoding.  And none of those frames above
    # max_pixels (libavcodec's own option): the picture size still comes from the
    # stream's header, and a 16000x16000 frame is never allocated (616 MB -> 115 MB).
    options = {"threads": "1", **({"max_pixels": str(max_pixels)} if max_pixels else {})}
    if packets_only:
        options["skip_frame"] = "all"
    try:
        return av.open(
            input_url(path),
            container_options={"protocol_whitelist": "file", "format_whitelist": SAFE_DEMUXERS},
            options=options,
            metadata_errors="replace",
        )
    except av.FFmpegError as e:
        if e.errno == errno.EINVAL and not getattr(e, "log", None):
            # What the format whitelist answers for a container outside it (an mp3, a
            # picture, a subtitle file): FFmpeg gives no more words than "Invalid argument".
            raise ProbeError(
                "not a readable video: not in a video container format snhoo-dask opens "
                "(an audio file, a picture or another kind of file?)"
            ) from None
        raise ProbeError(f"not a readable video: {_why(e, path)}") from None
    except OSError as e:
        raise ProbeError(f"not a readable video: {e.strerror or e}") from None


def _why(error: Exception, path: str) -> str:
    text = getattr(error, "strerror", None) or str(error)
    log = getattr(error, "log", None)  # (level, context, message) of FFmpeg's last error line
    if log and log[2] and "whitelist" not in log[2]:
        return f"{log[2].strip()}; {text}"
    return text


def video_stream(container):
    """The first video stream that is a video (not cover art); ProbeError if there is none."""
    streams = [s for s in container.streams.video if not _attached_picture(s)]
    if not streams:
        raise ProbeError("no video stream in this file")
    return streams[0]


def _facts(container, path: str, max_pixels: int | None = None) -> tuple[VideoInfo, object]:
    s = video_stream(container)
    cc = s.codec_context
    width, height = int(cc.width or 0), int(cc.height or 0)
    if width <= 0 or height <= 0:
        raise ProbeError("video stream has no picture size (damaged or unsupported)")
    check_picture(width, height, max_pixels)  # before _rotation decodes a frame
    if _rotation(container, s, path) in (90, 270):
        # ffmpeg turns phone videos upright while decoding, so frames come out transposed.
        width, height = height, width
    rate = _rate(s.average_rate) or _rate(s.base_rate)
    if rate is None:
        raise ProbeError("video stream has no frame rate (damaged or unsupported)")
    tb = s.time_base
    duration = _nonneg(s.duration * tb if s.duration is not None and tb else None)
    if duration is None and container.duration is not None:
        duration = _nonneg(container.duration / 1_000_000)
    start = _nonneg(s.start_time * tb if s.start_time is not None and tb else None)
    pix_fmt = str(cc.pix_fmt or "yuv420p")
    info = VideoInfo(
        codec=_codec_name(cc),
        width=width,
        height=height,
        fps=round(float(rate), 6),
        duration=round(duration or 0.0, 6),
        start_time=start or 0.0,
        pix_fmt=pix_fmt,
        frame_rate=rate,
        nb_frames=int(s.frames) if s.frames and s.frames > 0 else None,
        color_matrix=_matrix_name(cc),
        full_range=pix_fmt.startswith("yuvj") or _full_range(cc),
    )
    return info, s


def _attached_picture(stream) -> bool:
    import av

    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _codec_name(cc) -> str:
    # The codec's own name (ffprobe's codec_name), not the decoder's (e.g. "libdav1d").
    try:
        return str(cc.codec.descriptor.name)
    except AttributeError:
        return str(cc.name or "unknown")


_MATRICES = {1: "bt709", 5: "bt470bg", 6: "smpte170m", 9: "bt2020nc", 10: "bt2020c"}


def _matrix_name(cc) -> str:
    value = int(getattr(cc, "colorspace", 2) or 2)
    return "" if value == 2 else _MATRICES.get(value, f"matrix {value}")


def _full_range(cc) -> bool:
    return int(getattr(cc, "color_range", 0) or 0) == 2


def _rotation(container, stream, path: str) -> int:
    """The display rotation ffmpeg applies while decoding (it turns phone videos upright).

    For MP4/MOV it is read from the track header, where ffmpeg finds it; other
    containers have no cheap place to read it from here, so their first frame is decoded.
    """
    if "mov" in container.format.name.split(","):
        return _mov_rotation(path)
    try:
        for packet in container.demux(stream):
            for frame in packet.decode():
                return int(round(frame.rotation)) % 360
    except av_error() as e:
        raise ProbeError(f"not a readable video: {_why(e, path)}") from None
    return 0


def av_error():
    import av

    return av.FFmpegError


def _boxes(f, start: int, end: int):
    """(type, payload start, box end) of the ISO-BMFF boxes between start and end."""
    pos = start
    while pos + 8 <= end:
        f.seek(pos)
        head = f.read(16)
        if len(head) < 8:
            return
        size, kind = struct.unpack(">I4s", head[:8])
        body = pos + 8
        if size == 1 and len(head) == 16:
            size, body = struct.unpack(">Q", head[8:16])[0], pos + 16
        elif size == 0:
            size = end - pos
        if size < body - pos:
            return
        yield kind, body, min(pos + size, end)
        pos += size


def _mov_rotation(path: str) -> int:
    with open(path, "rb") as f:
        end = os.fstat(f.fileno()).st_size
        for kind, body, box_end in _boxes(f, 0, end):
            if kind != b"moov":
                continue
            for trak, tbody, tend in _boxes(f, body, box_end):
                if trak == b"trak":
                    angle = _video_track_rotation(f, tbody, tend)
                    if angle is not None:
                        return angle
    return 0


def _video_track_rotation(f, start: int, end: int) -> int | None:
    matrix, video = None, False
    for kind, body, box_end in _boxes(f, start, end):
        if kind == b"tkhd":
            f.seek(body)
            version = f.read(1)
            f.seek(body + (52 if version == b"\x01" else 40))
            matrix = struct.unpack(">9i", f.read(36))
        elif kind == b"mdia":
            for sub, sbody, _ in _boxes(f, body, box_end):
                if sub == b"hdlr":
                    f.seek(sbody + 8)
                    video = f.read(4) == b"vide"
    if not video or matrix is None:
        return None
    a, b, c, d = matrix[0], matrix[1], matrix[3], matrix[4]
    # As av_display_rotation_get reads the same matrix.
    angle = -math.degrees(math.atan2(b / (math.hypot(b, d) or 1), a / (math.hypot(a, c) or 1)))
    return int(round(angle)) % 360


def _nonneg(value) -> float | None:
    """A duration or start time: a number that is neither NaN nor negative."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if f == f and f >= 0 else None

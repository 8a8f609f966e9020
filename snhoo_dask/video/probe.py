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

from ..errors import VideoError
from ..model import VideoRecord
from .ffmpeg import SAFE_DEMUXERS, input_url, refused_format


class ProbeError(VideoError):
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
    fps: float  # the stream's frame rate as ffmpeg reports it (its r_frame_rate, "tbr")
    duration: float | None  # None: the container does not say (a WebM written to a pipe)
    start_time: float
    pix_fmt: str
    frame_rate: Fraction
    nb_frames: int | None
    color_matrix: str = ""  # "" when the file does not say (ffmpeg then assumes BT.601)
    full_range: bool = False  # JPEG-range samples (yuvj*, or tagged full range)
    container: str = ""  # the demuxer's name (e.g. "mov,mp4,m4a,3gp,3g2,mj2", "avi")
    # What ffmpeg's autorotation does to this video's pictures, as filters; None when it
    # cannot be told exactly from here (then only the plain path runs: it reads the file).
    turn: tuple[str, ...] | None = ()
    # The colour facts the container states (ffmpeg's decoder options, by number): a fed
    # stream (thinning, pieces) carries none of them, so they are restated to its decoder.
    colour: tuple[tuple[str, int], ...] = ()
    stream: int = 0  # the video stream's index in the file: every read is of this one
    # The stream's own rate (``fps``) as a fraction; None: the same as ``frame_rate``.
    stream_rate: Fraction | None = None

    @property
    def shown_rate(self) -> Fraction:
        """The rate that says how long the last picture is shown (one frame at the stream's
        own rate: an average over a pause would make it minutes)."""
        return self.stream_rate or self.frame_rate

    @property
    def estimated_frames(self) -> int:
        """Frame count from the container (the smaller of its count and its duration x
        rate: an edit list's count includes the pictures it cuts away)."""
        by_time = int(round((self.duration or 0.0) * float(self.frame_rate)))
        if self.nb_frames:
            return min(self.nb_frames, by_time) if by_time > 0 else self.nb_frames
        return by_time

    def fill(self, record: VideoRecord) -> None:
        """Copy the facts a manifest record carries."""
        record.codec, record.width, record.height = self.codec, self.width, self.height
        record.fps, record.duration = self.fps, self.duration
        record.stream = self.stream


# Above this an r_frame_rate is a time base ffmpeg fell back to, not a frame rate.
MAX_STATED_RATE = 1000


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
        if not getattr(e, "log", None) and _mp4_without_moov(path):
            # FFmpeg's own line for it reaches PyAV only when its logging is on (global
            # state in a worker); the box walk below tells the same from the file.
            raise ProbeError(f"not a readable video: moov atom not found; {_why(e, path)}") from None
        raise ProbeError(f"not a readable video: {_why(e, path)}") from None
    except OSError as e:
        raise ProbeError(f"not a readable video: {e.strerror or e}") from None


def _mp4_without_moov(path: str) -> bool:
    """An MP4/MOV (it starts with an ``ftyp`` box) with no ``moov`` box at its top level:
    a recording that never finished, or a copy cut off before its index."""
    try:
        with open(path, "rb") as f:
            end = os.fstat(f.fileno()).st_size
            kinds = [kind for kind, _, _ in _boxes(f, 0, end)]
    except OSError:
        return False
    return bool(kinds) and kinds[0] == b"ftyp" and b"moov" not in kinds


def _why(error: Exception, path: str) -> str:
    text = getattr(error, "strerror", None) or str(error)
    log = getattr(error, "log", None)  # (level, context, message) of FFmpeg's last error line
    if log and log[2] and "whitelist" not in log[2]:
        return f"{log[2].strip()}; {text}"
    return text


def video_stream(container, index: int | None = None):
    """The video's one stream: the one at ``index`` (``VideoInfo.stream``: every read after
    the probe reads the stream it chose), else the one plain ``ffmpeg -i FILE`` decodes.

    ffmpeg's choice (its ``open_output_file``): the video stream with the most pixels, a
    stream flagged default counted as 5,000,000 pixels more, the first of equals; cover
    art (attached pictures) is no video here.  ProbeError if there is none."""
    if index is not None:
        stream = container.streams[index]
        if stream.type != "video" or _attached_picture(stream):
            raise ProbeError(f"stream {index} is not a video stream")
        return stream
    streams = [s for s in container.streams.video if not _attached_picture(s)]
    if not streams:
        raise ProbeError("no video stream in this file")
    return max(streams, key=_ffmpeg_score_and_order)


def _ffmpeg_score_and_order(stream) -> tuple[int, int]:
    import av

    cc = stream.codec_context
    default = bool(stream.disposition & av.stream.Disposition.default)
    # max() keeps the first of equal keys only with the order in the key (strictly greater wins).
    return int(cc.width or 0) * int(cc.height or 0) + 5_000_000 * default, -stream.index


def _facts(container, path: str, max_pixels: int | None = None) -> tuple[VideoInfo, object]:
    s = video_stream(container)
    cc = s.codec_context
    width, height = int(cc.width or 0), int(cc.height or 0)
    if width <= 0 or height <= 0:
        raise ProbeError("video stream has no picture size (damaged or unsupported)")
    check_picture(width, height, max_pixels)  # before _rotation decodes a frame
    rotation, turn = _rotation(container, s, path)
    if rotation in (90, 270):
        # ffmpeg turns phone videos upright while decoding, so frames come out transposed.
        width, height = height, width
    # Frames are counted by the average rate (a count over the duration); the rate the
    # record states is the stream's own, which a pause or a timelapse does not lower.
    rate = _rate(s.average_rate) or _rate(s.base_rate)
    if rate is None:
        raise ProbeError("video stream has no frame rate (damaged or unsupported)")
    stated = _rate(s.base_rate)
    if stated is None or stated > MAX_STATED_RATE:
        stated = rate  # no r_frame_rate, or a time base guessed as one (90000/1)
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
        fps=round(float(stated), 6),
        duration=round(duration, 6) if duration is not None else None,
        start_time=start or 0.0,
        pix_fmt=pix_fmt,
        frame_rate=rate,
        nb_frames=int(s.frames) if s.frames and s.frames > 0 else None,
        color_matrix=_matrix_name(cc),
        full_range=pix_fmt.startswith("yuvj") or _full_range(cc),
        container=str(container.format.name),
        turn=turn,
        colour=_colour(cc),
        stream_rate=stated,
        stream=int(s.index),
    )
    return info, s


def _colour(cc) -> tuple[tuple[str, int], ...]:
    """The colour facts ffmpeg's decoder gets from the container (2 and 0 mean unknown)."""
    out = []
    for option, attribute, unknown in (
        ("color_range", "color_range", 0),
        ("colorspace", "colorspace", 2),
        ("color_primaries", "color_primaries", 2),
        ("color_trc", "color_trc", 2),
    ):
        value = int(getattr(cc, attribute, unknown) or unknown)
        if value != unknown:
            out.append((option, value))
    return tuple(out)


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


def _rotation(container, stream, path: str) -> tuple[int, tuple[str, ...] | None]:
    """The display rotation ffmpeg applies while decoding (it turns phone videos upright),
    and the filters that do the same (None: not known exactly).

    For MP4/MOV it is read from the track header, where ffmpeg finds it; other
    containers have no cheap place to read it from here, so their first frame is decoded.
    """
    if "mov" in container.format.name.split(","):
        return _mov_rotation(path, int(stream.id))
    try:
        for packet in container.demux(stream):
            for frame in packet.decode():
                angle = int(round(frame.rotation)) % 360
                return angle, () if angle == 0 else None
    except av_error() as e:
        raise ProbeError(f"not a readable video: {_why(e, path)}") from None
    return 0, ()


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


def _mov_rotation(path: str, track_id: int) -> tuple[int, tuple[str, ...] | None]:
    """The rotation of the video track ``track_id`` (what FFmpeg's mov demuxer gives as the
    stream's id): the chosen stream's, not the file's first video track's."""
    with open(path, "rb") as f:
        end = os.fstat(f.fileno()).st_size
        for kind, body, box_end in _boxes(f, 0, end):
            if kind != b"moov":
                continue
            movie = None
            for box, tbody, tend in _boxes(f, body, box_end):
                if box == b"mvhd":
                    f.seek(tbody)
                    version = f.read(1)
                    f.seek(tbody + (40 if version == b"\x01" else 28) + 8)
                    movie = struct.unpack(">9i", f.read(36))
                if box == b"trak":
                    matrix = _video_track_matrix(f, tbody, tend, track_id)
                    if matrix is not None:
                        identity = (65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30)
                        turn = _turn(matrix) if movie in (None, identity) else None
                        return _angle(matrix), turn
    return 0, ()


def _angle(matrix: tuple[int, ...]) -> int:
    a, b, c, d = matrix[0], matrix[1], matrix[3], matrix[4]
    # As av_display_rotation_get reads the same matrix.
    angle = -math.degrees(math.atan2(b / (math.hypot(b, d) or 1), a / (math.hypot(a, c) or 1)))
    return int(round(angle)) % 360


def _turn(matrix: tuple[int, ...]) -> tuple[str, ...] | None:
    """The filters ffmpeg 5.1's autorotation inserts for this display matrix (its
    ffmpeg_filter.c, read as the matrix's [0], [3], [4]); None for an angle it rotates by
    an arbitrary amount."""
    angle = (360 - _angle(matrix)) % 360  # ffmpeg's theta: the other way round
    m0, m3, m4 = matrix[0], matrix[3], matrix[4]
    if angle == 90:
        return ("transpose=cclock_flip" if m3 > 0 else "transpose=clock",)
    if angle == 180:
        return tuple(f for f, on in (("hflip", m0 < 0), ("vflip", m4 < 0)) if on)
    if angle == 270:
        return ("transpose=clock_flip" if m3 < 0 else "transpose=cclock",)
    if angle == 0:
        return ("vflip",) if m4 < 0 else ()
    return None


def _video_track_matrix(f, start: int, end: int, track_id: int) -> tuple[int, ...] | None:
    matrix, video = None, False
    for kind, body, box_end in _boxes(f, start, end):
        if kind == b"tkhd":
            f.seek(body)
            version = f.read(1)
            f.seek(body + (20 if version == b"\x01" else 12))
            if struct.unpack(">I", f.read(4))[0] != track_id:
                return None
            f.seek(body + (52 if version == b"\x01" else 40))
            matrix = struct.unpack(">9i", f.read(36))
        elif kind == b"mdia":
            for sub, sbody, _ in _boxes(f, body, box_end):
                if sub == b"hdlr":
                    f.seek(sbody + 8)
                    video = f.read(4) == b"vide"
    if not video or matrix is None:
        return None
    return matrix


def _nonneg(value) -> float | None:
    """A duration or start time: a number that is neither NaN nor negative."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if f == f and f >= 0 else None

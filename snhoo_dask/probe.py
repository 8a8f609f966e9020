"""Ask ffprobe what a video file is, once per video, and explain failures in words."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from fractions import Fraction

from .ffmpeg import FFPROBE, SAFE_INPUT_OPTIONS, ffmpeg_reason, input_url
from .malloc import child_env
from .record import VideoRecord


class ProbeError(Exception):
    """The file is not a readable video; the message is the human reason."""


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


def _parse_rate(text: str | None) -> Fraction | None:
    if not text or text in ("0/0", "0/1"):
        return None
    try:
        rate = Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None
    return rate if rate > 0 else None


def probe(path: str, timeout: float = 60.0) -> VideoInfo:
    """Return the first video stream's facts, or raise ProbeError with the reason."""
    return _probe(path, timeout, packets=False)[0]


def probe_keyframes(path: str, timeout: float = 120.0) -> tuple[VideoInfo, list[float]]:
    """``probe`` plus the key frames' times from the stream start, in one ffprobe run.

    Packets are read, not decoded, so this stays cheap even for long videos.

    Every ffprobe start costs about 0.1 s of CPU (it loads the whole FFmpeg library
    stack), which is most of the per-video overhead on short videos.
    """
    return _probe(path, timeout, packets=True)


def _probe(path: str, timeout: float, packets: bool) -> tuple[VideoInfo, list[float]]:
    cmd = [
        FFPROBE,
        *SAFE_INPUT_OPTIONS,
        "-v",
        "error",
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
    ]
    if packets:
        cmd += ["-show_packets", "-show_entries", "packet=stream_index,pts_time,flags:stream:format"]
    cmd.append(input_url(path))
    try:
        proc = subprocess.run(
            cmd, capture_output=True, timeout=timeout, start_new_session=True, env=child_env()
        )
    except subprocess.TimeoutExpired:
        raise ProbeError(f"ffprobe did not answer within {timeout:.0f} s") from None
    err = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        reason = ffmpeg_reason(err, path) or f"ffprobe exited with status {proc.returncode}"
        raise ProbeError(f"not a readable video: {reason}")
    try:
        data = json.loads(proc.stdout.decode("utf-8", "replace") or "{}")
    except json.JSONDecodeError:
        raise ProbeError("not a readable video: ffprobe printed no usable description") from None
    streams = [
        s
        for s in data.get("streams", [])
        if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
    ]
    if not streams:
        raise ProbeError("no video stream in this file")
    s = streams[0]
    width, height = int(s.get("width") or 0), int(s.get("height") or 0)
    if width <= 0 or height <= 0:
        raise ProbeError("video stream has no picture size (damaged or unsupported)")
    if _rotation(s) in (90, 270):
        # ffmpeg turns phone videos upright while decoding, so frames come out transposed.
        width, height = height, width
    rate = _parse_rate(s.get("avg_frame_rate")) or _parse_rate(s.get("r_frame_rate"))
    if rate is None:
        raise ProbeError("video stream has no frame rate (damaged or unsupported)")
    fmt = data.get("format", {})
    duration = _float(s.get("duration")) or _float(fmt.get("duration")) or 0.0
    nb = s.get("nb_frames")
    info = VideoInfo(
        codec=str(s.get("codec_name") or "unknown"),
        width=width,
        height=height,
        fps=round(float(rate), 6),
        duration=round(duration, 6),
        start_time=_float(s.get("start_time")) or 0.0,
        pix_fmt=str(s.get("pix_fmt") or "yuv420p"),
        frame_rate=rate,
        nb_frames=int(nb) if nb and str(nb).isdigit() and int(nb) > 0 else None,
    )
    keys = []
    for pkt in data.get("packets", []) if packets else ():
        t = _signed_float(pkt.get("pts_time"))
        if pkt.get("stream_index") == s.get("index") and "K" in str(pkt.get("flags", "")) and t is not None:
            keys.append(t - info.start_time)
    return info, sorted(keys)


def _rotation(stream: dict) -> int:
    angle = (stream.get("tags") or {}).get("rotate")
    for side in stream.get("side_data_list") or []:
        if "rotation" in side:
            angle = side["rotation"]
    try:
        return int(float(angle or 0)) % 360
    except (TypeError, ValueError):
        return 0


def _signed_float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _float(value) -> float | None:
    """A duration or start time: a number that is neither NaN nor negative."""
    f = _signed_float(value)
    return f if f is not None and f == f and f >= 0 else None

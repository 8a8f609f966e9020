"""What every ffmpeg/ffprobe run of ours shares: safe input options and readable errors."""

from __future__ import annotations

import re

FFMPEG = "ffmpeg"

# Demuxers of real video containers, none of which opens another file.  Playlists
# (hls, dash), concat lists, image sequences and the like are not among them.  A name
# matches any part of a demuxer's comma-separated name ("mov" is mov,mp4,m4a,3gp,...).
SAFE_DEMUXERS = ",".join(
    [
        "mov",
        "matroska",
        "avi",
        "flv",
        "live_flv",
        "asf",
        "mpeg",
        "mpegts",
        "mpegvideo",
        "m4v",
        "h264",
        "hevc",
        "ogg",
        "mxf",
        "dv",
        "nut",
        "ivf",
        "yuv4mpegpipe",
        "rm",
        "wtv",
        "obu",
    ]
)

# ffmpeg may open only the local file it is given: no network protocols, and no
# playlist (HLS), concat or similar demuxer that would make it read other files.
SAFE_INPUT_OPTIONS = ["-protocol_whitelist", "file", "-format_whitelist", SAFE_DEMUXERS]
# A thinned pass (thinning.py): ffmpeg reads only the NUT stream we write into its stdin.
PIPE_INPUT_OPTIONS = ["-protocol_whitelist", "pipe", "-format_whitelist", "nut", "-f", "nut"]

# The decoder's picture is the stream's exact crop, the size its header states (probe's
# width x height).  Without "-flags unaligned" libavcodec drops a left or top crop that would
# leave the planes unaligned (H.264 cropping 6 px left of 640 gave 630 wide, not the 624
# stated), and the filter chain's scale to the stated size then squeezed the picture.
EXACT_CROP = {"-flags": "unaligned"}

# What such files start with, to say what a refused file is (FFmpeg's own refusal
# only says "not on whitelist").
_READS_OTHER_FILES = [
    (b"#EXTM3U", "an HLS playlist (hls)"),
    (b"ffconcat version", "a concat list (concat)"),
    (b"<?xml", "an XML manifest (DASH or IMF)"),
    (b"<MPD", "a DASH manifest (dash)"),
]

_CONTEXT_PREFIX = re.compile(r"^\[[^\]]+ @ 0x[0-9a-f]+\]\s*")


def refused_format(path: str) -> str | None:
    """Why this file must not be handed to ffmpeg as a video, from its first bytes; None if fine."""
    try:
        with open(path, "rb") as f:
            head = f.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError:
        return None  # the open below reports it
    for magic, what in _READS_OTHER_FILES:
        if head.startswith(magic):
            return f"{what}, which would make ffmpeg read other files"
    return None


def input_url(path: str) -> str:
    """The file: protocol keeps names with a leading "-" or a ":" from reading as options or URLs."""
    return "file:" + path


def ffmpeg_reason(stderr: str, path: str = "", limit: int = 3) -> str:
    """The distinct lines of an ffmpeg/ffprobe error log, without addresses and the file name."""
    seen: list[str] = []
    for line in stderr.splitlines():
        line = _CONTEXT_PREFIX.sub("", line.strip())
        for prefix in ("file:" + path + ": ", path + ": "):
            if path and line.startswith(prefix):
                line = line[len(prefix) :]
        if line and line not in seen:
            seen.append(line)
    return "; ".join(seen[-limit:])

"""What every ffmpeg/ffprobe run of ours shares: safe input options and readable errors."""

from __future__ import annotations

import re

FFMPEG = "ffmpeg"
FFPROBE = "ffprobe"

# ffmpeg may open only the local file it is given: no network protocols, and no
# playlist (HLS), concat or similar demuxer that would make it read other files.
SAFE_INPUT_OPTIONS = ["-protocol_whitelist", "file"]

_CONTEXT_PREFIX = re.compile(r"^\[[^\]]+ @ 0x[0-9a-f]+\]\s*")


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

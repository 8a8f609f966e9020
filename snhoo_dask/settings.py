"""What a job asked for: the settings every video's task receives."""

from __future__ import annotations

from dataclasses import dataclass

from .selection import Selection


@dataclass(frozen=True)
class Settings:
    """Everything about a job that every video's task needs."""

    out: str
    selection: Selection
    fmt: str = "jpg"
    quality: int = 90
    stage: bool = True
    scratch: str | None = None
    timeout: float = 120.0
    run_id: str = ""
    # ffmpeg decoder threads; 0 lets ffmpeg choose.  The job sets 1 when there are at
    # least as many videos as worker threads: parallelism then comes from the videos,
    # and frame threads only add overhead (a 2-min 720p decode: 18.1 s vs 19.9 s CPU).
    decoder_threads: int = 0

    def signature(self) -> dict:
        """What a finished folder must match to be skipped on a rerun."""
        return {"selection": self.selection.signature(), "format": self.fmt, "quality": self.quality}

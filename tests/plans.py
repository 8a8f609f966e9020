"""Run a frame plan (``selection.plan``, ``thinning.fast_plan``) through real ffmpeg as a
task does (``extract.write_frames``), and see which images it gives."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from snhoo_dask.frames.plans import Plan
from snhoo_dask.frames.selection import Selection
from snhoo_dask.model import VideoRecord
from snhoo_dask.settings import Settings
from snhoo_dask.video.probe import VideoInfo
from snhoo_dask.worker.extract import write_frames


@dataclass
class Taken:
    """What one plan wrote: its images in order, and the record it filled in."""

    index: list[int] = field(default_factory=list)  # each image's frame number (its name)
    timestamp: list[float] = field(default_factory=list)
    data: list[bytes] = field(default_factory=list)  # each image's file (PNG)
    record: VideoRecord | None = None
    decoded: int = 0
    reached: float = 0.0

    def shown(self) -> list[int]:
        """Which source frame of a ``videos.make_video`` video each image shows (mod 110)."""
        return [grey_frame(d) for d in self.data]


class _Collect:
    def __init__(self, taken: Taken) -> None:
        self.taken = taken

    def add(self, name, data, row) -> None:
        self.taken.index.append(row.index)
        self.taken.timestamp.append(row.timestamp)
        self.taken.data.append(bytes(data))

    def close(self, reached=None) -> None:
        pass


def grey_frame(data: bytes) -> int:
    """The frame a ``make_video`` picture shows: grey level 16 + 2n in video range."""
    grey = np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=float).mean()
    return int(round((grey * 219 / 255 + 16 - 16) / 2))


def take(video: str, info: VideoInfo, frame_plan: Plan, fmt: str = "png") -> Taken:
    """The images ``frame_plan`` makes of ``video`` (raises FastPathRejected as a task would)."""
    taken = Taken(record=VideoRecord("test", "/", "v", "v", missing=list(frame_plan.missing)))
    settings = Settings(out="", selection=Selection(), fmt=fmt)
    _, taken.decoded, taken.reached, _ = write_frames(
        video, info, frame_plan, settings, _Collect(taken), taken.record
    )
    return taken

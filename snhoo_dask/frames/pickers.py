"""Which of the images ffmpeg sends become files, and which frame each one is.

ffmpeg's ``select`` may keep a superset of what was asked (a window around each time, a
range around exact frames); a ``Picker`` takes the images out of it.  ``Expect`` is the
fast paths' picker: exactly the planned frames, in order, or the path is rejected.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ..errors import FastPathError

# A frame's time "at or before T" allows this much rounding (half a millisecond).
TIME_TOLERANCE = 0.0005
# --times on the plain path: ffmpeg keeps the frames this many seconds around each time,
# and the last one at or before it is taken.  A gap longer than this before a time (a
# variable-rate file) leaves that time missing, with the reason.
TIMES_WINDOW = 1.0


@dataclass(frozen=True)
class FrameRef:
    index: int  # frame k (see the module's docstring)
    timestamp: float  # its time in seconds from the first frame presented
    score: float | None = None  # ffmpeg's scene score, for --scenes


class FastPathRejected(FastPathError):
    """A fast path could not show that an image is the frame it names (or ffmpeg reported
    an error on it): the video is done again on the plain path, the record saying why."""


# An image to write: which frame it is, and its picture (an array or writers.YuvFrame).
Image = tuple[FrameRef, Any]


class Picker:
    """Which of the images ffmpeg sends become files (``select`` may keep a superset)."""

    done = False  # every image this pass can give has been given: ffmpeg may be stopped
    missing: list[str]

    def offer(self, ref: FrameRef) -> bool:
        """Whether the image is a candidate (it is then handed to ``take``)."""
        return True

    def take(self, ref: FrameRef, picture: Any) -> list[Image]:
        """The images to write now.  ``picture`` is the reader's buffer, valid until the
        next image: a picker that holds one keeps a copy."""
        return [(ref, picture)]

    def finish(self, seen: list[int] | None, rate: Fraction) -> list[Image]:
        """The images still held once ffmpeg has ended (``seen``: every presented
        picture's time in microseconds, None if the pass was stopped early)."""
        return []


class TakeAll(Picker):
    def __init__(self) -> None:
        self.missing = []


class TakeIndices(Picker):
    """Exact frames: the ones asked for, in a range ffmpeg keeps."""

    def __init__(self, indices: list[int]) -> None:
        self.wanted = sorted(set(indices))
        self._left = set(self.wanted)
        self.missing = []

    def offer(self, ref: FrameRef) -> bool:
        return ref.index in self._left

    def take(self, ref: FrameRef, picture: Any) -> list[Image]:
        self._left.discard(ref.index)
        self.done = not self._left
        return [(ref, picture)]

    def finish(self, seen: list[int] | None, rate: Fraction) -> list[Image]:
        if self._left:
            total = len(seen) if seen is not None else 0
            self.missing = frames_past_end(sorted(self._left), total)
        return []


def frames_past_end(indices: list[int], total: int) -> list[str]:
    """The record's words for requested frames a video does not have."""
    words = [f"frame {i} (video has {total} frames)" for i in indices[:20]]
    return words + ([f"and {len(indices) - 20} more"] if len(indices) > 20 else [])


def time_past_end(t: float, last: float, rate: Fraction) -> str:
    return f"time {t:g}s (video lasts {round(last + float(1 / rate), 6):g}s)"


class TakeTimes(Picker):
    """--times on the plain path: ffmpeg keeps the frames around each time; the last one at
    or before it is the frame shown then.  A candidate is held (encoded) until a later
    frame shows it was the last."""

    def __init__(self, times: tuple[float, ...]) -> None:
        self._pending = sorted(set(times))
        self._held: dict[float, Image] = {}
        self._written: set[int] = set()
        self.missing = []

    def offer(self, ref: FrameRef) -> bool:
        return True

    def take(self, ref: FrameRef, picture: Any) -> list[Image]:
        out = []
        while self._pending and self._pending[0] + TIME_TOLERANCE < ref.timestamp:
            out += self._emit(self._pending.pop(0))
        held = None
        for t in self._pending:
            if t - TIMES_WINDOW <= ref.timestamp <= t + TIME_TOLERANCE:
                held = held or (ref, copy.deepcopy(picture))
                self._held[t] = held
        self.done = not self._pending
        return out

    def _emit(self, t: float) -> list[Image]:
        held = self._held.pop(t, None)
        if held is None:
            self.missing.append(f"time {t:g}s (no frame in the {TIMES_WINDOW:g} s before it)")
            return []
        if held[0].index in self._written:
            return []
        self._written.add(held[0].index)
        return [held]

    def finish(self, seen: list[int] | None, rate: Fraction) -> list[Image]:
        out = []
        last = (seen[-1] - seen[0]) / 1e6 if seen else None
        for t in self._pending:
            if last is None or t + TIME_TOLERANCE >= last + float(1 / rate):
                self._held.pop(t, None)
                self.missing.append(time_past_end(t, last or 0.0, rate))
            else:
                out += self._emit(t)
        self._pending = []
        return out


class Expect(Picker):
    """A fast path's images: exactly ``indices``, in order, or the path is rejected.  Other
    pictures it decodes (references, stand-ins) are not candidates."""

    def __init__(self, indices: list[int]) -> None:
        self.expected = list(indices)
        self._wanted = set(indices)
        self.got: list[int] = []
        self.missing = []  # the plan's: what is not in the packets is known before

    def offer(self, ref: FrameRef) -> bool:
        return ref.index in self._wanted

    def take(self, ref: FrameRef, picture: Any) -> list[Image]:
        k = len(self.got)
        if k >= len(self.expected) or ref.index != self.expected[k]:
            want = self.expected[k] if k < len(self.expected) else "none"
            raise FastPathRejected(f"image {k} is frame {ref.index}, expected {want}")
        self.got.append(ref.index)
        return [(ref, picture)]

    def finish(self, seen: list[int] | None, rate: Fraction) -> list[Image]:
        if len(self.got) != len(self.expected):
            raise FastPathRejected(f"ffmpeg gave {len(self.got)} of the {len(self.expected)} frames planned")
        return []

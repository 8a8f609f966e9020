"""Which of the images ffmpeg sends become files, and which frame each one is.

ffmpeg's ``select`` may keep a superset of what was asked (a window around each time, a
range around exact frames); a ``Picker`` takes the images out of it.  ``Expect`` is the
fast paths' picker: exactly the planned frames, in order, or the path is rejected.
"""

from __future__ import annotations

import copy
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ..errors import FastPathError

# A frame's time "at or before T" allows this much rounding (half a millisecond).
TIME_TOLERANCE = 0.0005
# --times on the plain path: ffmpeg sends only the frames this many seconds around each
# time (sending every frame would cost the whole video's pixels through the pipe), and the
# last one at or before it is taken.  A time with none that close before it (a pause, a
# timelapse) is not missing: once the pass has seen every frame's time, that time's frame is
# known by its number and fetched in a second pass (``TakeTimes.refetch``).
NEAR_TIME = 1.0


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
    # Frames (by number) this pass could not send but that are wanted: once it has ended, a
    # pass taking exactly these follows (``plans.refetch_pass``).
    refetch: list[int] = []

    def offer(self, ref: FrameRef) -> bool:
        """Whether the image is a candidate (it is then handed to ``take``)."""
        return True

    def take(self, ref: FrameRef, picture: Any) -> list[Image]:
        """The images to write now.  ``picture`` is the reader's buffer, valid until the
        next image: a picker that holds one keeps a copy."""
        return [(ref, picture)]

    def finish(self, seen: Sequence[int] | None, rate: Fraction) -> list[Image]:
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

    def finish(self, seen: Sequence[int] | None, rate: Fraction) -> list[Image]:
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
    """--times on the plain path: the frame shown at T is the last one whose time is at or
    before T, however long before.  ffmpeg sends the frames near each time; a candidate is
    held (copied) until a later frame shows it was the last.  A time with no frame sent
    before it is settled once the pass has seen every frame's time: its frame, by number,
    is then in ``refetch``."""

    def __init__(self, times: tuple[float, ...]) -> None:
        self._pending = sorted(set(times))
        self._held: dict[float, Image] = {}
        self._written: set[int] = set()
        self._unsent: list[float] = []  # times whose frame ffmpeg did not send
        self.missing = []
        self.refetch = []

    def offer(self, ref: FrameRef) -> bool:
        return True

    def take(self, ref: FrameRef, picture: Any) -> list[Image]:
        out = []
        while self._pending and self._pending[0] + TIME_TOLERANCE < ref.timestamp:
            out += self._emit(self._pending.pop(0))
        held = None
        for t in self._pending:
            if t - NEAR_TIME <= ref.timestamp <= t + TIME_TOLERANCE:
                held = held or (ref, copy.deepcopy(picture))
                self._held[t] = held
        # A time still unsettled needs every frame's time: ffmpeg must run to the end.
        self.done = not self._pending and not self._unsent
        return out

    def _emit(self, t: float) -> list[Image]:
        held = self._held.pop(t, None)
        if held is None:
            self._unsent.append(t)
            return []
        if held[0].index in self._written:
            return []
        self._written.add(held[0].index)
        return [held]

    def finish(self, seen: Sequence[int] | None, rate: Fraction) -> list[Image]:
        out = []
        last = (seen[-1] - seen[0]) / 1e6 if seen else None
        for t in self._pending:
            if last is None or t + TIME_TOLERANCE >= last + float(1 / rate):
                self._held.pop(t, None)
                self.missing.append(time_past_end(t, last or 0.0, rate))
            else:
                out += self._emit(t)
        self._pending = []
        if self._unsent and seen:
            times = [round((us - seen[0]) / 1e6, 6) for us in seen]
            shown = {bisect_right(times, t + TIME_TOLERANCE) - 1 for t in self._unsent}
            self.refetch = sorted(k for k in shown if k >= 0 and k not in self._written)
        elif self._unsent:
            self.missing += [
                f"time {t:g}s (the pass ended before every frame was seen)" for t in self._unsent
            ]
        self._unsent = []
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

    def finish(self, seen: Sequence[int] | None, rate: Fraction) -> list[Image]:
        if len(self.got) != len(self.expected):
            raise FastPathRejected(f"ffmpeg gave {len(self.got)} of the {len(self.expected)} frames planned")
        return []

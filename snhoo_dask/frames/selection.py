"""Which frames to take from a video, and how to make ffmpeg take only those.

A ``Selection`` is what the user asked for (parsed from the command line or the web
form); its ``kind`` is one ``Mode`` object, the one place a mode's rules live: how its
option is parsed, how it is described, the ffmpeg expression and picker of the plain
pass (``plans.plan``), how many frames it takes, and which frames it takes from a packet
table (the fast paths, ``packets``).  Adding a mode is one class here and one line in
``MODE_LIST``.  Every image is named by ffmpeg's own log of what it decoded
(``frame_log``); that is the definition of a frame's identity every path follows:

    frame k is the k-th picture ffmpeg's decoder presents for the video stream, after
    edit lists, in presentation order, each decoded picture once (passthrough timing:
    no duplicates, no drops); its time is its presentation time minus the first one's.

``--every N`` takes k = 0, N, 2N, ...; ``--frames`` those k; ``--times T`` the frame shown
at T (the last one whose time is at or before T); ``--fps R`` the first frame of each
1/R-second interval of time; ``--keyframes`` the frames the decoder marks as key frames.
A fast path (``thinning``: fewer packets decoded; ``pieces``) names its images by the same
identity and proves it on every image, or gives way to the plain plan (``FastPathRejected``).
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol

from ..errors import UsageError
from .pickers import (
    NEAR_TIME,
    TIME_TOLERANCE,
    Picker,
    TakeAll,
    TakeIndices,
    TakeTimes,
    frames_past_end,
    time_past_end,
)

# ffmpeg's scene score (0-1) above which a frame starts a new shot.  0.3 finds hard cuts
# between different shots while camera motion inside a shot stays well below it.
DEFAULT_SCENE_THRESHOLD = 0.3
# Bound on the select expression ffmpeg has to parse for one pass; past it, ffmpeg keeps
# a range around the frames and Python takes them out of it.  ffmpeg's expression parser
# refuses a sum of more terms than about 100 ("Cannot allocate memory": its nesting limit;
# 98 for a fed pass's frame numbers, measured with ffmpeg 5.1): well below that.
MAX_TERMS_PER_PASS = 64
MAX_REQUESTED = 100_000
# Frame numbers and rates past these are no video's (a 1000 fps video lasting 30 years).
MAX_FRAME_NUMBER = 10**12
MAX_RATE = 1_000_000
MAX_DIGITS = 15  # a whole number typed as text: far above any frame count


class SelectionError(UsageError, ValueError):
    """A frame specification the user typed is not valid; the message says why."""


def _ordinal(n: int) -> str:
    """2nd, 3rd, 11th, 21st: as the summary line and the records say it."""
    suffix = "th" if n % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


@dataclass(frozen=True)
class Selection:
    mode: str = "all"
    every: int | None = None
    fps: Fraction | None = None
    frames: tuple[int, ...] = ()
    times: tuple[float, ...] = ()
    scene_threshold: float | None = None

    @property
    def kind(self) -> Mode:
        return MODE_BY_NAME[self.mode]

    def describe(self) -> str:
        return self.kind.describe(self)

    def signature(self) -> dict:
        """What identifies this selection in a finished folder (for resume)."""
        sig: dict[str, Any] = {
            "mode": self.mode,
            "every": self.every,
            "fps": str(self.fps) if self.fps is not None else None,
            "frames": list(self.frames),
            "times": list(self.times),
        }
        if self.mode == "scenes":  # only then: older outputs keep their signature
            sig["scene_threshold"] = self.scene_threshold
        return sig


class FrameTable(Protocol):
    """What a mode reads of a fast plan's packet table (``table.PacketTable``, which has
    this shape): stated here, below the packets layer that makes the table."""

    def __len__(self) -> int: ...  # packets

    @property
    def times_us(self) -> Sequence[int]: ...  # frame k's time in microseconds from the first

    @property
    def numbers(self) -> Sequence[int]: ...  # each packet's frame number, in decode order

    @property
    def key(self) -> Sequence[int]: ...  # each packet's key flag (0 or 1), in decode order

    @property
    def recovery(self) -> bool: ...  # recovery points were seen: the decoder marks more key frames

    @property
    def eof(self) -> bool: ...  # the table reaches the end of the file


Wanted = tuple[list[int], list[str]]  # frame numbers to take, requested frames not there


class Mode:
    """One way of choosing frames.  Subclasses say what differs; the defaults are a mode
    that looks at every frame (all frames)."""

    name = "all"  # the option's name on the command line (--fps) and in the web's JSON
    label = "All frames"  # the web form's words for it
    streaming = True  # decodes every frame in one stream: --dedup may thin it out
    exact = False  # names its frames one by one (the plain pass may end early)
    # Pieces of a long video can each take their share without the frames before them
    # (scenes and --dedup compare each frame with the one before; exact frames are few).
    splittable = True
    scored = False  # its frames carry ffmpeg's scene score
    whole_video = True  # a fast plan for it looks at the whole video (truncation checked)

    takes_value = False  # its option takes a value (the web form's box must hold one)

    def __init_subclass__(cls, name: str = "", label: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.name = name or cls.name
        cls.label = label or cls.label

    def arguments(self, text: str) -> dict[str, Any]:
        """``parse_selection``'s arguments for this mode from one typed value (the web form's
        box); the default mode takes none."""
        return {self.name: _needs(self.name, text)} if self.takes_value else {}

    def describe(self, sel: Selection) -> str:
        return "all frames"

    def plain(self, sel: Selection) -> tuple[str | None, Picker]:
        """The plain pass's ffmpeg ``select`` expression (None: every picture) and picker."""
        return None, TakeAll()

    def count(self, sel: Selection, rate: Fraction, frames: int) -> int:
        """How many of a constant-rate video's first ``frames`` frames it takes."""
        return frames

    def slow_reason(self, sel: Selection) -> str | None:
        """Why no decode-less plan can save anything for it, or None if one may."""
        return f"{sel.describe()}: every frame is decoded anyway"

    def scan_limit(self, sel: Selection) -> int | None:
        """How many frames' packets a fast plan must read (None: all)."""
        return None

    def wanted(self, sel: Selection, table: FrameTable, span: range, rate: Fraction) -> Wanted | str:
        """The frame numbers in ``span`` it takes, by the plain pass's rules, read from the
        packet table; and the requested frames the video does not have.  Or why not."""
        return list(span), []

    def fed_select(self, sel: Selection, number: str, wanted: list[int]) -> str | None:
        """The ``select`` of a fed pass whose frame numbers ffmpeg computes as ``number``."""
        return index_expr(number, wanted) if wanted else None


class AllFrames(Mode):
    def fed_select(self, sel: Selection, number: str, wanted: list[int]) -> str | None:
        return None


class _Chosen(Mode):
    """A mode that names its frames one by one (exact frames, times)."""

    streaming, exact, splittable, whole_video = False, True, False, False
    takes_value = True

    def slow_reason(self, sel: Selection) -> str | None:
        return None


def _needs(name: str, text: str) -> str:
    text = text.strip()
    if not text:
        raise SelectionError(f"frame selection {name!r} needs a value")
    return text


class Every(Mode, name="every", label="Every Nth frame"):
    def arguments(self, text: str) -> dict[str, Any]:
        text = _needs(self.name, text)
        if not re.fullmatch(r"\d+", text):
            raise SelectionError(f"every wants a whole number of frames, not {text[:40]!r}")
        if len(text) > MAX_DIGITS:
            raise SelectionError(f"every wants a whole number of frames, not a number of {len(text)} digits")
        return {"every": int(text)}

    def describe(self, sel: Selection) -> str:
        every = sel.every or 1
        return "every frame" if every == 1 else f"every {_ordinal(every)} frame"

    def plain(self, sel: Selection) -> tuple[str | None, Picker]:
        return (f"not(mod(n,{sel.every}))" if sel.every and sel.every > 1 else None), TakeAll()

    def count(self, sel: Selection, rate: Fraction, frames: int) -> int:
        return -(-frames // (sel.every or 1)) if frames > 0 else 0  # exact past 2**53, unlike a float

    def slow_reason(self, sel: Selection) -> str | None:
        return super().slow_reason(sel) if (sel.every or 1) == 1 else None

    def wanted(self, sel: Selection, table: FrameTable, span: range, rate: Fraction) -> Wanted | str:
        every = sel.every or 1
        return [k for k in span if k % every == 0], []

    def fed_select(self, sel: Selection, number: str, wanted: list[int]) -> str | None:
        if (sel.every or 1) > 1:
            return f"not(mod({number},{sel.every}))"
        return index_expr(number, wanted) if wanted else None


class Fps(Mode, name="fps", label="Frames per second"):
    takes_value = True

    @staticmethod
    def rate(sel: Selection) -> Fraction:
        """The rate asked for (``parse_selection`` makes no fps selection without one)."""
        if sel.fps is None:
            raise SelectionError("fps wants a rate")
        return Fraction(sel.fps)

    def describe(self, sel: Selection) -> str:
        rate = float(self.rate(sel))
        return f"{rate:g} frame per second" if rate == 1 else f"{rate:g} frames per second"

    def plain(self, sel: Selection) -> tuple[str | None, Picker]:
        return fps_expr(self.rate(sel)), TakeAll()

    def count(self, sel: Selection, rate: Fraction, frames: int) -> int:
        if frames <= 0:
            return 0
        step = self.rate(sel) / rate
        return _fps_count(step.numerator, step.denominator, frames) if step < 1 else frames

    def slow_reason(self, sel: Selection) -> str | None:
        return None

    def wanted(self, sel: Selection, table: FrameTable, span: range, rate: Fraction) -> Wanted | str:
        fps = self.rate(sel)
        # The interval of the frame before the span's first decides whether that one is new.
        last = None if span.start == 0 else fps_interval(table.times_us[span.start - 1], fps)
        out = []
        for k in span:
            interval = fps_interval(table.times_us[k], fps)
            if last is None or interval > last:
                out.append(k)
            last = interval
        return out, []


class Frames(_Chosen, name="frames", label="Chosen frame numbers"):
    def describe(self, sel: Selection) -> str:
        return f"{len(sel.frames)} chosen frame(s)"

    def plain(self, sel: Selection) -> tuple[str | None, Picker]:
        return index_expr("n", list(sel.frames)), TakeIndices(list(sel.frames))

    def count(self, sel: Selection, rate: Fraction, frames: int) -> int:
        return sum(1 for k in sel.frames if k < frames)

    def scan_limit(self, sel: Selection) -> int | None:
        return max(sel.frames) + 1 if sel.frames else None

    def wanted(self, sel: Selection, table: FrameTable, span: range, rate: Fraction) -> Wanted | str:
        total = len(table)
        wanted = sorted(sel.frames)
        if not table.eof and wanted and wanted[-1] >= total:
            return "the packets were not read far enough"
        return [i for i in wanted if i < total], frames_past_end([i for i in wanted if i >= total], total)


class Times(_Chosen, name="times", label="Chosen times"):
    def describe(self, sel: Selection) -> str:
        return f"{len(sel.times)} chosen time(s)"

    def plain(self, sel: Selection) -> tuple[str | None, Picker]:
        windows: list[list[float]] = []
        for t in sorted(set(sel.times)):
            lo, hi = max(0.0, t - NEAR_TIME), t + NEAR_TIME
            if windows and lo <= windows[-1][1]:
                windows[-1][1] = hi
            else:
                windows.append([lo, hi])
        select = "+".join(f"between(t-start_t,{lo:.6f},{hi:.6f})" for lo, hi in windows[:MAX_TERMS_PER_PASS])
        if len(windows) > MAX_TERMS_PER_PASS:
            select = f"lte(t-start_t,{windows[-1][1]:.6f})"
        return select, TakeTimes(sel.times)

    def count(self, sel: Selection, rate: Fraction, frames: int) -> int:
        return len(sel.times)

    def wanted(self, sel: Selection, table: FrameTable, span: range, rate: Fraction) -> Wanted | str:
        """The last frame at or before each time."""
        times = table.times_us
        last = times[-1] / 1e6
        out, missing = set(), []
        for t in sorted(set(sel.times)):
            if t + TIME_TOLERANCE >= last + float(1 / rate):
                if not table.eof:
                    return "the packets were not read far enough"
                missing.append(time_past_end(t, last, rate))
                continue
            out.add(bisect_right(times, round((t + TIME_TOLERANCE) * 1e6)) - 1)
        return sorted(out), missing


class Keyframes(Mode, name="keyframes", label="Key frames only"):
    streaming, splittable = False, False

    def arguments(self, text: str) -> dict[str, Any]:
        return {"keyframes": True}

    def describe(self, sel: Selection) -> str:
        return "key frames"

    def plain(self, sel: Selection) -> tuple[str | None, Picker]:
        return "eq(key,1)", TakeAll()  # the decoder's own key flag, after decoding

    def slow_reason(self, sel: Selection) -> str | None:
        return None

    def wanted(self, sel: Selection, table: FrameTable, span: range, rate: Fraction) -> Wanted | str:
        if table.recovery:
            return "recovery points (open GOP or intra refresh): the decoder marks more key frames"
        return sorted(n for pos, n in enumerate(table.numbers) if table.key[pos] and n in span), []

    def fed_select(self, sel: Selection, number: str, wanted: list[int]) -> str | None:
        return None  # the fed packets are the key frames' own


class Scenes(Mode, name="scenes", label="First frame of each shot"):
    splittable, scored = False, True

    def arguments(self, text: str) -> dict[str, Any]:
        text = text.strip()
        try:
            threshold = float(text) if text else None
        except ValueError:
            raise SelectionError(
                f"scenes wants a scene threshold like 0.3 (or nothing), not {text[:40]!r}"
            ) from None
        return {"scenes": True, "scene_threshold": threshold}

    def describe(self, sel: Selection) -> str:
        return f"first frame of each shot (scene score above {sel.scene_threshold:g})"

    def plain(self, sel: Selection) -> tuple[str | None, Picker]:
        # Frame 0 opens the first shot; ffmpeg scores it 0 (nothing before it to differ from).
        return f"eq(n,0)+gt(scene,{sel.scene_threshold:g})", TakeAll()

    def wanted(self, sel: Selection, table: FrameTable, span: range, rate: Fraction) -> Wanted | str:
        return f"{sel.describe()}: chosen by ffmpeg itself"


MODE_LIST: tuple[Mode, ...] = (AllFrames(), Every(), Fps(), Frames(), Times(), Keyframes(), Scenes())
MODE_BY_NAME = {m.name: m for m in MODE_LIST}
MODES = tuple(m.name for m in MODE_LIST)
# Modes that decode every frame in one stream: the only ones --dedup can thin out.
STREAMING_MODES = tuple(m.name for m in MODE_LIST if m.streaming)


def index_expr(var: str, indices: list[int]) -> str:
    """A select expression true for exactly these frame numbers (``var``), as runs; past
    MAX_TERMS_PER_PASS runs, one run from the first to the last (the picker takes out the rest)."""
    runs: list[list[int]] = []
    for i in sorted(set(indices)):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    if len(runs) > MAX_TERMS_PER_PASS:
        runs = [[runs[0][0], runs[-1][1]]]
    return "+".join(f"eq({var},{a})" if a == b else f"between({var},{a},{b})" for a, b in runs)


def fps_expr(fps: Fraction, time: str = "(t-start_t)", before: str = "(prev_t-start_t)") -> str:
    """--fps R: a frame is the first of its 1/R interval of time when its interval is
    later than the frame before's (the first frame always)."""
    a, b = fps.numerator, fps.denominator

    # Times within TIME_TOLERANCE of a boundary are on it: Matroska stores milliseconds,
    # so frame 10 of a 30 fps video is at 0.333 s, not 1/3 s.
    def interval(t: str) -> str:
        return f"floor(({t}+{TIME_TOLERANCE})*{a}/{b})"

    return f"eq(n,0)+gt({interval(time)},{interval(before)})"


def fps_interval(t_us: int, fps: Fraction) -> int:
    """Which 1/R-second interval a frame at ``t_us`` microseconds from the first is in: the
    rule ``fps_expr`` gives ffmpeg, for the packet table (``thinning``)."""
    return math.floor((t_us / 1e6 + TIME_TOLERANCE) * fps.numerator / fps.denominator)


def count_selected(selection: Selection, rate: Fraction, frames: int) -> int:
    """How many of a constant-rate video's first ``frames`` frames a streaming selection
    (all, every, fps) takes."""
    if frames <= 0:
        return 0
    if selection.mode not in ("all", "every", "fps"):
        raise SelectionError(f"{selection.mode} is not a streaming selection of frames by number")
    return selection.kind.count(selection, rate, frames)


def _fps_count(a: int, b: int, total: int) -> int:
    """How many of ``total`` frames the fps select keeps (the k-th is frame ceil(k*b/a)).

    Counted, not listed: ``total`` comes from the container's header, which can claim
    a trillion seconds for a file of two, and the plan is made before ffmpeg runs."""
    # ceil(k*b/a) <= total-1  <=>  k <= (total-1)*a/b
    return (total - 1) * a // b + 1 if total > 0 else 0

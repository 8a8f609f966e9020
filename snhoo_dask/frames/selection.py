"""Which frames to take from a video, and how to make ffmpeg take only those.

A ``Selection`` is what the user asked for (parsed from the command line or the web
form).  ``plan()`` turns it, for one probed video, into the *plain* ``Pass``: ffmpeg
decodes the file itself, ``select`` keeps the frames asked for, and every image is named
by ffmpeg's own log of what it decoded (``frame_log``).  That is the definition of a
frame's identity every path follows:

    frame k is the k-th picture ffmpeg's decoder presents for the video stream, after
    edit lists, in presentation order, each decoded picture once (passthrough timing:
    no duplicates, no drops); its time is its presentation time minus the first one's.

``--every N`` takes k = 0, N, 2N, ...; ``--frames`` those k; ``--times T`` the frame shown
at T (the last one whose time is at or before T); ``--fps R`` the first frame of each
1/R-second interval of time; ``--keyframes`` the frames the decoder marks as key frames.
A fast path (``thinning``: fewer packets decoded; ``pieces``) names its images by the same
identity and proves it on every image, or gives way to this plan (``FastPathRejected``).
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, BinaryIO

from ..errors import FastPathError, UsageError
from ..video.probe import VideoInfo
from .filters import Dedup, Resize, dedup_filter, scale_filter
from .frame_log import FrameLog

MODES = ("all", "every", "fps", "frames", "times", "keyframes", "scenes")
# Modes that name their frames one by one.
EXACT_MODES = ("frames", "times")
# Modes that decode every frame in one stream: the only ones --dedup can thin out.
STREAMING_MODES = ("all", "every", "fps", "scenes")
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
# --times: a frame's time "at or before T" allows this much rounding (half a millisecond).
TIME_TOLERANCE = 0.0005
# --times on the plain path: ffmpeg keeps the frames this many seconds around each time,
# and the last one at or before it is taken.  A gap longer than this before a time (a
# variable-rate file) leaves that time missing, with the reason.
TIMES_WINDOW = 1.0


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

    def describe(self) -> str:
        if self.mode == "every":
            return "every frame" if self.every == 1 else f"every {_ordinal(self.every)} frame"
        if self.mode == "fps":
            return f"{float(self.fps):g} frames per second"
        if self.mode == "frames":
            return f"{len(self.frames)} chosen frame(s)"
        if self.mode == "times":
            return f"{len(self.times)} chosen time(s)"
        if self.mode == "keyframes":
            return "key frames"
        if self.mode == "scenes":
            return f"first frame of each shot (scene score above {self.scene_threshold:g})"
        return "all frames"

    def signature(self) -> dict:
        """What identifies this selection in a finished folder (for resume)."""
        sig = {
            "mode": self.mode,
            "every": self.every,
            "fps": str(self.fps) if self.fps is not None else None,
            "frames": list(self.frames),
            "times": list(self.times),
        }
        if self.mode == "scenes":  # only then: older outputs keep their signature
            sig["scene_threshold"] = self.scene_threshold
        return sig


def parse_selection(
    every: int | None = None,
    fps: str | None = None,
    frames: str | None = None,
    times: str | None = None,
    keyframes: bool = False,
    scenes: bool = False,
    scene_threshold: float | None = None,
) -> Selection:
    """Build a Selection from the command line's mutually exclusive options."""
    given = [
        name
        for name, value in (
            ("every", every),
            ("fps", fps),
            ("frames", frames),
            ("times", times),
            ("keyframes", keyframes or None),
            ("scenes", scenes or None),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise SelectionError.naming(
            "choose one frame selection, not " + " and ".join("{}" for _ in given), *given
        )
    if scene_threshold is not None and not scenes:
        raise SelectionError.naming("{} only applies with {}", "scene_threshold", "scenes")
    if scenes:
        t = DEFAULT_SCENE_THRESHOLD if scene_threshold is None else scene_threshold
        if not 0 < t < 1:
            raise SelectionError.naming(
                "{} must be between 0 and 1 (ffmpeg's scene score), not {t}", "scene_threshold", t=f"{t:g}"
            )
        return Selection("scenes", scene_threshold=t)
    if every is not None:
        if every < 1 or every > MAX_FRAME_NUMBER:
            raise SelectionError.naming(
                "{} must be 1 or more (at most {most}), not {value}",
                "every",
                most=MAX_FRAME_NUMBER,
                value=str(every)[:20],
            )
        return Selection("every", every=every)
    if fps is not None:
        return Selection("fps", fps=_parse_rate(fps))
    if frames is not None:
        return Selection("frames", frames=tuple(sorted(set(_parse_frames(frames)))))
    if times is not None:
        return Selection("times", times=tuple(sorted(set(_parse_times(times)))))
    if keyframes:
        return Selection("keyframes")
    return Selection("all")


def _parse_rate(text: str) -> Fraction:
    try:
        rate = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise SelectionError.naming(
            "{} wants a number like 2 or 0.5 or 30000/1001, not {text}", "fps", text=repr(text[:40])
        ) from None
    if rate <= 0:
        raise SelectionError.naming("{} must be above 0, not {text}", "fps", text=repr(text[:40]))
    if rate > MAX_RATE or rate < Fraction(1, MAX_RATE):
        raise SelectionError.naming(
            "{} must be between 1/{most} and {most}, not {text}", "fps", most=MAX_RATE, text=repr(text[:40])
        )
    return rate.limit_denominator(1_000_000)


def _split(text: str, option: str) -> list[str]:
    items = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in items):
        raise SelectionError.naming("{} wants a comma-separated list, got {text}", option, text=repr(text))
    if len(items) > MAX_REQUESTED:
        raise SelectionError.naming(
            "{} lists {n} values; at most {most} per job", option, n=len(items), most=MAX_REQUESTED
        )
    return items


def _parse_frames(text: str) -> list[int]:
    out = []
    for item in _split(text, "frames"):
        m = re.fullmatch(r"(\d{1,13})(?:-(\d{1,13}))?", item)
        if not m or max(int(g) for g in m.groups() if g) > MAX_FRAME_NUMBER:
            if re.fullmatch(r"\d+(?:-\d+)?", item):
                raise SelectionError.naming(
                    "{}: {item}... is past any video's length (at most {most})",
                    "frames",
                    item=item[:20],
                    most=MAX_FRAME_NUMBER,
                )
            raise SelectionError.naming(
                "{} wants frame numbers like 0,25,1000 or ranges like 10-20, not {item}",
                "frames",
                item=repr(item[:40]),
            )
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        if hi < lo:
            raise SelectionError.naming("{} range {item} runs backwards", "frames", item=repr(item))
        if hi - lo + 1 + len(out) > MAX_REQUESTED:
            raise SelectionError.naming("{} asks for more than {most} frames", "frames", most=MAX_REQUESTED)
        out.extend(range(lo, hi + 1))
    return out


def parse_time(item: str) -> float:
    """Seconds from '1.5', '62.25', '01:02.250' or '00:01:02.250'."""
    m = re.fullmatch(r"(?:(?:(\d{1,9}):)?(\d{1,9}):)?(\d{1,12}(?:\.\d{0,9})?|\.\d{1,9})", item.strip())
    if not m:
        raise SelectionError.naming(
            "{} wants times like 1.5 or 00:01:02.250, not {item}", "times", item=repr(item[:40])
        )
    hours, minutes, seconds = m.group(1), m.group(2), float(m.group(3))
    if (hours or minutes) and seconds >= 60:
        raise SelectionError.naming("{}: seconds must be below 60 in {item}", "times", item=repr(item))
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + seconds


def _parse_times(text: str) -> list[float]:
    return [parse_time(item) for item in _split(text, "times")]


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


class Naming:
    """Plain: an image is the picture at its place among those the decoder presented."""

    def ref(self, log: FrameLog, pts: int, score: float | None) -> FrameRef:
        return FrameRef(log.position(pts), round((pts - log.first_pts()) / 1e6, 6), score)


@dataclass
class Pass:
    """One ffmpeg run through scikit-video's reader, and which frame each image is."""

    select: str | None  # ffmpeg's select expression (None: every picture)
    picker: Picker
    naming: Naming = field(default_factory=Naming)
    input_options: dict[str, str] = field(default_factory=dict)
    # Filters first in the chain, applied explicitly where a fed stream lost what the
    # container said (its rotation).
    transforms: tuple[str, ...] = ()
    dedup: Dedup | None = None
    scale: str | None = None  # --max-side/--square
    # A fast pass: ffmpeg reads a NUT stream of some of the packets, written by this
    # into its stdin (thinning, pieces); None: it reads the file itself.
    feed: Callable[[BinaryIO], None] | None = None

    def chain(self, log: FrameLog, size: tuple[int, int]) -> str:
        """The -vf filter chain: log, turn, fix the size (a picture-size change mid-stream
        is scaled to the first), select, deduplicate, resize, log what is kept."""
        parts = [log.head(), *self.transforms, f"scale={size[0]}:{size[1]}"]
        if self.select:
            parts.append(f"select='{self.select}'")
        if self.dedup is not None:
            # Deduplicate before scaling, so what counts as "the same" does not depend on the size.
            parts += [log.candidates(), dedup_filter(self.dedup)]
        if self.scale:
            parts.append(self.scale)
        parts.append(log.kept())
        return ",".join(parts)


@dataclass
class Plan:
    passes: list[Pass]
    expected_count: int  # images a fast plan gives (a plain one: the header's frame count)
    streaming: bool  # the pass decodes the whole video: how far it got is checked
    missing: list[str] = field(default_factory=list)  # requested frames past the end
    out_size: tuple[int, int] = (0, 0)  # (width, height) of the written images
    scored: bool = False  # frames carry ffmpeg's scene score (frames.csv gets a column)
    claimed: int = 0  # source frames the container's header claims (see length.believable)
    path: str = "plain"  # which path made the images, and why (the record's ``path``)
    undecoded: int = 0  # frames a fast path never decoded
    # A fast plan read every packet: the time the video's pictures reach (the last one's
    # time plus a frame), for the truncation check its decoded pictures cannot make.
    reaches: float | None = None
    counted: int = 0  # and the frames its packets hold


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


def plan(
    selection: Selection, info: VideoInfo, resize: Resize | None = None, dedup: Dedup | None = None
) -> Plan:
    """The plain plan: ffmpeg decodes the whole file and keeps the selected frames, resized
    and deduplicated as asked (all inside ffmpeg); ffmpeg's log names every image."""
    if dedup is not None and selection.mode not in STREAMING_MODES:
        raise SelectionError(f"--dedup needs a streaming selection ({', '.join(STREAMING_MODES)})")
    mode = selection.mode
    picker: Picker = TakeAll()
    select = None
    if mode == "every" and selection.every and selection.every > 1:
        select = f"not(mod(n,{selection.every}))"
    elif mode == "fps":
        select = fps_expr(Fraction(selection.fps))
    elif mode == "keyframes":
        select = "eq(key,1)"
    elif mode == "scenes":
        # Frame 0 opens the first shot; ffmpeg scores it 0 (nothing before it to differ from).
        select = f"eq(n,0)+gt(scene,{selection.scene_threshold:g})"
    elif mode == "frames":
        picker = TakeIndices(list(selection.frames))
        select = index_expr("n", list(selection.frames))
    elif mode == "times":
        picker = TakeTimes(selection.times)
        windows = []
        for t in sorted(set(selection.times)):
            lo, hi = max(0.0, t - TIMES_WINDOW), t + TIMES_WINDOW
            if windows and lo <= windows[-1][1]:
                windows[-1][1] = hi
            else:
                windows.append([lo, hi])
        select = "+".join(f"between(t-start_t,{lo:.6f},{hi:.6f})" for lo, hi in windows[:MAX_TERMS_PER_PASS])
        if len(windows) > MAX_TERMS_PER_PASS:
            select = f"lte(t-start_t,{windows[-1][1]:.6f})"
    elif mode not in ("all", "every"):
        raise SelectionError(f"unknown frame selection {mode!r}")
    the_pass = Pass(
        select,
        picker,
        dedup=dedup,
        scale=scale_filter(resize, info.width, info.height),
    )
    return Plan(
        [the_pass],
        info.estimated_frames,
        streaming=mode in STREAMING_MODES or mode == "keyframes",
        out_size=resize.out_size(info.width, info.height) if resize else (info.width, info.height),
        scored=mode == "scenes",
        claimed=info.estimated_frames,
    )


def count_selected(selection: Selection, rate: Fraction, frames: int) -> int:
    """How many of a constant-rate video's first ``frames`` frames a streaming selection
    (all, every, fps) takes."""
    if frames <= 0:
        return 0
    if selection.mode == "every":
        return -(-frames // selection.every)  # exact for any length (a float loses count past 2**53)
    if selection.mode == "fps":
        step = Fraction(selection.fps) / rate
        if step < 1:
            return _fps_count(step.numerator, step.denominator, frames)
        return frames
    if selection.mode == "all":
        return frames
    raise SelectionError(f"{selection.mode} is not a streaming selection of frames by number")


def _fps_count(a: int, b: int, total: int) -> int:
    """How many of ``total`` frames the fps select keeps (the k-th is frame ceil(k*b/a)).

    Counted, not listed: ``total`` comes from the container's header, which can claim
    a trillion seconds for a file of two, and the plan is made before ffmpeg runs."""
    # ceil(k*b/a) <= total-1  <=>  k <= (total-1)*a/b
    return (total - 1) * a // b + 1 if total > 0 else 0

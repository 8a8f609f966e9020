"""Which frames to take from a video, and how to make ffmpeg take only those.

A ``Selection`` is what the user asked for (parsed from the command line or the web
form).  ``plan()`` turns it, for one probed video, into ``Pass``es: ffmpeg input and
output options for one scikit-video reader each, plus the source frame index and
timestamp of every image that reader will yield.  Selection always happens inside
ffmpeg (select filter, ``-skip_frame nokey``, input seeking); Python never decodes a
frame only to drop it.

Frame indices and timestamps assume a constant frame rate (index = time x rate),
which is what cameras and screen recorders write; for variable-rate files they are
nominal.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import BinaryIO

from .filters import Dedup, Resize, dedup_filter, scale_filter
from .frame_log import FrameLog
from .probe import KeyFrame, VideoInfo

MODES = ("all", "every", "fps", "frames", "times", "keyframes", "scenes")
# Modes that seek to each requested frame.
SEEKING_MODES = ("frames", "times")
# Modes that decode every frame in one stream: the only ones --dedup can thin out.
STREAMING_MODES = ("all", "every", "fps", "scenes")
# ffmpeg's scene score (0-1) above which a frame starts a new shot.  0.3 finds hard cuts
# between different shots while camera motion inside a shot stays well below it.
DEFAULT_SCENE_THRESHOLD = 0.3
# Requested frames closer than this many seconds are decoded in one pass instead of
# seeking again: a seek lands on the previous key frame and decodes forward anyway.
_CLUSTER_SECONDS = 2.0
# Bound on the select expression ffmpeg has to parse for one pass.
MAX_TERMS_PER_PASS = 200
# Seeks joined into one ffmpeg run (one input each): one process start instead of one
# per seek, and few enough open demuxers to stay small.
_MAX_SEEKS_PER_PASS = 32
MAX_REQUESTED = 100_000


class SelectionError(ValueError):
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
            ("--every", every),
            ("--fps", fps),
            ("--frames", frames),
            ("--times", times),
            ("--keyframes", keyframes or None),
            ("--scenes", scenes or None),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise SelectionError(f"choose one frame selection, not {' and '.join(given)}")
    if scene_threshold is not None and not scenes:
        raise SelectionError("--scene-threshold only applies with --scenes")
    if scenes:
        t = DEFAULT_SCENE_THRESHOLD if scene_threshold is None else scene_threshold
        if not 0 < t < 1:
            raise SelectionError(
                f"--scene-threshold must be between 0 and 1 (ffmpeg's scene score), not {t:g}"
            )
        return Selection("scenes", scene_threshold=t)
    if every is not None:
        if every < 1:
            raise SelectionError(f"--every must be 1 or more, not {every}")
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
        raise SelectionError(f"--fps wants a number like 2 or 0.5 or 30000/1001, not {text!r}") from None
    if rate <= 0:
        raise SelectionError(f"--fps must be above 0, not {text!r}")
    return rate.limit_denominator(1_000_000)


def _split(text: str, option: str) -> list[str]:
    items = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in items):
        raise SelectionError(f"{option} wants a comma-separated list, got {text!r}")
    if len(items) > MAX_REQUESTED:
        raise SelectionError(f"{option} lists {len(items)} values; at most {MAX_REQUESTED} per job")
    return items


def _parse_frames(text: str) -> list[int]:
    out = []
    for item in _split(text, "--frames"):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", item)
        if not m:
            raise SelectionError(
                f"--frames wants frame numbers like 0,25,1000 or ranges like 10-20, not {item!r}"
            )
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        if hi < lo:
            raise SelectionError(f"--frames range {item!r} runs backwards")
        if hi - lo + 1 + len(out) > MAX_REQUESTED:
            raise SelectionError(f"--frames asks for more than {MAX_REQUESTED} frames")
        out.extend(range(lo, hi + 1))
    return out


def parse_time(item: str) -> float:
    """Seconds from '1.5', '62.25', '01:02.250' or '00:01:02.250'."""
    m = re.fullmatch(r"(?:(?:(\d+):)?(\d+):)?(\d+(?:\.\d*)?|\.\d+)", item.strip())
    if not m:
        raise SelectionError(f"--times wants times like 1.5 or 00:01:02.250, not {item!r}")
    hours, minutes, seconds = m.group(1), m.group(2), float(m.group(3))
    if (hours or minutes) and seconds >= 60:
        raise SelectionError(f"--times: seconds must be below 60 in {item!r}")
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + seconds


def _parse_times(text: str) -> list[float]:
    return [parse_time(item) for item in _split(text, "--times")]


@dataclass(frozen=True)
class FrameRef:
    index: int
    timestamp: float
    score: float | None = None  # ffmpeg's scene score, for --scenes


@dataclass
class Pass:
    """One ffmpeg run through scikit-video's reader, and what each output frame is."""

    input_options: dict[str, str]
    output_options: dict[str, str]
    # For a seek pass: exactly the frames it yields, in order.  For a streaming pass:
    # None, and ``label`` names the k-th output frame.
    expected: list[FrameRef] | None = None
    label: Callable[[int], FrameRef] | None = None
    # Scenes and dedup: the -vf chain, built around the FrameLog that names each output
    # frame (see frame_log); ``opened()`` creates the log and fills in -vf and ``label``.
    chain: Callable[[FrameLog], str] | None = None
    log: FrameLog | None = None
    dedup: bool = False
    # Several seeks in one ffmpeg: the file is opened once per entry, each entry's options
    # added to ``input_options`` for that input; ``output_options`` then has the
    # ``-filter_complex`` that picks each input's frames and joins them in order, instead of -vf.
    inputs: list[dict[str, str]] | None = None
    # A seek pass: the frame its input starts at (a key frame, or its first frame).
    start: int | None = None
    # A thinned pass (see thinning): ffmpeg reads a NUT stream of only the packets worth
    # decoding from its stdin, which this writes; None: it reads the file itself.
    feed: Callable[[BinaryIO], None] | None = None

    def ref(self, k: int) -> FrameRef:
        if self.expected is not None:
            return self.expected[k]
        assert self.label is not None
        return self.label(k)

    @contextmanager
    def opened(self, rate: Fraction) -> Iterator[Pass]:
        """This pass ready to run: a logged pass gets its log files for the run's length."""
        if self.chain is None:
            yield self
            return
        log = FrameLog(rate)
        try:
            yield replace(
                self,
                output_options={**self.output_options, "-vf": self.chain(log)},
                label=lambda k: FrameRef(*log.ref(k)),
                chain=None,
                log=log,
            )
        finally:
            log.close()

    def decoded(self, got: int) -> int:
        """Source frames ffmpeg decoded in this pass (once it ended); else the images got."""
        return self.log.count("seen") if self.log else got

    def dropped(self, got: int) -> int:
        """Frames --dedup dropped in this pass (once it ended)."""
        return max(0, self.log.count("cand") - got) if self.log and self.dedup else 0


@dataclass
class Plan:
    passes: list[Pass]
    expected_count: int  # images (logged plans: decoded frames) if the file is intact
    streaming: bool  # True when the count is an estimate from the container
    missing: list[str] = field(default_factory=list)  # requested frames past the end
    out_size: tuple[int, int] | None = None  # (width, height) of the written images
    scored: bool = False  # frames carry ffmpeg's scene score (frames.csv gets a column)
    claimed: int = 0  # source frames the container's header claims (see length.believable)


def _select(expr: str) -> dict[str, str]:
    # passthrough: never duplicate or drop frames to fit an output rate.
    return {"-vf": f"select='{expr}'", "-vsync": "0"}


def _at(index: int, rate: Fraction) -> FrameRef:
    return FrameRef(index, round(float(index / rate), 6))


def plan(
    selection: Selection,
    info: VideoInfo,
    keyframe_times: list[float] | None = None,
    resize: Resize | None = None,
    dedup: Dedup | None = None,
    key_frames: dict[int, KeyFrame] | None = None,
    frame_number: str = "n",
) -> Plan:
    """The ffmpeg passes that produce exactly the selected frames of this video, resized
    and deduplicated as asked (both inside ffmpeg).

    ``keyframe_times`` is what ``--keyframes`` takes; ``key_frames`` the key frame to seek
    to for frames that ``seek_targets`` names (both from ``probe``).  ``frame_number`` is
    how ``--every``/``--fps`` name a frame to ffmpeg's select: ``n``, or for a thinned
    pass (not every frame decoded) its number from its time."""
    if dedup is not None and selection.mode not in STREAMING_MODES:
        raise SelectionError(f"--dedup needs a streaming selection ({', '.join(STREAMING_MODES)})")
    scale = scale_filter(resize, info.width, info.height)
    if dedup is not None or selection.mode == "scenes":
        result = _logged_plan(selection, info, scale, dedup)
    else:
        result = _plan(selection, info, keyframe_times, key_frames, frame_number)
        if scale:
            result.passes = [_scaled(p, scale) for p in result.passes]
    out_w, out_h = resize.out_size(info.width, info.height) if resize else (info.width, info.height)
    result.out_size = (out_w, out_h)
    result.claimed = info.estimated_frames
    if scale:
        # The reader sizes its frame buffer from -s (scikit-video's contract), and ffmpeg
        # checks the filters produced exactly that.
        for p in result.passes:
            p.output_options["-s"] = f"{out_w}x{out_h}"
    return result


def _scaled(p: Pass, scale: str) -> Pass:
    vf = p.output_options.get("-vf")
    return replace(p, output_options={**p.output_options, "-vf": f"{vf},{scale}" if vf else scale})


def _select_expr(selection: Selection, rate: Fraction) -> str | None:
    """The select expression of a streaming mode (None: every frame)."""
    if selection.mode == "every":
        return f"not(mod(n,{selection.every}))"
    if selection.mode == "fps":
        step = Fraction(selection.fps) / rate
        if step >= 1:
            return None
        return f"gt(floor(n*{step.numerator}/{step.denominator}),floor((n-1)*{step.numerator}/{step.denominator}))"
    if selection.mode == "scenes":
        # Frame 0 opens the first shot; ffmpeg scores it 0 (nothing before it to differ from).
        return f"eq(n,0)+gt(scene,{selection.scene_threshold:g})"
    return None


def _logged_plan(selection: Selection, info: VideoInfo, scale: str | None, dedup: Dedup | None) -> Plan:
    """One streaming pass whose output frames ffmpeg names itself (scenes, dedup)."""
    expr = _select_expr(selection, info.frame_rate)

    def chain(log: FrameLog) -> str:
        parts = [log.number()]
        if expr:
            parts.append(f"select='{expr}'")
        if dedup is not None:
            # Deduplicate before scaling, so what counts as "the same" does not depend on the size.
            parts += [log.candidates(), dedup_filter(dedup)]
        if scale:
            parts.append(scale)
        parts.append(log.kept())
        return ",".join(parts)

    # The count of *decoded* frames is what the truncation check compares (Pass.decoded).
    the_pass = Pass({}, {"-vsync": "0"}, chain=chain, dedup=dedup is not None)
    return Plan([the_pass], info.estimated_frames, True, scored=selection.mode == "scenes")


def _plan(
    selection: Selection,
    info: VideoInfo,
    keyframe_times: list[float] | None,
    key_frames: dict[int, KeyFrame] | None = None,
    n: str = "n",
) -> Plan:
    rate = info.frame_rate
    total = info.estimated_frames
    mode = selection.mode
    if mode == "all":
        return Plan([Pass({}, {}, label=lambda k: _at(k, rate))], total, True)
    if mode == "every":
        every = selection.every
        return Plan(
            [Pass({}, _select(f"not(mod({n},{every}))"), label=lambda k: _at(k * every, rate))],
            count_selected(selection, rate, total),
            True,
        )
    if mode == "fps":
        # Take the first frame of each 1/R interval: frame n is new when floor(n*R/F) steps.
        step = Fraction(selection.fps) / rate
        a, b = step.numerator, step.denominator
        if step >= 1:
            return _plan(Selection("all"), info, None)
        return Plan(
            [
                Pass(
                    {},
                    _select(f"gt(floor({n}*{a}/{b}),floor(({n}-1)*{a}/{b}))"),
                    label=lambda k: _at(-((-k * b) // a), rate),
                )
            ],
            count_selected(selection, rate, total),
            True,
        )
    if mode == "keyframes":
        times = keyframe_times or []
        refs = [FrameRef(int(round(t * rate)), round(t, 6)) for t in times]
        return Plan([Pass({"-skip_frame": "nokey"}, {"-vsync": "0"}, expected=refs)], len(refs), False)
    if mode in SEEKING_MODES:
        indices, missing = requested(selection, info)
        if n != "n":  # a thinned stream of only what these frames need (thinning.py): no seeks
            # No -vframes: the stream ends at the last packet needed, and ffmpeg must read
            # it to its end (see extract.write_frames).
            out = _select("+".join(f"eq({n},{i})" for i in indices))
            return Plan(
                [Pass({}, out, expected=[_at(i, rate) for i in indices])], len(indices), False, missing
            )
        return Plan(_seek_passes(indices, rate, key_frames or {}), len(indices), False, missing)
    raise SelectionError(f"unknown frame selection {mode!r}")


def requested(selection: Selection, info: VideoInfo) -> tuple[list[int], list[str]]:
    """The frame indices a frames/times selection asks for inside this video, and the rest in words."""
    rate, total = info.frame_rate, info.estimated_frames
    if selection.mode == "frames":
        wanted = list(selection.frames)
        inside = [i for i in wanted if i < total]
        missing = [f"frame {i}" for i in wanted if i >= total]
        if missing:
            missing = [f"{m} (video has {total} frames)" for m in missing[:20]] + (
                [f"and {len(missing) - 20} more"] if len(missing) > 20 else []
            )
        return inside, missing
    indices, missing = [], []
    for t in selection.times:
        i = int(math.floor(t * rate + 1e-6))
        if t > info.duration or i >= total:
            missing.append(f"time {t:g}s (video lasts {info.duration:g}s)")
        else:
            indices.append(i)
    return sorted(set(indices)), missing


def seek_targets(selection: Selection, info: VideoInfo) -> list[int]:
    """The frames a frames/times plan seeks to (each group's first, frame 0 aside): the
    ones to find the key frame before in the container (``probe.key_frames_before``)."""
    if selection.mode not in SEEKING_MODES:
        return []
    indices, _ = requested(selection, info)
    return [g[0] for g in _groups(indices, info.frame_rate) if g[0] > 0]


def count_selected(selection: Selection, rate: Fraction, frames: int) -> int:
    """How many of a video's first ``frames`` frames a streaming selection (all, every,
    fps) takes: the images of a video that long, or taken before a piece starting there."""
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


def _groups(indices: list[int], rate: Fraction) -> list[list[int]]:
    """Nearby frames together: a seek lands on the previous key frame and decodes forward anyway."""
    gap = max(1, int(_CLUSTER_SECONDS * rate))
    groups: list[list[int]] = []
    for i in indices:
        if groups and i - groups[-1][-1] <= gap and len(groups[-1]) < MAX_TERMS_PER_PASS:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _seek_passes(indices: list[int], rate: Fraction, key_frames: dict[int, KeyFrame]) -> list[Pass]:
    """Seek to each group of nearby frames and select them in ffmpeg.

    With the key frame before the group's first frame known (``key_frames``), the seek
    goes to that key frame exactly and the select counts from it.  Otherwise the seek is
    ffmpeg's accurate one, half a frame before the first frame (exact despite rounding).
    """
    passes = []
    for g in _groups(indices, rate):
        first = g[0]
        key = key_frames.get(first)
        inp: dict[str, str] = {}
        if key is not None:
            base = key.index
            if key.microseconds > 0:
                inp["-ss"] = _seconds(key.microseconds)
        else:
            base = first
            if first > 0:
                inp["-ss"] = f"{max(0.0, (first - 0.5) / rate):.6f}"
        out: dict[str, str] = {}
        if len(g) > 1 or base != first:
            out.update(_select("+".join(f"eq(n,{i - base})" for i in g)))
        out["-vframes"] = str(len(g))
        passes.append(Pass(inp, out, expected=[_at(i, rate) for i in g], start=base))
    return passes


def _seconds(microseconds: int) -> str:
    """Exactly this many microseconds, as ffmpeg parses a time (no float rounding)."""
    return f"{microseconds // 1_000_000}.{microseconds % 1_000_000:06d}"


# "-s": the output size of a resized job, the same for every pass of a video.
_JOINABLE = {"-vf", "-vsync", "-vframes", "-s"}


def join_seeks(passes: list[Pass], rate: Fraction) -> list[Pass]:
    """The same frames in fewer ffmpeg runs: consecutive seek passes become one multi-input pass.

    Each seek pass becomes an input of its own (the file opened again, seeking to the
    group and reading no further than one frame past its last frame, ``-t``); its ``-vf``
    chain is kept for that input and ended after the group's frame count; a concat
    filter joins the inputs' frames in order.  One ffmpeg start (about 90 ms of CPU)
    instead of one per seek.  Passes with other output options are left as they are.
    """
    out: list[Pass] = []
    run: list[Pass] = []

    def flush() -> None:
        if len(run) > 1:
            out.append(_joined(run, rate))
        else:
            out.extend(run)
        run.clear()

    for p in passes:
        if p.expected and p.inputs is None and p.feed is None and set(p.output_options) <= _JOINABLE:
            run.append(p)
            if len(run) == _MAX_SEEKS_PER_PASS:
                flush()
        else:
            flush()
            out.append(p)
    flush()
    return out


def _joined(run: list[Pass], rate: Fraction) -> Pass:
    inputs, chains = [], []
    for k, p in enumerate(run):
        assert p.expected is not None
        # -t counts from where the input starts: no further than a frame past the last one.
        span = p.expected[-1].index - (p.start if p.start is not None else p.expected[0].index)
        inputs.append({**p.input_options, "-t": f"{(span + 1.5) / rate:.6f}"})
        vf = p.output_options.get("-vf")
        chains.append(f"[{k}:v:0]{vf + ',' if vf else ''}trim=end_frame={len(p.expected)}[s{k}]")
    joined = "".join(f"[s{k}]" for k in range(len(run)))
    expected = [r for p in run for r in p.expected or []]
    output = {
        "-filter_complex": ";".join(chains) + f";{joined}concat=n={len(run)}:v=1:a=0[v]",
        "-map": "[v]",
        "-vsync": "0",
        "-vframes": str(len(expected)),
    }
    if "-s" in run[0].output_options:  # the reader sizes its frames by it (a resized job)
        output["-s"] = run[0].output_options["-s"]
    return Pass({}, output, expected=expected, inputs=inputs)

"""The frame selection options as typed (``--every``, ``--fps``, ``--frames``, ``--times``,
``--keyframes``, ``--scenes``) made into one ``Selection``, or a ``SelectionError`` that says
what is wrong with them in one line."""

from __future__ import annotations

import re
from fractions import Fraction

from .selection import (
    DEFAULT_SCENE_THRESHOLD,
    MAX_FRAME_NUMBER,
    MAX_RATE,
    MAX_REQUESTED,
    Selection,
    SelectionError,
)


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
    out: list[int] = []
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

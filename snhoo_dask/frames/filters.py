"""Dataset-ready image filters: resizing and near-duplicate dropping, done inside ffmpeg.

``Resize`` (``--max-side N`` / ``--square N``) and ``Dedup`` (``--dedup``) describe
what the user asked for; ``scale_filter`` and ``dedup_filter`` turn them into ffmpeg
filter-graph text for one probed video.  The output size is computed here, in Python,
and passed to ffmpeg as exact numbers: the reader must know each frame's size before
ffmpeg sends it, and frames.csv and the manifest record it.

Scaling happens inside ffmpeg (before the frames are piped to Python), which is what
makes a resized run faster than a full-size one: fewer bytes to pipe and to encode.
"""

from __future__ import annotations

from dataclasses import dataclass

# mpdecimate's own defaults (8x8 blocks; hi/lo in sums of absolute differences per block).
from ..errors import UsageError

DEDUP_HI = 64 * 12
DEDUP_LO = 64 * 5
DEDUP_FRAC = 0.33
MAX_SIZE = 16384  # beyond any real picture; keeps ffmpeg from allocating absurd frames
# The smallest crop ffmpeg makes from every pixel format: 4:1:1 and 4:1:0 video (DV, old
# codecs) have chroma 4 pixels wide, and a --square below that failed inside ffmpeg.
MIN_SIZE = 4
# --max-pixels: ffmpeg decodes no picture above about 268 Mpx (its image size check), so
# this is beyond any video that can be read, and keeps the number an ordinary one.
MAX_PIXELS_LIMIT = 2**31
# mpdecimate's thresholds are sums over an 8x8 block of 8-bit differences: 64 * 255 at most.
DEDUP_MAX = 64 * 255


class FilterError(UsageError, ValueError):
    """A resize, dedup or packing option the user typed is not valid; the message says why
    and ``field`` names the web form's field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Resize:
    """``max_side``: longer side to ``size``, never enlarged.  ``square``: shorter side to
    ``size`` (enlarging if needed, so every image of a dataset has one shape), then a
    centre crop to size x size."""

    mode: str
    size: int

    def out_size(self, width: int, height: int) -> tuple[int, int]:
        """The written image's (width, height) for a source picture of this size."""
        n = self.size
        if self.mode == "square":
            return n, n
        longer = max(width, height)
        if longer <= n:
            return width, height
        if width >= height:
            return n, max(1, round(height * n / width))
        return max(1, round(width * n / height)), n

    def describe(self) -> str:
        return (
            f"longer side {self.size} px"
            if self.mode == "max_side"
            else f"{self.size}x{self.size} centre crop"
        )

    def signature(self) -> dict:
        return {"mode": self.mode, "size": self.size}


@dataclass(frozen=True)
class Dedup:
    """mpdecimate's thresholds: a frame is dropped when no 8x8 block differs from the last
    kept frame by more than ``hi``, and fewer than ``frac`` of the blocks differ by more
    than ``lo`` (sums of absolute differences over the block's 64 pixels)."""

    hi: int = DEDUP_HI
    lo: int = DEDUP_LO
    frac: float = DEDUP_FRAC

    def signature(self) -> dict:
        return {"hi": self.hi, "lo": self.lo, "frac": self.frac}


def parse_resize(max_side: int | None, square: int | None) -> Resize | None:
    """--max-side or --square (each within its bounds: ``options.check``), not both."""
    if max_side is not None and square is not None:
        raise FilterError.naming("choose {} or {}, not both", "max_side", "square", field="square")
    if max_side is not None:
        return Resize("max_side", max_side)
    if square is not None:
        return Resize("square", square)
    return None


def parse_dedup(
    dedup: bool, hi: int | None = None, lo: int | None = None, frac: float | None = None
) -> Dedup | None:
    """--dedup and its thresholds (each within its bounds: ``options.check``) as one Dedup."""
    given = [name for name, v in (("dedup_hi", hi), ("dedup_lo", lo), ("dedup_frac", frac)) if v is not None]
    if not dedup:
        if given:
            raise FilterError.naming("{} only applies with {}", given[0], "dedup", field="dedup")
        return None
    d = Dedup(
        DEDUP_HI if hi is None else hi, DEDUP_LO if lo is None else lo, DEDUP_FRAC if frac is None else frac
    )
    if d.lo > d.hi:
        raise FilterError.naming(
            "{} ({lo}) must not be above {} ({hi})", "dedup_lo", "dedup_hi", lo=d.lo, hi=d.hi
        )
    return d


def parse_pixels(text: str, option: str, field: str | None = None) -> int | None:
    """A size typed as text (a web form field): empty is None, else a whole number of pixels.
    Never an int() of thousands of digits: a number that long is refused by its length."""
    text = text.strip()
    if not text:
        return None
    label = option.lstrip("-").replace("-", " ").replace("_", " ")
    if not (text.isascii() and text.isdigit()):
        raise FilterError(f"{label} must be a whole number of pixels", field)
    if len(text) > 15:
        raise FilterError(
            f"{label} must be a whole number of pixels, not a number of {len(text)} digits", field
        )
    return int(text)


def scale_filter(resize: Resize | None, width: int, height: int) -> str | None:
    """ffmpeg filters that turn a width x height picture into the resized one, or None."""
    if resize is None:
        return None
    n = resize.size
    if resize.mode == "max_side":
        w, h = resize.out_size(width, height)
        if (w, h) == (width, height):
            return None
        # area: the right kernel for shrinking (each output pixel averages its source area).
        return f"scale={w}:{h}:flags=area"
    if width <= height:
        sw, sh = n, max(n, round(height * n / width))
    else:
        sw, sh = max(n, round(width * n / height)), n
    crop = f"crop={n}:{n}:{(sw - n) // 2}:{(sh - n) // 2}"
    if (sw, sh) == (width, height):
        return crop
    flags = "area" if sw <= width else "bicubic"
    return f"scale={sw}:{sh}:flags={flags},{crop}"


def dedup_filter(dedup: Dedup) -> str:
    # max=0: drop any number of duplicates in a row (a still stretch of any length is one frame).
    return f"mpdecimate=hi={dedup.hi}:lo={dedup.lo}:frac={dedup.frac:g}:max=0"

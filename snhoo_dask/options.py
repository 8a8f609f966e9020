"""Every option of a job, declared once.

Each field of ``Options`` is one option: its type (the annotation), its default, and, in
its ``Option`` metadata, its bounds or choices, its help text, the words a page uses for it
and which front ends take it.  The command line's options (``cli/commands.py``), the web's
JSON and form parsing and its form fields (``web/validate.py``, ``submit.html``),
``JobSpec`` (``jobs/spec.py``) and ``Settings``' defaults are all derived from here, so
adding an option is one field below plus the code that uses it.

``check`` is the one check of an option's type and bounds, for every front end; options
whose values need more than bounds (the selection, the dataset filters) are checked where
their meaning lives (``frames/selection.py``, ``frames/filters.py``), with the bounds
declared there once and named here.
"""

from __future__ import annotations

import math
import types
from dataclasses import MISSING, Field, dataclass, field, fields
from functools import cache
from typing import Any, Union, get_args, get_origin, get_type_hints

from .errors import UsageError
from .frames.filters import DEDUP_FRAC, DEDUP_HI, DEDUP_LO, DEDUP_MAX, MAX_PIXELS_LIMIT, MAX_SIZE, MIN_SIZE
from .frames.selection import DEFAULT_SCENE_THRESHOLD
from .output.formats import PACKS
from .output.shards import DEFAULT_SHARD_SIZE
from .output.writers import FORMATS
from .video.hwaccel import HWACCELS
from .video.probe import DEFAULT_MAX_PIXELS

STAGES = ("auto", "always", "never")  # copy to scratch: network filesystems only, every video, none
# Bounds far beyond any real job that keep the numbers ordinary ones: a thread's wait
# refuses a timeout past about 9e9 s, and a piece length multiplies a frame rate.
MAX_TIMEOUT = 86400  # a day without one frame: that disk is gone
MAX_SPLIT_SECONDS = 1_000_000
# Where the web form shows an option; "" for options the form does not show.
SECTIONS = ("output", "dataset", "advanced", "end")


class OptionError(UsageError, ValueError):
    """An option's value of the wrong type or out of its bounds; ``field`` names it."""


@dataclass(frozen=True)
class Option:
    """What the front ends need to know of one option, besides its type and default.

    ``low``/``high``: bounds of a number; ``unit``: what a number counts ("seconds",
    "pixels"), said in messages and labels; ``choices``: the values a text option takes.
    ``flags``: the command line's spelling (default ``--name-with-dashes``); ``switch``: a
    text option the command line gives as ``--flag/--no-flag``, meaning these two choices
    (neither: the default).  ``cli``/``web``: whether that front end takes it; ``section``:
    where the web form shows it ("" for not on the form: the selection has its own widget).
    ``choice_labels``: how the web form says each choice.  ``default_text``: the default said in help when the field's default is None (the
    library's own).  ``label``: the words a page uses; messages use ``name`` with spaces.
    """

    help: str
    label: str = ""
    low: float | None = None
    high: float | None = None
    unit: str = ""
    choices: tuple[str, ...] = ()
    choice_labels: tuple[str, ...] = ()  # how the web form says each choice
    flags: tuple[str, ...] = ()
    switch: tuple[str, str] | None = None
    cli: bool = True
    web: bool = True
    section: str = "output"
    default_text: str = ""
    web_name: str = ""  # the JSON key and form field, when not the field's name


def option(default: Any, help: str, **meta: Any) -> Any:
    """A dataclass field that is an option (see ``Option`` for ``meta``)."""
    return field(default=default, metadata={"option": Option(help=help, **meta)})


@dataclass(kw_only=True)
class Options:
    """What a user asks of how a job runs and what it writes, in the same words on every
    front end: ``JobSpec`` and the web's ``Submission`` both carry these fields.  ``None``
    for a number means the library's default (its ``default_text``)."""

    fmt: str = option(
        "jpg", "Image format.", label="Image format", choices=FORMATS, flags=("--format",), web_name="format"
    )
    quality: int = option(90, "JPEG quality.", label="JPEG quality", low=1, high=100)
    ext: str | None = option(
        None,
        "Video extensions to look for, comma-separated.",
        label="Video extensions",
        web_name="ext",
        default_text="the common video types",
    )
    overwrite: bool = option(
        False,
        "Redo videos whose output is already complete.",
        label="Redo videos that are already done (otherwise they are skipped)",
        section="end",
    )
    list_videos: bool = option(
        False,
        "List every video a run would take (new, skip or redo, and why) and process nothing: "
        "--dry-run without its cap of 20 videos.",
        flags=("--list",),
        # What the terminal prints, not what a job does: the web's job page lists every video.
        web=False,
        section="",
    )
    # The dataset options (settings.dataset_options).
    max_side: int | None = option(
        None,
        "Scale so the longer side is N pixels (never enlarged).",
        label="Longer side, pixels",
        low=MIN_SIZE,
        high=MAX_SIZE,
        unit="pixels",
        section="dataset",
    )
    square: int | None = option(
        None,
        "Scale the shorter side to N, then centre-crop to NxN.",
        label="Or square crop, pixels",
        low=MIN_SIZE,
        high=MAX_SIZE,
        unit="pixels",
        section="dataset",
    )
    dedup: bool = option(
        False,
        "Drop frames nearly identical to the last one kept.",
        label="Drop frames nearly identical to the last one kept (all, every, fps, scenes)",
        section="dataset",
    )
    dedup_hi: int | None = option(
        None,
        "--dedup: per-8x8-block difference that always keeps a frame.",
        label="Block difference that always keeps a frame",
        low=0,
        high=DEDUP_MAX,
        section="dataset",
        default_text=str(DEDUP_HI),
    )
    dedup_lo: int | None = option(
        None,
        "--dedup: per-block difference that counts as changed.",
        label="Block difference that counts as changed",
        low=0,
        high=DEDUP_MAX,
        section="dataset",
        default_text=str(DEDUP_LO),
    )
    dedup_frac: float | None = option(
        None,
        "--dedup: share of changed blocks that keeps a frame.",
        label="Share of changed blocks that keeps a frame",
        low=0,
        high=1,
        section="dataset",
        default_text=str(DEDUP_FRAC),
    )
    pack: str = option(
        "folder",
        "folder: a folder of images per video; tar: one WebDataset tar per video; shards: "
        "numbered WebDataset shards of --shard-size with keys unique in the job and a parquet index.",
        label="Output",
        choices=PACKS,
        choice_labels=(
            "a folder of images per video",
            "one WebDataset tar per video",
            "numbered WebDataset shards with a parquet index",
        ),
        section="dataset",
    )
    shard_size: str = option(
        DEFAULT_SHARD_SIZE,
        "--pack shards: close a shard once it reaches this size (500MB, 2GB, 1.5GiB).",
        label="Shard size (with shards)",
        section="dataset",
    )
    keep_partial: bool = option(
        False,
        "Keep the frames of a video that ends early (a cut-off copy): status partial, with "
        "how far it got and why, instead of failed with none.",
        label="Keep the frames of a video that ends early (status partial)",
        section="dataset",
    )
    # How the workers run a job.
    stage: str = option(
        "auto",
        "Copy each video to the worker's local scratch before decoding "
        "(default: only videos on a network filesystem such as NFS or SMB).",
        label="Copy to worker scratch first",
        choices=STAGES,
        choice_labels=("videos on a network filesystem", "every video", "never"),
        switch=("always", "never"),
        section="advanced",
    )
    timeout: float = option(
        120.0,
        "Fail a video when ffmpeg produces no frame for this many seconds.",
        label="Timeout, seconds",
        low=1,
        high=MAX_TIMEOUT,
        unit="seconds",
        section="advanced",
    )
    decode_all: bool = option(
        False,
        "Decode every frame even where --every/--fps could skip frames no one asked for and "
        "none depends on (same images, slower; to compare).",
        label="Decode every frame, even where frames no one asked for could be skipped (same images, slower)",
        section="advanced",
    )
    # Pieces shorter than 10 s cost more in process starts and packet reading than they save.
    split_seconds: float = option(
        10.0,
        "Cut a long video into pieces of at least this many seconds, extracted by several "
        "workers at once (same images, one folder); 0: one task per video.",
        label="Pieces of a long video, seconds (0: none)",
        low=0,
        high=MAX_SPLIT_SECONDS,
        unit="seconds",
        section="advanced",
    )
    hwaccel: str = option(
        "auto",
        "Decode on an NVIDIA GPU (NVDEC): auto on each worker that has one, cuda to try "
        "everywhere, none for never; a video the GPU fails is decoded again on the CPU.",
        label="GPU decoding",
        choices=HWACCELS,
        choice_labels=("where a worker has one", "try everywhere", "never"),
        section="advanced",
    )
    scratch: str | None = option(
        None,
        "Worker-local scratch folder.",
        default_text="$SNHOO_SCRATCH, else /tmp/snhoo-scratch",
        # A folder on every worker: a web user could make the workers write copies of videos
        # anywhere (web/validate.py refuses it with the reason).
        web=False,
        section="",
    )
    max_pixels: int | None = option(
        None,
        "Fail a video whose picture has more than N pixels, before decoding it.",
        label="Refuse pictures larger than, pixels",
        low=1,
        high=MAX_PIXELS_LIMIT,
        section="advanced",
        default_text=str(DEFAULT_MAX_PIXELS),
    )

    def options(self) -> dict[str, Any]:
        """These fields by name (to hand them on as they are: each value has its field's
        type, which one dict type cannot state per key)."""
        return {f.name: getattr(self, f.name) for f in fields(Options)}


# The frame selection: command-line options of their own; the web takes a mode and one
# value instead (frames/selection.py's modes), so ``web`` is off and the form has no field.
_SELECTION = dict(web=False, section="")


@dataclass(kw_only=True)
class Selected:
    """The frame selection as the command line gives it (at most one; ``parse_selection``)."""

    every: int | None = option(None, "Every Nth frame (0, N, 2N, ...).", **_SELECTION)
    fps: str | None = option(None, "R frames per second of video (e.g. 1, 0.5, 30000/1001).", **_SELECTION)
    frames: str | None = option(None, "Exact frame indices, e.g. 0,25,1000 or 100-110.", **_SELECTION)
    times: str | None = option(None, "Timestamps, e.g. 1.5,00:01:02.250.", **_SELECTION)
    keyframes: bool = option(False, "Only key frames (no full decode).", **_SELECTION)
    scenes: bool = option(False, "The first frame of every shot (ffmpeg's scene score).", **_SELECTION)
    scene_threshold: float | None = option(
        None,
        "Scene score (0-1) above which a frame starts a shot.",
        default_text=str(DEFAULT_SCENE_THRESHOLD),
        **_SELECTION,
    )


DEFAULTS = Options()


@dataclass(frozen=True)
class Declared:
    """One declared option: its field name, Python type, default and ``Option``."""

    name: str
    kind: type  # bool, int, float or str
    optional: bool  # None is a value (the library's default)
    default: Any
    meta: Option

    @property
    def flags(self) -> tuple[str, ...]:
        return self.meta.flags or ("--" + self.name.replace("_", "-"),)

    @property
    def web_name(self) -> str:
        return self.meta.web_name or self.name

    @property
    def label(self) -> str:
        return self.meta.label or self.name.replace("_", " ")

    def help_text(self) -> str:
        """The help with its choices and default, as ``--help`` shows it."""
        text = self.meta.help
        shown = self.meta.default_text or _num_or_text(self.default)
        if shown and not self.meta.switch:
            text += f"  [default: {shown}]"
        return text


def _num_or_text(value: object) -> str:
    if value is None or isinstance(value, bool):
        return ""
    return _num(value) if isinstance(value, float) else str(value)


def _kind(annotation: Any) -> tuple[type, bool]:
    args = get_args(annotation)
    if get_origin(annotation) in (Union, types.UnionType) and type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        return inner, True
    return annotation, False


@cache
def declared(cls: type = Options) -> tuple[Declared, ...]:
    """The options a dataclass declares (its fields with ``Option`` metadata), in order."""
    hints = get_type_hints(cls)
    found = []
    for f in fields(cls):
        meta = f.metadata.get("option")
        if meta is None:
            continue
        kind, optional = _kind(hints[f.name])
        found.append(Declared(f.name, kind, optional, _default(f), meta))
    return tuple(found)


def _default(f: Field) -> Any:
    return None if f.default is MISSING else f.default


def by_name() -> dict[str, Declared]:
    """Every option of a job by field name, selection included."""
    return {d.name: d for d in (*declared(Options), *declared(Selected))}


def _shown(value: object) -> str:
    """A user's value in a message: never thousands of digits or characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def shown_number(value: object) -> str:
    """A number for a message: a huge one (thousands of digits) is not quoted whole."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**15:
        return f"a number of about {int(abs(value).bit_length() * 0.30103) + 1} digits"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _number_words(d: Declared) -> str:
    unit = f" {d.meta.unit}" if d.meta.unit else ""
    if d.kind is int and d.meta.unit == "pixels":
        return f"from {_num(d.meta.low)} to {_num(d.meta.high)} pixels"
    if d.kind is int:
        return f"a whole number from {_num(d.meta.low)} to {_num(d.meta.high)}{unit}"
    if d.meta.unit == "seconds":
        return f"a number of seconds from {_num(d.meta.low)} to {_num(d.meta.high)}"
    return f"from {_num(d.meta.low)} to {_num(d.meta.high)}{unit}"


def _num(value: float | None) -> str:
    return "" if value is None else (str(int(value)) if float(value).is_integer() else f"{value:g}")


def type_words(d: Declared) -> str:
    """What a value of ``d`` is, for a message: "true or false", "a whole number", ..."""
    if d.kind is bool:
        return "true or false"
    if d.kind in (int, float) and d.meta.low is not None:
        return _number_words(d)
    if d.kind is int:
        return "a whole number" + (f" of {d.meta.unit}" if d.meta.unit else "")
    if d.kind is float:
        return "a number" + (f" of {d.meta.unit}" if d.meta.unit else "")
    return "a string"


def check(name: str, value: Any) -> Any:
    """``value`` for the option ``name`` if it has the option's type and lies within its
    bounds or choices; else an OptionError whose ``field`` is ``name``."""
    d = by_name()[name]
    if value is None and d.optional:
        return None
    if d.kind is bool:
        if not isinstance(value, bool):
            raise OptionError.naming("{} must be true or false", name)
        return value
    if d.kind is str:
        if not isinstance(value, str):
            raise OptionError.naming("{} must be a string", name)
        if d.meta.choices and value not in d.meta.choices:
            raise OptionError.naming(
                "{} must be one of {choices}, not {value}",
                name,
                choices=", ".join(d.meta.choices),
                value=_shown(value)[:60],
            )
        return value
    whole = d.kind is int
    if isinstance(value, bool) or not isinstance(value, int if whole else int | float):
        raise OptionError.naming("{} must be {words}", name, words=type_words(d))
    if d.meta.low is None and d.meta.high is None:
        return value
    try:
        number = value if whole else float(value)
    except OverflowError:  # a 4000-digit integer in JSON
        raise OptionError.naming(
            "{} must be {words}, not {value}", name, words=_number_words(d), value="a number too large"
        ) from None
    low = -math.inf if d.meta.low is None else d.meta.low
    high = math.inf if d.meta.high is None else d.meta.high
    if not ((whole or math.isfinite(number)) and low <= number <= high):
        raise OptionError.naming(
            "{} must be {words}, not {value}", name, words=_number_words(d), value=shown_number(number)
        )
    return number

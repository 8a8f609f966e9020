"""One job spec, and the one way it becomes a ready ``Job``.

``JobSpec`` is what a user asks for, in the job's own terms: the command line fills it from
its options (``cli/commands.py``), the web service from a form or JSON body
(``web/validate.py``).  ``build_job`` checks it and turns it into ``Settings`` and a ``Job``;
nothing else builds ``Settings`` for a job, so both sides take every option the same way.

The checks run in this order, cheapest first, and nothing is written until all of them
passed: the options (selection, format and quality, dataset options, extensions, staging,
decoder, timeout, pieces), the output folder kept apart from the roots, ``claim(out)``,
discovery of the videos, and last the creation of the output folder (not for a dry run).

Every refusal is a ``UsageError`` whose ``field`` is the JobSpec field at fault and whose
message each side words with its own names for the options (``errors.UsageError.naming``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields

from ..errors import JobError, UsageError
from ..frames.selection import parse_selection
from ..output.writers import FORMATS
from ..settings import DEFAULT_SPLIT_SECONDS, Settings, dataset_options, out_suffix
from ..video.hwaccel import HWACCELS
from .discover import parse_extensions
from .job import Job, new_run_id
from .planning import find_videos
from .prepare import check_apart, prepare_output

DEFAULT_TIMEOUT = 120.0
# Bounds far beyond any real job that keep the numbers ordinary ones: a thread's wait
# refuses a timeout past about 9e9 s, and a piece length multiplies a frame rate.
MAX_TIMEOUT = 86400  # a day without one frame: that disk is gone
MAX_SPLIT_SECONDS = 1_000_000
STAGES = ("auto", "always", "never")  # copy to scratch: network filesystems only, every video, none


@dataclass(kw_only=True)
class Options:
    """What a user asks of how a job runs and what it writes, in the same words on every
    front end: ``JobSpec`` and the web's ``Submission`` both carry these fields.  ``None``
    for a number means the library's default."""

    fmt: str = "jpg"
    quality: int = 90
    overwrite: bool = False
    stage: str = "auto"  # one of STAGES
    timeout: float = DEFAULT_TIMEOUT
    decode_all: bool = False
    split_seconds: float = DEFAULT_SPLIT_SECONDS
    hwaccel: str = "auto"  # one of video.hwaccel.HWACCELS
    # The dataset options (settings.dataset_options).
    max_pixels: int | None = None
    max_side: int | None = None
    square: int | None = None
    dedup: bool = False
    dedup_hi: int | None = None
    dedup_lo: int | None = None
    dedup_frac: float | None = None
    pack: str = "folder"

    def options(self) -> dict[str, object]:
        """These fields by name (to hand them on as they are)."""
        return {f.name: getattr(self, f.name) for f in fields(Options)}


@dataclass(kw_only=True)
class JobSpec(Options):
    """Everything a user can ask of a job, as given (checked by ``build_job``).

    The selection fields are ``parse_selection``'s: at most one of every, fps, frames,
    times, keyframes, scenes.
    """

    roots: tuple[str, ...]
    out: str
    every: int | None = None
    fps: str | None = None
    frames: str | None = None
    times: str | None = None
    keyframes: bool = False
    scenes: bool = False
    scene_threshold: float | None = None
    ext: str | None = None  # comma-separated; None: the common video types
    scratch: str | None = None  # a folder on each worker; None: $SNHOO_SCRATCH or the temp dir

    @classmethod
    def from_names(cls, values: Mapping[str, object]) -> JobSpec:
        """The spec from a mapping that names its fields (the command line's options; other
        names in it are not the spec's business)."""
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})


def _choice(value: object, choices: tuple[str, ...], name: str) -> str:
    if value not in choices:
        raise JobError.naming(
            "{} must be one of {choices}, not {value}",
            name,
            choices=", ".join(choices),
            value=repr(value)[:60],
        )
    return value  # type: ignore[return-value]


def _seconds(value: object, name: str, low: int, high: int) -> float:
    """A number of seconds from ``low`` to ``high``: never NaN, infinity, or a number too
    large to be a float (a 4000-digit integer in JSON)."""
    problem = "{} must be a number of seconds from {low} to {high}, not {value}"
    low, high = int(low), int(high)  # whole numbers, said as such
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise JobError.naming(problem, name, low=low, high=high, value=repr(value)[:40])
    try:
        seconds = float(value)
    except OverflowError:
        raise JobError.naming(problem, name, low=low, high=high, value="a number too large") from None
    if not (math.isfinite(seconds) and low <= seconds <= high):
        raise JobError.naming(problem, name, low=low, high=high, value=f"{seconds:g}")
    return seconds


def check_options(spec: JobSpec):
    """The options alone, before any folder is looked at: the ``Settings`` fields they make
    (all but out, run_id), the extensions, or a UsageError naming the field."""
    try:
        selection = parse_selection(
            spec.every, spec.fps, spec.frames, spec.times, spec.keyframes, spec.scenes, spec.scene_threshold
        )
        selection.describe()  # what records and pages show: a number too large for it fails here
    except (ArithmeticError, ValueError) as e:
        if isinstance(e, UsageError):
            raise
        # A number too long or too large to work with (fps 1e999 times a frame count): the
        # library's own words for it are Python's, so these are ours.
        given = next(
            (
                n
                for n in ("every", "fps", "frames", "times", "scene_threshold")
                if getattr(spec, n) is not None
            ),
            "every",
        )
        raise JobError.naming("{} holds a number too large to use", given) from None
    if spec.fmt not in FORMATS:
        raise JobError.naming(
            "{} must be one of {formats}, not {fmt}",
            "fmt",
            formats=", ".join(FORMATS),
            fmt=repr(spec.fmt)[:60],
        )
    if isinstance(spec.quality, bool) or not isinstance(spec.quality, int) or not 1 <= spec.quality <= 100:
        raise JobError.naming("{} must be a whole number from 1 to 100", "quality")
    try:
        dataset = dataset_options(
            selection,
            spec.fmt,
            spec.max_side,
            spec.square,
            spec.dedup,
            spec.dedup_hi,
            spec.dedup_lo,
            spec.dedup_frac,
            spec.pack,
            spec.max_pixels,
        )
    except (ArithmeticError, ValueError) as e:
        if isinstance(e, UsageError):
            raise
        raise JobError("a size or threshold is a number too large to use") from None
    extensions = parse_extensions(spec.ext)
    fields = dict(
        selection=selection,
        fmt=spec.fmt,
        quality=spec.quality,
        stage=_choice(spec.stage, STAGES, "stage"),
        scratch=spec.scratch,
        timeout=_seconds(spec.timeout, "timeout", 1, MAX_TIMEOUT),
        resize=dataset.resize,
        dedup=dataset.dedup,
        pack=dataset.pack,
        decode_all=_flag(spec.decode_all, "decode_all"),
        split_seconds=_seconds(spec.split_seconds, "split_seconds", 0, MAX_SPLIT_SECONDS),
        hwaccel=_choice(spec.hwaccel, HWACCELS, "hwaccel"),
        max_pixels=dataset.max_pixels,
    )
    return fields, extensions


def _flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise JobError.naming("{} must be true or false", name)
    return value


def _at(field: str, e: UsageError) -> UsageError:
    """``e`` with ``field`` as the one at fault, if it names none itself."""
    if e.field is None:
        e.field = field
    return e


def build_job(
    spec: JobSpec,
    *,
    confine: list[str] | None = None,
    dry_run: bool = False,
    claim: Callable[[str], None] | None = None,
) -> Job:
    """Check ``spec`` and return a Job ready to run, or raise a UsageError whose ``field``
    is the JobSpec field at fault (``roots``, ``out``, or an option's).

    ``confine``: folders discovery may not leave (the web service's allowed folders).
    ``dry_run``: the output folder is checked but not created (``check_apart``, not
    ``prepare_output``).  ``claim(out)``: called with the resolved output folder once every
    option passed and before the videos are looked for or the folder is created; it takes
    the folder for this job or raises (the web: two requests for one folder cannot both pass).
    """
    fields, extensions = check_options(spec)
    roots = list(spec.roots)
    try:
        out = check_apart(spec.out, roots)
    except UsageError as e:
        raise _at("out", e) from None
    if claim is not None:
        claim(out)
    try:
        found = find_videos(roots, out, extensions, confine=confine, suffix=out_suffix(fields["pack"]))
    except UsageError as e:
        raise _at("roots", e) from None
    if not dry_run:
        try:
            out = prepare_output(spec.out, roots)
        except UsageError as e:
            raise _at("out", e) from None
    settings = Settings(out=out, run_id=new_run_id(), **fields)
    return Job(found, settings, overwrite=spec.overwrite)

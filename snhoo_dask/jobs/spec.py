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

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields

from ..errors import JobError, UsageError
from ..frames.parsing import parse_selection
from ..fs.bounded import Stalled, watched
from ..options import Options, Selected, by_name, check
from ..output.folder import OutputFolder
from ..settings import Settings, dataset_options, out_suffix
from .discover import Discovery, parse_extensions
from .job import Job, new_run_id
from .planning import find_videos


@dataclass(kw_only=True)
class JobSpec(Selected, Options):
    """Everything a user can ask of a job, as given (checked by ``build_job``): the options
    (``options.Options``), the frame selection as the command line gives it
    (``options.Selected``: at most one of every, fps, frames, times, keyframes, scenes),
    the roots and the output folder."""

    roots: tuple[str, ...]
    out: str

    @classmethod
    def from_names(cls, values: Mapping[str, object]) -> JobSpec:
        """The spec from a mapping that names its fields (the command line's options; other
        names in it are not the spec's business)."""
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})  # type: ignore[arg-type]


def check_options(spec: JobSpec):
    """The options alone, before any folder is looked at: the ``Settings`` fields they make
    (all but out, run_id), the extensions, or a UsageError naming the field."""
    for name in by_name():
        check(name, getattr(spec, name))
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
    try:
        dataset = dataset_options(selection, spec)
    except (ArithmeticError, ValueError) as e:
        if isinstance(e, UsageError):
            raise
        raise JobError("a size or threshold is a number too large to use") from None
    extensions = parse_extensions(spec.ext)
    settings = dict(
        selection=selection,
        fmt=spec.fmt,
        quality=spec.quality,
        stage=spec.stage,
        scratch=spec.scratch,
        timeout=float(spec.timeout),
        resize=dataset.resize,
        dedup=dataset.dedup,
        pack=dataset.pack,
        shard_size=dataset.shard_size,
        decode_all=spec.decode_all,
        keep_partial=spec.keep_partial,
        split_seconds=float(spec.split_seconds),
        hwaccel=spec.hwaccel,
        max_pixels=dataset.max_pixels,
    )
    return settings, extensions


STALL_ENV, DEFAULT_STALL = "SNHOO_STALL_SECONDS", 30.0


def stall_seconds(env: Mapping[str, str] | None = None) -> float:
    """How long one read of the roots or the output folder may take before the job is
    refused as on a disk that hangs (``$SNHOO_STALL_SECONDS``, default 30)."""
    text = (os.environ if env is None else env).get(STALL_ENV) or ""
    try:
        value = float(text) if text else DEFAULT_STALL
        if not 0.1 <= value <= 86400:
            raise ValueError
    except ValueError:
        raise UsageError(f"${STALL_ENV} must be a number of seconds from 0.1 to 86400") from None
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
    new_or_ours: bool = False,
) -> Job:
    """Check ``spec`` and return a Job ready to run, or raise a UsageError whose ``field``
    is the JobSpec field at fault (``roots``, ``out``, or an option's).

    ``confine``: folders discovery may not leave (the web service's allowed folders).
    ``dry_run``: the output folder is checked but not created (``OutputFolder.check_apart``,
    not ``create``).  ``claim(out)``: called with the resolved output folder once every
    option passed and before the videos are looked for or the folder is created; it takes
    the folder for this job or raises (the web: two requests for one folder cannot both pass).
    ``new_or_ours``: the output folder must be new, empty or a run's output folder
    (``OutputFolder.check_new_or_ours``: the web, where the folder may be anyone's).
    """
    fields, extensions = check_options(spec)
    roots = list(spec.roots)

    def look() -> tuple[OutputFolder, Discovery]:
        try:
            folder = OutputFolder(spec.out)
            folder.check_apart(roots)
            if new_or_ours:
                folder.check_new_or_ours()
        except UsageError as e:
            raise _at("out", e) from None
        if claim is not None:
            claim(folder.path)
        try:
            found = find_videos(roots, folder, extensions, confine=confine, suffix=out_suffix(fields["pack"]))
        except UsageError as e:
            raise _at("roots", e) from None
        if not dry_run:
            try:
                folder.create()
            except UsageError as e:
                raise _at("out", e) from None
        return folder, found

    # A root on a disk that hangs would hang the caller in one stat, deaf to Ctrl-C: the
    # folders are read in a thread of their own, and one read that hangs ends the job.
    try:
        folder, found = watched(look, stall_seconds())
    except Stalled as e:
        error = JobError(str(e))
        error.field = "out" if e.where.startswith("the output") else "roots"
        raise error from None
    settings = Settings(out=folder.path, run_id=new_run_id(), **fields)
    return Job(found, settings, folder, overwrite=spec.overwrite)

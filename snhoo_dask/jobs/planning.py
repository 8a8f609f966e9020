"""Planning a job, before any task runs: which videos, and which are already done.

discover every video under the roots -> drop those whose finished output matches
this job's settings (resume).  Pure file-system work; no Dask here.
"""

from __future__ import annotations

from ..errors import JobError
from ..fs.bounded import beat
from ..model import PARTIAL, SKIPPED, Video, VideoRecord
from ..output.layout import Folding, OutputDir, previous_output, probe_folding_at
from ..settings import Settings, new_record
from .discover import DEFAULT_EXTENSIONS, Discovery, DiscoveryError, discover


def find_videos(
    roots: list[str],
    out: str | None,
    extensions: tuple[str, ...] = DEFAULT_EXTENSIONS,
    confine: list[str] | None = None,
    suffix: str = "",
) -> Discovery:
    """Every video under the roots; JobError if a root is unusable or none holds a video.

    ``confine``: folders the walk may not leave (links out of them are reported, not followed).
    ``suffix``: after each video's output name (``settings.out_suffix``); the names are
    checked apart with it.
    """
    if not roots:
        raise JobError("give at least one root folder")
    # Asked of the output disk itself (of the folder it will be made in, if it is not there yet).
    beat("the output folder", out or "")
    folding = probe_folding_at(out) if out else Folding()
    try:
        found = discover(roots, extensions, exclude=out, confine=confine, folding=folding, suffix=suffix)
    except DiscoveryError as e:
        raise JobError(str(e)) from None
    if not found.videos:
        where = ", ".join(roots)
        raise JobError(f"no videos found under {where} (looked for .{', .'.join(extensions)})")
    problem = name_clashes(found.videos, folding, out or "")
    if problem:
        raise JobError(problem)
    return found


def name_clashes(videos: list[Video], folding: Folding, out: str, shown: int = 3) -> str | None:
    """Why these videos cannot share the output folder ``out``, whose disk compares names as
    ``folding`` says: the outputs of two of them would be one name there (``Case.mp4`` and
    ``case.mp4`` on NTFS), or one's output the folder of another's.  None if they can."""
    if not folding.folds:
        return None
    outputs: dict[str, list[Video]] = {}
    folders: dict[str, Video] = {}  # the folders the outputs go in, by key: a video below each
    for v in videos:
        outputs.setdefault(folding.path_key(v.out_rel), []).append(v)
        parts = v.out_rel.split("/")
        for i in range(1, len(parts)):
            folders.setdefault(folding.path_key("/".join(parts[:i])), v)
    groups = [vs for vs in outputs.values() if len(vs) > 1]
    groups += [[vs[0], folders[k]] for k, vs in outputs.items() if k in folders]
    if not groups:
        return None
    said = "; ".join(" and ".join(v.path for v in vs) for vs in groups[:shown])
    more = f" (and {len(groups) - shown} more)" if len(groups) > shown else ""
    return (
        f"the disk of the output folder {out} takes names that differ {folding.describe()} for one "
        f"name, so these videos would write one output: {said}{more}; rename them, or choose an "
        "output folder on a disk that tells them apart"
    )


def skip_record(video: Video, settings: Settings, out: OutputDir) -> tuple[VideoRecord | None, str | None]:
    """(a ``skipped`` record if this video's finished output matches these settings and was
    made from the file discovery found (same identity, not only the same name and size),
    else None; why an earlier output of it is redone, or None if there is none)."""
    source = video.ident.to_text() if video.ident else None
    previous, redo = previous_output(out, video.out_rel, settings.signature(), video.size, source)
    if previous is None:
        return None, redo
    if previous.status == PARTIAL:
        # Its frames stopped where the file ended: the file may be whole by now (a copy that
        # finished), and with the same file the same frames come out again.
        return None, "partial (it ended early): tried again"
    return new_record(video, settings).carry_over(previous).finish(SKIPPED), None


def split_done(
    videos: list[Video],
    settings: Settings,
    overwrite: bool,
    out: OutputDir,
    redone: dict[str, str] | None = None,
) -> tuple[list[VideoRecord], list[Video]]:
    """(records of videos already done, videos still to do).  ``redone``, if given, gets the
    videos to do whose earlier output is replaced: video path -> why."""
    if overwrite:
        return [], list(videos)
    skipped, todo = [], []
    for video in videos:
        record, redo = skip_record(video, settings, out)
        if record is None:
            todo.append(video)
            if redo and redone is not None:
                redone[video.path] = redo
        else:
            skipped.append(record)
    return skipped, todo

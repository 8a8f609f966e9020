"""Planning a job, before any task runs: which videos, and which are already done.

discover every video under the roots -> drop those whose finished output matches
this job's settings (resume).  Pure file-system work; no Dask here.
"""

from __future__ import annotations

from .discover import DEFAULT_EXTENSIONS, Discovery, DiscoveryError, Video, discover
from .errors import JobError
from .extract import new_record
from .layout import OutputDir, finished_record
from .record import SKIPPED, VideoRecord
from .settings import Settings


def find_videos(
    roots: list[str],
    out: str | None,
    extensions: tuple[str, ...] = DEFAULT_EXTENSIONS,
    confine: list[str] | None = None,
) -> Discovery:
    """Every video under the roots; JobError if a root is unusable or none holds a video.

    ``confine``: folders the walk may not leave (links out of them are reported, not followed).
    """
    if not roots:
        raise JobError("give at least one root folder")
    try:
        found = discover(roots, extensions, exclude=out, confine=confine)
    except DiscoveryError as e:
        raise JobError(str(e)) from None
    if not found.videos:
        where = ", ".join(roots)
        raise JobError(f"no videos found under {where} (looked for .{', .'.join(extensions)})")
    return found


def skip_record(video: Video, settings: Settings, out: OutputDir) -> VideoRecord | None:
    """A ``skipped`` record if this video's finished output matches these settings and was
    made from the file discovery found (same identity, not only the same name and size)."""
    source = video.ident.to_text() if video.ident else None
    previous = finished_record(out, video.out_rel, settings.signature(), video.size, source)
    if previous is None:
        return None
    record = new_record(video, settings)
    for key in (
        "frames",
        "codec",
        "width",
        "height",
        "fps",
        "duration",
        "missing",
        "worker",
        "out_width",
        "out_height",
        "dropped",
        "source",
    ):
        setattr(record, key, getattr(previous, key))
    return record.finish(SKIPPED)


def split_done(
    videos: list[Video], settings: Settings, overwrite: bool, out: OutputDir
) -> tuple[list[VideoRecord], list[Video]]:
    """(records of videos already done, videos still to do)."""
    if overwrite:
        return [], list(videos)
    skipped, todo = [], []
    for video in videos:
        record = skip_record(video, settings, out)
        if record is None:
            todo.append(video)
        else:
            skipped.append(record)
    return skipped, todo

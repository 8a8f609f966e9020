"""Planning a job, before any task runs: which videos, and which are already done.

discover every video under the roots -> drop those whose finished output matches
this job's settings (resume).  Pure file-system work; no Dask here.  With --pack shards,
the published shards say which videos are done (``plan_shards``), and ``shard_records``
feeds the one shard writer (``output.shards``) as each video's record arrives.

What a run would do, without running it (``--dry-run``, ``plan``): per video new, skip or
redo and why, and the files already known to fail.  The decision is resume's own
(``decide``, the call the run makes under its lock); the manifest only explains it: a video
with no finished output that an earlier run recorded as failed is redone *because* it
failed, one recorded as done is redone because its output is missing.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..errors import JobError
from ..model import FAILED, OK, PARTIAL, SKIPPED, WRITTEN, Video, VideoRecord
from ..output.folder import Folding, OutputDir, OutputFolder, previous_output
from ..output.manifest import latest_of
from ..output.shard_index import SHARDS_DIR, Shard, check_index, published, retire, write_index
from ..output.shards import ShardWriter
from ..settings import Settings, new_record
from .discover import DEFAULT_EXTENSIONS, Discovery, DiscoveryError, discover


def find_videos(
    roots: list[str],
    out: OutputFolder | None,
    extensions: tuple[str, ...] = DEFAULT_EXTENSIONS,
    confine: list[str] | None = None,
    suffix: str = "",
) -> Discovery:
    """Every video under the roots; JobError if a root is unusable, none holds a video, or
    the disk of ``out`` would take two of their output names for one.

    ``confine``: folders the walk may not leave (links out of them are reported, not followed).
    ``suffix``: after each video's output name (``settings.out_suffix``); the names are
    checked apart with it.
    """
    if not roots:
        raise JobError("give at least one root folder")
    # Asked of the output disk itself (of the folder it will be made in, if it is not there yet).
    folding = out.folding if out is not None else Folding()
    try:
        found = discover(
            roots,
            extensions,
            exclude=out.path if out is not None else None,
            confine=confine,
            folding=folding,
            suffix=suffix,
        )
    except DiscoveryError as e:
        raise JobError(str(e)) from None
    if not found.videos:
        where = ", ".join(roots)
        raise JobError(f"no videos found under {where} (looked for .{', .'.join(extensions)})")
    problem = out.clashes(found.videos) if out is not None else None
    if problem:
        raise JobError(problem)
    return found


# What a run does with a video, decided before any task runs (``decide``).
NEW, SKIP, REDO = "new", "skip", "redo"


@dataclass(frozen=True)
class Verdict:
    """What a run does with one video: ``SKIP`` (its finished output matches: ``record`` is
    the ``skipped`` record), ``REDO`` (an earlier output of it is replaced: ``why``) or
    ``NEW`` (nothing of ours is finished there)."""

    action: str
    why: str | None = None
    record: VideoRecord | None = None


def decide(video: Video, settings: Settings, out: OutputDir) -> Verdict:
    """Whether this video's finished output matches these settings and was made from the
    file discovery found (same identity, not only the same name and size).  The one
    decision of resume: the run (``split_done``) and the dry run both take it from here."""
    source = video.ident.to_text() if video.ident else None
    previous, redo = previous_output(out, video.out_rel, settings.signature(), video.size, source)
    if previous is None:
        return Verdict(REDO, redo) if redo else Verdict(NEW)
    if previous.status == PARTIAL:
        # Its frames stopped where the file ended: the file may be whole by now (a copy that
        # finished), and with the same file the same frames come out again.
        return Verdict(REDO, "partial (it ended early): tried again")
    return Verdict(SKIP, record=new_record(video, settings).carry_over(previous).finish(SKIPPED))


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
    return _split(videos, lambda video: decide(video, settings, out), redone)


def _split(
    videos: list[Video], verdict_of: Callable[[Video], Verdict], redone: dict[str, str] | None
) -> tuple[list[VideoRecord], list[Video]]:
    """(the skipped records, the videos to do) by each video's verdict; ``redone`` gets why
    of each one whose earlier output is replaced."""
    skipped, todo = [], []
    for video in videos:
        verdict = verdict_of(video)
        if verdict.record is not None:
            skipped.append(verdict.record)
            continue
        todo.append(video)
        if verdict.why and redone is not None:
            redone[video.path] = verdict.why
    return skipped, todo


# The failures that say the file itself cannot be read (worker/source.py, video/probe.py):
# the same file fails the same way again.
UNREADABLE = ("not a readable video", "the file is empty", "cannot read the video", "broken link")

EMPTY, UNREADABLE_BEFORE = "empty", "unreadable"


@dataclass(frozen=True)
class Planned:
    """One video as a run would take it: the verdict, why (for a redo), and what is known
    to be wrong with the file (``EMPTY``: 0 bytes; ``UNREADABLE_BEFORE``: the latest run
    could not read this same file, ``known`` says how)."""

    video: Video
    action: str
    why: str | None = None
    flag: str | None = None
    known: str | None = None


@dataclass
class Preview:
    """Every video's plan, in discovery order, and the counts a summary needs."""

    planned: list[Planned] = field(default_factory=list)
    bytes: int = 0
    roots: dict[str, list[int]] = field(default_factory=dict)  # root -> [videos, bytes]
    extensions: Counter = field(default_factory=Counter)
    actions: Counter = field(default_factory=Counter)
    whys: Counter = field(default_factory=Counter)  # the kind of a redo's reason -> videos
    flags: Counter = field(default_factory=Counter)
    manifest_problem: str | None = None

    def add(self, p: Planned, kind: str | None = None) -> None:
        v = p.video
        self.planned.append(p)
        self.bytes += v.size
        counts = self.roots.setdefault(v.root, [0, 0])
        counts[0] += 1
        counts[1] += v.size
        self.extensions[os.path.splitext(v.rel)[1].lower() or "(none)"] += 1
        self.actions[p.action] += 1
        if p.action == REDO and kind:
            self.whys[kind] += 1
        if p.flag:
            self.flags[p.flag] += 1

    def flagged(self, flag: str, first: int) -> list[Planned]:
        return [p for p in self.planned if p.flag == flag][:first]


def _same_file(rec: VideoRecord, video: Video) -> bool:
    if rec.source and video.ident is not None:
        return rec.source == video.ident.to_text()
    return rec.size == video.size


def _explained(
    verdict: Verdict, rec: VideoRecord | None, overwrite: bool
) -> tuple[str, str | None, str | None]:
    """(action, why, the kind of why a summary counts): the run's own verdict, its NEW told
    apart by what the manifest last said of the video."""
    if overwrite and verdict.action != NEW:
        # The run redoes everything without looking (split_done): an output there is replaced.
        return REDO, "--overwrite redoes it", "--overwrite redoes it"
    if verdict.action != NEW or rec is None:
        return verdict.action, verdict.why, verdict.why
    if rec.status == FAILED:
        return REDO, f"failed before: {rec.error or 'no reason recorded'}", "failed before"
    return REDO, f"output missing (recorded {rec.status} by run {rec.run})", "output missing"


def plan(videos: list[Video], settings: Settings, overwrite: bool = False) -> Preview:
    """What a run with ``settings`` would do with each of ``videos`` now."""
    preview = Preview()
    records: dict[tuple[str, str], VideoRecord] = {}
    out: OutputDir | None = None
    try:
        out = OutputDir(settings.out)
    except OSError:
        pass  # not there yet (a dry run makes nothing): every video is new
    if out is not None:
        try:
            records = latest_of(settings.out, {(v.root, v.rel) for v in videos})
        except OSError as e:
            preview.manifest_problem = f"manifest.jsonl could not be read: {e.strerror or e}"
    sharded = None
    if out is not None and settings.pack == "shards":
        sharded = shard_verdicts(videos, settings, out)[0]
    try:
        for video in videos:
            if sharded is not None:
                verdict = sharded[video.path]
            else:
                verdict = decide(video, settings, out) if out is not None else Verdict(NEW)
            rec = records.get((video.root, video.rel))
            action, why, kind = _explained(verdict, rec, overwrite)
            flag = known = None
            if video.size == 0:
                flag = EMPTY
            elif rec is not None and rec.status == FAILED and _same_file(rec, video):
                if (rec.error or "").startswith(UNREADABLE):
                    flag, known = UNREADABLE_BEFORE, rec.error
            preview.add(Planned(video, action, why, flag, known), kind)
    finally:
        if out is not None:
            out.close()
    return preview


def shard_verdicts(
    videos: list[Video], settings: Settings, out: OutputDir, overwrite: bool = False
) -> tuple[dict[str, Verdict], list[Shard]]:
    """--pack shards' ``decide``: each video's verdict by its path, from the published shards'
    stats, and the shards a run takes out of sight first (``plan_shards``).  A video in a
    shard, made with these settings from the same file, is skipped with its shard as ``out``;
    a shard holding a video done again goes whole, so the other videos in it are done again."""
    shards = published(out)
    held: dict[tuple[str, str], tuple[Shard, dict]] = {}
    for shard in shards:
        for entry in shard.videos:
            held[(str(entry.get("root_name")), str(entry.get("video")))] = (shard, entry)
    verdicts: dict[str, Verdict] = {}
    in_shard: dict[str, Shard] = {}
    for video in videos:
        found = held.get((video.root_name, video.rel))
        if found is None:
            verdicts[video.path] = Verdict(NEW)
            continue
        shard, entry = found
        why = _why_redo(video, settings, entry, overwrite)
        if why is None:
            try:
                previous = VideoRecord.from_dict(entry["record"])
            except (TypeError, ValueError, KeyError):
                why = "made by another version"
        if why is not None:
            verdicts[video.path] = Verdict(REDO, why)
            continue
        rec = (
            new_record(video, settings)
            .carry_over(previous)
            .finish(SKIPPED, out=f"{SHARDS_DIR}/{shard.names[0]}")
        )
        verdicts[video.path] = Verdict(SKIP, record=rec)
        in_shard[video.path] = shard
    job: dict[tuple[object, object], str] = {(v.root_name, v.rel): v.path for v in videos}

    def redone(entry: dict) -> bool:  # a video of this job the run does again
        path = job.get((entry.get("root_name"), entry.get("video")))
        return path is not None and verdicts.get(path, Verdict(NEW)).action == REDO

    stale = {s.number: s for s in shards for e in s.videos if redone(e)}
    for path, shard in in_shard.items():
        if shard.number in stale:
            verdicts[path] = Verdict(REDO, f"its shard {shard.names[0]} holds videos done again")
    return verdicts, list(stale.values())


def plan_shards(
    videos: list[Video],
    settings: Settings,
    overwrite: bool,
    out: OutputDir,
    redone: dict[str, str] | None = None,
) -> tuple[list[VideoRecord], list[Video]]:
    """``split_done`` for --pack shards: (records of videos a published shard holds, the
    videos still to do), after taking out of sight the shards of videos done again: no loader
    then sees a video's old samples beside its new ones.  Shards holding only videos outside
    this job stay as they are."""
    check_index(out)
    verdicts, stale = shard_verdicts(videos, settings, out, overwrite)
    retire(out, stale)
    write_index(out)
    return _split(videos, lambda video: verdicts[video.path], redone)


def _why_redo(video: Video, settings: Settings, entry: dict, overwrite: bool) -> str | None:
    if overwrite:
        return "--overwrite"
    if entry.get("signature") != settings.signature():
        return "made with other settings"
    record = entry.get("record") or {}
    source = video.ident.to_text() if video.ident else None
    if source and record.get("source") and record.get("source") != source:
        return "from a file that has changed since"
    if not source and record.get("size") != video.size:
        return "from a file that has changed since"
    if record.get("status") != OK:
        return "partial (it ended early): tried again"
    return None


@contextmanager
def shard_records(
    out: OutputDir, settings: Settings, todo: list[Video], record: Callable[[VideoRecord], None]
) -> Iterator[Callable[[VideoRecord], None]]:
    """A ``record`` for the tasks' results: a video with images goes into the open shard and
    is recorded once that shard is published; the last shard is published on the way out
    (also when the job is interrupted: its videos are finished)."""
    writer = ShardWriter(out, settings.shard_size, settings.signature(), settings.selection.kind.scored)
    by_name = {(v.root, v.rel): v for v in todo}

    def add(rec: VideoRecord) -> None:
        video = by_name.get((rec.root, rec.video))
        if rec.status not in WRITTEN or video is None:
            record(rec)
            return
        try:
            done = writer.add(video, rec)
        except OSError as e:
            reason = f"could not copy its images into a shard: {e.strerror or e}"
            record(new_record(video, settings).finish(FAILED, error=reason, frames=0))
            return
        for r in done:
            record(r)

    try:
        yield add
    finally:
        for r in writer.finish():
            record(r)

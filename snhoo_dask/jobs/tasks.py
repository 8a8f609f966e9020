"""How a job's videos become Dask tasks: one each, a long one cut into pieces, tiny ones batched.

    one task     ``extract_video``: most videos
    pieces       ``plan_split`` -> ``extract_piece`` x N -> ``join_pieces`` (split_video.py):
                 a video so long it would run alone on one core at the end of the job
    a batch      ``extract_batch``: videos so small that a task's own cost (the scheduler's
                 and the worker's bookkeeping) is a large part of each

Each ``Unit`` ends in one future whose result is its videos' records: the job waits on
those only.  A video on a lab disk (``disks``) goes to a worker on that disk's storage host
when one is free (a loose Dask host restriction: other workers still take it when that
host's are busy or gone), where it is read in place rather than over NFS.  Task keys name what runs, so the dashboard's task stream reads
"extract-video", "plan-pieces", "extract-piece", "join-pieces", "extract-batch".
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import groupby

from distributed import Client, Future

from ..disks.locate import host_addresses
from ..disks.state import disks_base
from ..errors import SnhooError
from ..model import Video, VideoFailed, VideoRecord
from ..packets.pieces import pieces_wanted, splittable
from ..settings import Settings
from ..worker.extract import extract_video
from ..worker.progress import TOPIC, from_wire
from ..worker.split_video import extract_piece, join_pieces, plan_split

TASK_NAME = "extract-video"
PROGRESS_TOPIC = TOPIC  # the Dask event topic tasks report progress on (jobs/progress.py)
progress_name = from_wire  # the video name an event carries, as the client keys it
# A video below this size is batched with others (the benchmark's one-second 360p clips
# are 0.21 MB on average).
BATCH_BELOW_BYTES = 1 << 20
# At most this many videos per batch, and at least this many batches per worker thread:
# enough tasks that the threads finish together and progress still moves.
MAX_BATCH = 16
BATCHES_PER_SLOT = 8


class BatchFailed(SnhooError):
    """A batch in which at least one video failed: every video's record, ok or not (the
    task is shown erred in the dashboard, never green over a video that produced nothing)."""

    def __init__(self, records: list[VideoRecord]) -> None:
        failed = [r for r in records if r.error]
        super().__init__(
            f"{len(failed)} of {len(records)} videos failed: {failed[0].error if failed else ''}"
        )
        self.records = records

    def __reduce__(self):
        return (BatchFailed, (self.records,))


def extract_batch(videos: list[Video], settings: Settings) -> list[VideoRecord]:
    """Each video in turn, as its own task would; a failure is that video's only."""
    records: list[VideoRecord] = []
    failed = False
    for video in videos:
        try:
            records.append(extract_video(video, settings))
        except VideoFailed as e:
            records.append(e.record)
            failed = True
    if failed:
        raise BatchFailed(records)
    return records


@dataclass
class Unit:
    """Some videos and the one future whose result is their records."""

    videos: list[Video]
    future: Future
    helpers: list[Future] = field(default_factory=list)  # a split video's plan and pieces

    @property
    def futures(self) -> list[Future]:
        return [self.future, *self.helpers]


def batches(videos: list[Video], slots: int) -> tuple[list[list[Video]], list[Video]]:
    """(groups of tiny videos, each of one disk host's videos; the videos that run alone)."""
    tiny = [v for v in videos if v.size < BATCH_BELOW_BYTES]
    size = min(MAX_BATCH, len(tiny) // max(1, slots * BATCHES_PER_SLOT))
    if size < 2:
        return [], videos
    groups = []
    for _, same in groupby(sorted(tiny, key=_host_order), key=_host_order):
        host = list(same)
        groups += [host[i : i + size] for i in range(0, len(host), size)]
    return groups, [v for v in videos if v.size >= BATCH_BELOW_BYTES]


def _host_order(video: Video) -> str:
    return video.disk_host or ""


def located(client: Client, videos: list[Video]) -> list[Video]:
    """The videos, each knowing the address of the storage host whose plugged disk holds
    it.  Not on a cluster this process started: its workers are all on this machine."""
    if client.cluster is not None:
        return videos
    hosts = host_addresses([v.real or v.path for v in videos], disks_base())
    return [replace(v, disk_host=h) if h else v for v, h in zip(videos, hosts, strict=True)]


def _where(videos: list[Video]) -> dict:
    """The Dask restriction for tasks that read these videos (one disk host's, or none)."""
    host = videos[0].disk_host if videos else None
    return {"workers": [host], "allow_other_workers": True} if host else {}


def submit(client: Client, todo: list[Video], settings: Settings, slots: int) -> list[Unit]:
    """Every video of ``todo`` in a unit, its tasks handed to the scheduler.  ``slots``:
    the cluster's worker threads (0: unknown)."""
    # Longest first (size stands in for length), so one long video does not finish alone:
    # a flat graph runs in the order it is given.
    todo = sorted(located(client, todo), key=lambda v: v.size, reverse=True)
    cuttable = (
        settings.split_seconds > 0
        and settings.stage != "always"  # asked for a local copy first: the whole video, then
        and splittable(settings.selection, settings.dedup, settings.pack)
    )
    wanted = (
        pieces_wanted([v.size for v in todo], slots, settings.split_seconds) if cuttable else [1] * len(todo)
    )
    split = [(v, n) for v, n in zip(todo, wanted, strict=True) if n > 1]
    groups, alone = batches([v for v, n in zip(todo, wanted, strict=True) if n == 1], slots)
    tasks = len(alone) + len(groups) + sum(n for _, n in split)
    # With at least as many tasks as worker threads, parallelism comes from the tasks, and
    # ffmpeg's frame threads only add overhead (a 2-min 720p decode: 18.1 s vs 19.9 s CPU).
    settings = replace(
        settings, run=replace(settings.run, decoder_threads=1 if slots and tasks >= slots else 0)
    )
    tag = uuid.uuid4().hex
    units = [_submit_pieces(client, v, settings, n, f"{tag}-{i}") for i, (v, n) in enumerate(split)]
    # One client.map is one message to the scheduler for all of its tasks; a future per
    # video computed separately was one each.
    units += _mapped(client, extract_video, alone, [[v] for v in alone], settings, TASK_NAME, tag)
    units += _mapped(client, extract_batch, groups, groups, settings, "extract-batch", tag)
    return units


def _mapped(
    client: Client,
    fn: Callable,
    items: list,
    videos: list[list[Video]],
    settings: Settings,
    name: str,
    tag: str,
) -> list[Unit]:
    """``fn(item, settings)`` for every item, as one client.map per disk host (largest
    first within each); a unit per item."""
    by_host: dict[str, list[int]] = {}
    for i, v in enumerate(videos):
        by_host.setdefault(_host_order(v[0]), []).append(i)
    units = []
    for indices in by_host.values():
        keys = [(f"{name}-{tag}", i) for i in indices]
        futures = client.map(
            fn,
            [items[i] for i in indices],
            settings=settings,
            key=keys,
            pure=False,
            **_where(videos[indices[0]]),
        )
        units += [Unit(videos[i], f) for i, f in zip(indices, futures, strict=True)]
    return units


def _submit_pieces(client: Client, video: Video, settings: Settings, n: int, tag: str) -> Unit:
    # Higher priority: the pieces of the longest videos start first, like whole videos do.
    priority = 1
    where = _where([video])
    plan = client.submit(
        plan_split, video, settings, n, key=f"plan-pieces-{tag}", priority=priority + 1, **where
    )
    pieces = [
        client.submit(
            extract_piece,
            plan,
            k,
            video,
            settings,
            key=f"extract-piece-{tag}-{k}",
            priority=priority,
            **where,
        )
        for k in range(n)
    ]
    join = client.submit(
        join_pieces, video, settings, plan, *pieces, key=f"join-pieces-{tag}", priority=priority, **where
    )
    return Unit([video], join, [plan, *pieces])


def slots_of(client: Client, wait: float = 10.0) -> int:
    """Worker threads in the cluster now (0 if the scheduler cannot say within ``wait``
    s: a frozen one never answers, and ``scheduler_info`` would wait for it for ever)."""
    if client.scheduler is None:  # closed: nothing to ask
        return 0
    try:
        info = client.sync(client.scheduler.identity, n_workers=-1, callback_timeout=wait)
        return sum(w.get("nthreads", 1) for w in info["workers"].values())
    except (KeyError, OSError, TimeoutError, AttributeError, TypeError):
        return 0

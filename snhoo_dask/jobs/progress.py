"""A running job's progress in frames: done of expected, rate, time left, videos running.

Tasks report the images they have written while they decode (``worker/progress.py``,
as Dask events); the videos' records end each one.  Expected is the selection's count for
each video its task has read the header of (exact where the frames were counted from the
packets); for the videos not read yet, it is extrapolated by file size from those that
were, so the total firms up as the job goes; None while nothing can be said (no video read
yet, or a selection whose count only decoding tells: scene cuts, near-duplicates dropped).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from distributed import Client

from ..model import WRITTEN, Video, VideoRecord
from .tasks import PROGRESS_TOPIC, progress_name

RATE_WINDOW = 15.0  # seconds of reports the rate is measured over


@dataclass(frozen=True)
class Progress:
    frames_done: int
    frames_expected: int | None
    estimated: bool  # frames_expected is partly extrapolated (videos not read yet)
    rate_fps: float | None
    eta_s: float | None
    running: dict[str, tuple[int, int]] = field(default_factory=dict)  # out_rel -> (pieces done, pieces)

    def to_json(self) -> dict:
        """The web job's ``progress`` (docs/web.md)."""
        return {
            "frames_done": self.frames_done,
            "frames_expected": self.frames_expected,
            "rate_fps": None if self.rate_fps is None else round(self.rate_fps, 1),
            "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
        }


class JobProgress:
    """The counts for the videos a job runs tasks for (thread-safe: reports arrive on the
    client's event loop, records on the job's thread)."""

    def __init__(self, todo: list[Video], countable: bool = True) -> None:
        self.sizes = {v.out_rel: v.size for v in todo}
        # A record names its video by root and path; its ``out`` is where the output went,
        # which with --pack shards is a shard, not the name the tasks report under.
        self._names = {(v.root, v.rel): v.out_rel for v in todo}
        self.countable = countable
        self._lock = threading.Lock()
        # Totals kept as they change: a report costs the same in a job of 100,000 videos.
        self._frames = 0  # images done, over all videos
        self._known = 0  # images expected, over the videos whose count is known
        self._known_bytes = 0  # their sizes
        self._unread_bytes = sum(self.sizes.values())  # the sizes of the others
        self._expected: dict[str, int] = {}
        self._done: dict[str, dict[int | None, int]] = {}  # video -> piece (None: whole) -> images
        self._pieces: dict[str, int] = {}  # videos being decoded -> their pieces
        self._ended: dict[str, set[int]] = {}  # video -> pieces finished
        self._finished: set[str] = set()
        self._samples: deque[tuple[float, int]] = deque([(time.monotonic(), 0)])

    def report(self, msg: dict) -> bool:
        """A task's report (``worker.progress.Reporter``); False if it is not this job's."""
        video = progress_name(msg.get("video"))
        if video not in self.sizes:
            return False
        with self._lock:
            if video in self._finished:
                return True  # a late report of a video whose record is in
            expected, pieces, piece = msg.get("expected"), int(msg.get("pieces") or 1), msg.get("piece")
            done = self._done.setdefault(video, {})
            before = sum(done.values())
            if piece is None:  # the whole video's count: from its task, or its plan's for pieces
                if expected is None:
                    self.countable = False
                else:
                    self._expect(video, int(expected))
                self._pieces[video] = pieces
                if pieces == 1 and len(done) > 1:
                    done.clear()  # its pieces were not used: extracted whole, from the start
            else:
                self._pieces[video] = max(self._pieces.get(video, 1), pieces)
            done[piece] = max(done.get(piece, 0), int(msg.get("done") or 0))
            self._frames += sum(done.values()) - before
            if msg.get("end") and piece is not None:
                self._ended.setdefault(video, set()).add(piece)
            self._sample()
        return True

    def _expect(self, video: str, count: int) -> None:
        old = self._expected.get(video)
        if old is None:
            self._known_bytes += self.sizes[video]
            self._unread_bytes -= self.sizes[video]
        self._known += count - (old or 0)
        self._expected[video] = count

    def finished(self, record: VideoRecord) -> None:
        """The video's record: its count is final (a failed one's work stops where it was)."""
        video = self._names.get((record.root, record.video), record.out)
        if video not in self.sizes or video in self._finished:
            return
        with self._lock:
            self._finished.add(video)
            before = sum(self._done.pop(video, {}).values())
            done = record.frames if record.status in WRITTEN else before
            self._frames += done - before
            self._expect(video, done)
            self._pieces.pop(video, None)
            self._ended.pop(video, None)
            self._sample()

    def _sample(self) -> None:
        now = time.monotonic()
        self._samples.append((now, self._frames))
        while len(self._samples) > 2 and self._samples[1][0] < now - RATE_WINDOW:
            self._samples.popleft()

    def snapshot(self) -> Progress:
        with self._lock:
            done = self._frames
            expected, estimated = self._expected_total()
            now = time.monotonic()
            t0, d0 = self._samples[0]
            rate = (done - d0) / (now - t0) if now - t0 >= 1.0 and done > d0 else None
            eta = max(0.0, (expected - done) / rate) if rate and expected is not None else None
            running = {v: (len(self._ended.get(v, ())), n) for v, n in self._pieces.items()}
        return Progress(done, expected, estimated, rate, eta, running)

    def _expected_total(self) -> tuple[int | None, bool]:
        if not self.countable:
            return None, False
        if len(self._expected) == len(self.sizes):
            return max(self._known, self._frames), False
        if not self._expected or self._known_bytes <= 0:
            return None, True
        guess = self._known + round(self._unread_bytes * self._known / self._known_bytes)
        return max(guess, self._frames), True


# One topic handler per client (Dask keeps one per topic), routing each report to its job:
# the web service runs several jobs on one client.
_routes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_routes_lock = threading.Lock()


def _dispatch(routes: dict[str, Callable[[dict], None]], event) -> None:
    _, msg = event
    if isinstance(msg, dict) and (handler := routes.get(str(msg.get("run")))) is not None:
        handler(msg)


@contextmanager
def subscribed(client: Client, run_id: str, handler: Callable[[dict], None]) -> Iterator[None]:
    """``handler(report)`` for every progress report of run ``run_id``, while inside."""
    with _routes_lock:
        routes = _routes.get(client)
        if routes is None:
            routes = _routes[client] = {}
            try:
                client.subscribe_topic(PROGRESS_TOPIC, lambda event: _dispatch(routes, event))
            except Exception:  # noqa: BLE001 - a job without live progress still runs
                pass
        routes[run_id] = handler
    try:
        yield
    finally:
        with _routes_lock:
            routes.pop(run_id, None)

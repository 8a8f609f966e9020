"""Running one job on a Dask cluster: one task per video, one final record per video.

Used by ``snhoo-dask run`` and by the web service alike; it never prints.  Progress
reaches the caller through the ``on_record(record, summary)`` callback.  What to run
is decided before (``planning``); how it ended is the ``Summary``'s ``outcome``.
"""

from __future__ import annotations

import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError
from contextlib import contextmanager
from dataclasses import replace

from distributed import Client, KilledWorker
from distributed.client import FutureCancelledError

from ..errors import JobError
from ..fs.fsafe import disk_gone
from ..model import FAILED, Video, VideoFailed, VideoRecord
from ..output.folder import OutputDir, OutputFolder, sweep_tmp
from ..output.manifest import ManifestWriter
from ..settings import Settings, new_record
from .discover import Discovery
from .planning import plan_shards, shard_records, split_done
from .progress import JobProgress, Progress, subscribed
from .summary import Summary
from .tasks import BatchFailed, Unit, slots_of, submit

OnRecord = Callable[[VideoRecord, Summary], None]
OnProgress = Callable[[Progress], None]


def _arrivals(arrived: queue.SimpleQueue, timeout: float) -> list:
    """The futures that ended: wait up to ``timeout`` for one, then take all that are there."""
    try:
        got = [arrived.get(timeout=timeout)]
    except queue.Empty:
        return []
    while True:
        try:
            got.append(arrived.get_nowait())
        except queue.Empty:
            return got


class Watchdog(threading.Thread):
    """Asks the scheduler for an answer every ``every`` s (``echo``, bounded by ``wait``)
    and keeps the time of the last one.

    A scheduler that died closes its connections, which the client sees; one that is frozen
    (stopped, swapping, its host hung) keeps them open and says nothing, and every future
    just stays pending: only a question that needs an answer tells the two apart.
    """

    def __init__(self, client: Client, every: float = 5.0, wait: float = 10.0) -> None:
        super().__init__(name="snhoo-scheduler-watchdog", daemon=True)
        self.client = client
        self.every = every
        self.wait = wait
        self.last_answer = time.monotonic()
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.every):
            scheduler = self.client.scheduler
            if scheduler is None:  # the client closed: no answer, silent_for grows
                continue
            try:
                self.client.sync(scheduler.echo, data=b"", callback_timeout=self.wait)
                self.last_answer = time.monotonic()
            except Exception:  # noqa: BLE001 - no answer, however it failed: silent_for grows
                pass

    def silent_for(self) -> float:
        return time.monotonic() - self.last_answer

    def stop(self) -> None:
        self._done.set()


def _said(e: OSError) -> str:
    """An OSError in words: a disk gone says so, others their ``strerror``."""
    gone = disk_gone(e)
    return str(gone) if gone is not e else (e.strerror or str(e))


@contextmanager
def _manifest(out: OutputDir, summary: Summary) -> Iterator[ManifestWriter]:
    """OUT's manifest for appending; an error closing it (the disk gone, the last lines not
    on it) is the summary's ``manifest_error``, not a traceback after the job."""
    try:
        writer = ManifestWriter(out)
    except OSError as e:
        raise JobError(f"cannot write to the output folder {out.path}: {_said(e)}") from None
    try:
        yield writer
    finally:
        try:
            writer.close()
        except OSError as e:
            summary.manifest_error = summary.manifest_error or (f"could not write {writer.path}: {_said(e)}")
        if writer.close_error:
            summary.manifest_error = summary.manifest_error or writer.close_error


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


class Job:
    """The videos a discovery found, and the settings to extract them with."""

    def __init__(
        self, found: Discovery, settings: Settings, folder: OutputFolder, overwrite: bool = False
    ) -> None:
        self.settings = settings
        self.folder = folder  # the owner of OUT (``settings.out`` is its path)
        self.overwrite = overwrite
        self.found = found
        self._futures: list = []
        self._stop = threading.Event()
        self._running = False
        self._out_ino: int | None = None
        self._fence = ""
        self._progress: JobProgress | None = None
        self._on_progress: OnProgress = lambda p: None

    @property
    def videos(self) -> list[Video]:
        """The videos discovery found, each with its output name (``Video.out_rel``)."""
        return self.found.videos

    @contextmanager
    def holding(self) -> Iterator[OutputDir]:
        """OUT taken for this job's run (``OutputFolder.take``: opened, locked, checked under
        the lock, taken over) until the block ends; JobError if it cannot be.  A ``run``
        inside the block runs on it; the command line takes OUT so before it starts a
        cluster, so that a second run on OUT is refused at once and the lock is taken once."""
        out = self.folder.take(self.settings.run_id, [v.out_rel for v in self.videos])
        try:
            yield out
        finally:
            self.folder.release()

    def run(
        self,
        client: Client,
        on_record: OnRecord = lambda r, s: None,
        lost_grace: float = 20.0,
        on_progress: OnProgress | None = None,
    ) -> Summary:
        """Run to the end (or until interrupted); every video gets exactly one record.
        ``on_progress``: told the frames done while tasks run (``progress``), from Dask's
        event loop thread, as each task reports and each record arrives.  OUT is taken for
        the run (``holding``) unless the caller holds it already."""
        if self.folder.opened is not None:
            return self._run_on(self.folder.opened, client, on_record, lost_grace, on_progress)
        with self.holding() as out:
            return self._run_on(out, client, on_record, lost_grace, on_progress)

    def _run_on(
        self,
        out: OutputDir,
        client: Client,
        on_record: OnRecord,
        lost_grace: float,
        on_progress: OnProgress | None,
    ) -> Summary:
        summary = Summary(
            total=len(self.videos), unsearched=list(self.found.problems), merged=list(self.found.merged)
        )
        # OUT is opened once: the lock, the manifest and the sweep go through this descriptor,
        # and every task checks that the OUT it opens is this same folder.
        self._fence = self.folder.fence
        self._out_ino = out.ino
        self._running = True
        try:
            sweep_tmp(out)
            with _manifest(out, summary) as manifest:

                def record(rec: VideoRecord) -> None:
                    try:
                        manifest.write(rec)
                    except OSError as e:
                        # The run goes on (the frames are safe); the exit status says the record is not.
                        summary.manifest_error = f"could not append to {manifest.path}: {_said(e)}"
                    summary.add(rec)
                    if self._progress is not None:
                        self._progress.finished(rec)
                        self._on_progress(self._progress.snapshot())
                    on_record(rec, summary)

                # Refused before any work: an output name the disk cannot hold.
                refused, videos = self._names_too_long(out)
                for rec in refused:
                    record(rec)
                # Decided under the lock: no other run can finish a video in between.
                plan = plan_shards if self.settings.pack == "shards" else split_done
                skipped, todo = plan(videos, self.settings, self.overwrite, out, summary.redone)
                for rec in skipped:
                    record(rec)
                if todo:
                    selection = self.settings.selection
                    # Scene cuts and near-duplicates: how many images, only decoding tells.
                    countable = self.settings.dedup is None and selection.kind.name != "scenes"
                    self._progress = JobProgress(todo, countable)
                    self._on_progress = on_progress or (lambda p: None)
                    # Subscribed before the tasks are submitted: no first report is missed.
                    with subscribed(client, self.settings.run_id, self._report):
                        if self.settings.pack == "shards":
                            # The client writes the shards: see output/shards.py for why.
                            with shard_records(out, self.settings, todo, record) as sharded:
                                self._run_tasks(client, todo, sharded, summary, lost_grace)
                        else:
                            self._run_tasks(client, todo, record, summary, lost_grace)
        except KeyboardInterrupt:
            summary.interrupted = True
            self.cancel(client)
        finally:
            self._running = False
            if not summary.interrupted:
                sweep_tmp(out)
        summary.elapsed = time.monotonic() - summary.started
        return summary

    @property
    def progress(self) -> Progress | None:
        """Frames done of expected so far; None before any task was submitted."""
        return self._progress.snapshot() if self._progress is not None else None

    def _report(self, msg: dict) -> None:
        if self._progress is not None and self._progress.report(msg):
            self._on_progress(self._progress.snapshot())

    def _names_too_long(self, out: OutputDir) -> tuple[list[VideoRecord], list[Video]]:
        """(``failed`` records of the videos whose output path has a name longer than the
        output disk allows, the other videos): a 255-byte video name is fine on ext4, its
        ``.tar`` is not."""
        try:
            limit = os.fpathconf(out.fd, "PC_NAME_MAX")
        except (OSError, ValueError):
            limit = 255
        refused, fine = [], []
        for v in self.videos:
            long = next((p for p in v.out_rel.split("/") if len(os.fsencode(p)) > limit), None)
            if long is None:
                fine.append(v)
                continue
            size = len(os.fsencode(long))
            hint = (
                " or use --pack folder"
                if v.suffix and long.endswith(v.suffix) and size - len(v.suffix) <= limit
                else ""
            )
            shown = long if len(long) <= 40 else long[:20] + "..." + long[-16:]
            reason = (
                f"its output name {shown!r} would be {size} bytes, more than the {limit} the output "
                f"disk allows in a name; rename it{hint}"
            )
            refused.append(new_record(v, self.settings).finish(FAILED, error=reason, frames=0))
        return refused, fine

    def _run_tasks(
        self,
        client: Client,
        todo: list[Video],
        record: Callable[[VideoRecord], None],
        summary: Summary,
        lost_grace: float,
    ) -> None:
        settings = replace(
            self.settings, run=replace(self.settings.run, out_ino=self._out_ino, fence=self._fence)
        )
        units = submit(client, todo, settings, slots_of(client))
        self._futures = [f for u in units for f in u.futures]
        unit_of = {u.future.key: u for u in units}
        # Each unit's future reports itself when it ends: waiting is then the same cost for
        # the last video as for the first (wait() on all pending futures after every result
        # was quadratic in the number of videos).
        arrived: queue.SimpleQueue = queue.SimpleQueue()
        for u in units:
            u.future.add_done_callback(arrived.put)
        pending = {u.future for u in units}
        lost: set = set()  # ended without a result: cancelled with the scheduler
        lost_since = None
        watchdog = Watchdog(client)
        watchdog.start()
        try:
            while pending:
                if self._stop.is_set():
                    raise KeyboardInterrupt  # same orderly stop as Ctrl-C: cancel, record interrupted
                for fut in _arrivals(arrived, timeout=1.0):  # each future arrives once
                    unit = unit_of[fut.key]
                    recs = self._final_records(fut, unit)
                    if recs is None:
                        lost.add(fut)  # decided below
                        continue
                    pending.discard(fut)
                    for rec in recs:
                        record(rec)
                    # Let go of the results at once: a result the client still wants is
                    # recomputed by the scheduler if the worker holding it dies, which
                    # would run the video again after it was recorded.
                    for f in unit.futures:
                        f.release()
                silent = watchdog.silent_for() > lost_grace
                if client.status == "running" and not lost and not silent:
                    lost_since = None
                    continue
                lost_since = lost_since or time.monotonic()
                if silent or time.monotonic() - lost_since > lost_grace or client.status == "closed":
                    unfinished = sum(len(unit_of[f.key].videos) for f in pending)
                    how = f" (it stopped answering for {lost_grace:g} s)" if silent else ""
                    summary.scheduler_lost = (
                        f"lost the connection to the Dask scheduler{how} with "
                        f"{unfinished} video(s) unfinished; rerun to resume"
                    )
                    return
        finally:
            watchdog.stop()
            self._futures = [f for u in units if u.future in pending for f in u.futures]

    def _final_records(self, fut, unit: Unit) -> list[VideoRecord] | None:
        """The records of a unit's videos, however its future ended; None if it was lost."""
        if fut.status == "finished":
            try:
                result = fut.result()
            except (CancelledError, OSError, TimeoutError):
                return None  # finished, but the result went with the scheduler; a rerun skips it
            return result if isinstance(result, list) else [result]
        if fut.status == "cancelled":
            return None
        try:
            exc = fut.exception()
        except FutureCancelledError:
            return None
        if isinstance(exc, VideoFailed):
            return [exc.record]
        if isinstance(exc, BatchFailed):
            return exc.records
        if isinstance(exc, KilledWorker):
            reason = "the worker processing it died repeatedly (out of memory or killed)"
        else:
            reason = f"unexpected error: {type(exc).__name__}: {exc}"
        return [new_record(v, self.settings).finish(FAILED, error=reason) for v in unit.videos]

    @property
    def running(self) -> bool:
        return self._running

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        """Ask a ``run`` in another thread to stop as if interrupted (the web service uses this)."""
        self._stop.set()

    def cancel(self, client: Client) -> None:
        try:
            client.cancel(self._futures)
        except Exception:  # noqa: BLE001 - best effort while shutting down
            pass

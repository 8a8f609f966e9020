"""One extraction job: discover, skip what is done, run one Dask task per video, record.

Used by ``snhoo-dask run`` and by the web service alike; it never prints.  Progress
reaches the caller through the ``on_record(record, summary)`` callback, one final
record per video.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import CancelledError
from dataclasses import dataclass, field, replace

import dask.bag as db
from distributed import Client, wait
from distributed.client import FutureCancelledError

from .discover import DEFAULT_EXTENSIONS, Discovery, DiscoveryError, Video, discover
from .extract import Settings, VideoFailed, base_record, extract_video
from .layout import read_done, sweep_tmp, video_dir
from .lock import OutputBusy, OutputLock
from .manifest import ManifestWriter


class JobError(Exception):
    """The job cannot start (a usage problem); the message is one line for the user."""


class SchedulerLost(Exception):
    pass


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


@dataclass
class Summary:
    total: int = 0
    ok: int = 0
    skipped: int = 0
    failed: int = 0
    images: int = 0
    started: float = field(default_factory=time.monotonic)
    elapsed: float = 0.0
    interrupted: bool = False
    scheduler_lost: str | None = None
    failures: list[dict] = field(default_factory=list)
    # Folders discovery could not read: videos in them were never seen, so not a success.
    unsearched: list[tuple[str, str]] = field(default_factory=list)
    manifest_error: str | None = None

    @property
    def done(self) -> int:
        return self.ok + self.skipped + self.failed

    def add(self, record: dict) -> None:
        status = record["status"]
        setattr(self, status, getattr(self, status) + 1)
        if status == "ok":
            self.images += record["frames"]
        elif status == "failed":
            self.failures.append(record)
        self.elapsed = time.monotonic() - self.started

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return (
            1
            if (
                self.failed
                or self.scheduler_lost
                or self.unsearched
                or self.manifest_error
                or self.done < self.total
            )
            else 0
        )


def prepare_output(out: str) -> str:
    out = os.path.abspath(os.path.expanduser(out))
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise JobError(f"cannot create the output folder {out}: {e.strerror}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise JobError(f"the output folder {out} is not writable (permission denied)")
    return out


def find_videos(
    roots: list[str], out: str | None, extensions: tuple[str, ...] = DEFAULT_EXTENSIONS
) -> Discovery:
    if not roots:
        raise JobError("give at least one root folder")
    try:
        found = discover(roots, extensions, exclude=out)
    except DiscoveryError as e:
        raise JobError(str(e)) from None
    if not found.videos:
        where = ", ".join(roots)
        raise JobError(f"no videos found under {where} (looked for .{', .'.join(extensions)})")
    return found


TASK_NAME = "extract-video"


def _extract_each(videos: list[Video], settings: Settings) -> list[dict]:
    return [extract_video(v, settings) for v in videos]


class Job:
    def __init__(
        self,
        roots: list[str],
        settings: Settings,
        overwrite: bool = False,
        extensions: tuple[str, ...] = DEFAULT_EXTENSIONS,
    ) -> None:
        self.settings = settings
        self.overwrite = overwrite
        self.found = find_videos(roots, settings.out, extensions)
        self.videos = self.found.videos
        self._futures: list = []
        self._stop = threading.Event()
        self._running = False

    def skip_record(self, video: Video) -> dict | None:
        """A ``skipped`` record if this video's finished output matches this job."""
        if self.overwrite:
            return None
        done = read_done(video_dir(self.settings.out, video.out_rel))
        if not done or done.get("signature") != self.settings.signature():
            return None
        previous = done.get("record", {})
        if previous.get("size") != video.size:
            return None  # the source changed since it was extracted
        record = base_record(video, self.settings)
        for key in ("frames", "codec", "width", "height", "fps", "duration", "missing", "worker"):
            record[key] = previous.get(key)
        record.update(status="skipped", finished_at=time.time())
        return record

    def run(
        self,
        client: Client,
        on_record: Callable[[dict, Summary], None] = lambda r, s: None,
        lost_grace: float = 20.0,
    ) -> Summary:
        """Run to the end (or until interrupted); every video gets exactly one record."""
        out = self.settings.out
        summary = Summary(total=len(self.videos), unsearched=list(self.found.problems))
        try:
            lock = OutputLock(out)
            lock.acquire()
        except OutputBusy as e:
            raise JobError(str(e)) from None
        except OSError as e:
            raise JobError(f"cannot write to the output folder {out}: {e.strerror}") from None
        self._running = True
        try:
            sweep_tmp(out)
            with ManifestWriter(out) as manifest:

                def record(rec: dict) -> None:
                    try:
                        manifest.write(rec)
                    except OSError as e:
                        # The run goes on (the frames are safe); the exit status says the record is not.
                        summary.manifest_error = f"could not append to {manifest.path}: {e.strerror or e}"
                    summary.add(rec)
                    on_record(rec, summary)

                todo = []
                for video in self.videos:
                    skipped = self.skip_record(video)
                    if skipped:
                        record(skipped)
                    else:
                        todo.append(video)
                if todo:
                    self._run_tasks(client, todo, record, summary, lost_grace)
        except KeyboardInterrupt:
            summary.interrupted = True
            self.cancel(client)
        finally:
            self._running = False
            if not summary.interrupted:
                sweep_tmp(out)
            lock.release()
        summary.elapsed = time.monotonic() - summary.started
        return summary

    def _run_tasks(
        self,
        client: Client,
        todo: list[Video],
        record: Callable[[dict], None],
        summary: Summary,
        lost_grace: float,
    ) -> None:
        # Longest first (size stands in for length), so one long video does not finish alone.
        todo = sorted(todo, key=lambda v: v.size, reverse=True)
        # The token names the tasks, so the dashboard's task stream and progress read
        # "extract-video" rather than a function name.
        bag = db.from_sequence(todo, npartitions=len(todo)).map_partitions(
            _extract_each, settings=self._task_settings(client, len(todo)), token=TASK_NAME
        )
        parts = bag.to_delayed()
        n = len(parts)
        self._futures = [client.compute(part, priority=n - i) for i, part in enumerate(parts)]
        video_of = {f.key: v for f, v in zip(self._futures, todo, strict=True)}
        pending = set(self._futures)
        lost_since = None
        while pending:
            if self._stop.is_set():
                raise KeyboardInterrupt  # same orderly stop as Ctrl-C: cancel, record interrupted
            try:
                if client.status == "closed":
                    raise CancelledError  # gave up reconnecting; wait() would find no client
                done, pending = wait(pending, timeout=1.0, return_when="FIRST_COMPLETED")
            except TimeoutError:
                done = set()
            except (CancelledError, ValueError):
                # The scheduler is gone: newer distributed cancels the futures, and once the
                # client closes wait() has no client at all.  Decided below.
                done = set()
            for fut in done:
                rec = self._final_record(fut, video_of[fut.key])
                if rec is None:
                    pending.add(fut)  # lost with the scheduler; decided below
                    continue
                record(rec)
            if client.status == "running" and not any(f.status == "cancelled" for f in pending):
                lost_since = None
                continue
            lost_since = lost_since or time.monotonic()
            if time.monotonic() - lost_since > lost_grace or client.status == "closed":
                summary.scheduler_lost = (
                    f"lost the connection to the Dask scheduler with "
                    f"{len(pending)} video(s) unfinished; rerun to resume"
                )
                return

    def _task_settings(self, client: Client, videos: int) -> Settings:
        """This job's settings, with ffmpeg's threading fitted to the cluster's size."""
        try:
            slots = sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values())
        except (KeyError, OSError, TimeoutError):
            slots = 0
        return replace(self.settings, decoder_threads=1 if slots and videos >= slots else 0)

    def _final_record(self, fut, video: Video) -> dict | None:
        if fut.status == "finished":
            try:
                return fut.result()[0]
            except (CancelledError, OSError, TimeoutError):
                return None  # finished, but the result went with the scheduler; a rerun skips it
        if fut.status == "cancelled":
            return None
        try:
            exc = fut.exception()
        except FutureCancelledError:
            return None
        if isinstance(exc, VideoFailed):
            return exc.record
        rec = base_record(video, self.settings)
        name = type(exc).__name__
        reason = (
            "the worker processing it died repeatedly (out of memory or killed)"
            if name == "KilledWorker"
            else f"unexpected error: {name}: {exc}"
        )
        rec.update(status="failed", error=reason, finished_at=time.time())
        return rec

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

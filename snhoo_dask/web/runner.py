"""Runs Jobs for the web service: one thread each, all on the service's one Dask client."""

from __future__ import annotations

import logging
import threading

from distributed import Client

from ..errors import JobError
from ..job import Job
from ..report import build_report
from ..summary import ERROR
from .store import JobStore

log = logging.getLogger("snhoo_dask.web")


class Runner:
    def __init__(self, client: Client, store: JobStore) -> None:
        self.client = client
        self.store = store
        self._lock = threading.Lock()
        self._active: dict[str, tuple[Job, threading.Thread]] = {}

    def busy_outs(self) -> set[str]:
        with self._lock:
            return {job.settings.out for job, _ in self._active.values()}

    def is_running(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._active

    def start(self, job_id: str, job: Job) -> None:
        """Record the run and start it; the job row must already exist."""
        self.store.begin_run(job_id, job.settings.run_id, [(v.out_rel, v.root, v.rel) for v in job.videos])
        thread = threading.Thread(target=self._run, args=(job_id, job), name=f"job-{job_id}", daemon=True)
        with self._lock:
            self._active[job_id] = (job, thread)
        thread.start()

    def stop(self, job_id: str) -> bool:
        with self._lock:
            entry = self._active.get(job_id)
        if entry:
            entry[0].stop()
        return entry is not None

    def stop_all(self, timeout: float = 15.0) -> None:
        """Stop every job (service shutdown) and wait for them to record it."""
        with self._lock:
            entries = list(self._active.values())
        for job, _ in entries:
            job.stop()
        for _, thread in entries:
            thread.join(timeout)

    def _run(self, job_id: str, job: Job) -> None:
        try:
            summary = job.run(self.client, on_record=lambda rec, s: self.store.record(job_id, rec, s))
            outcome = summary.outcome
            self.store.finish(job_id, outcome.state, outcome.message, elapsed=summary.elapsed)
        except JobError as e:
            self.store.finish(job_id, ERROR, str(e))
        except Exception as e:  # noqa: BLE001 - a job thread must always leave a final state
            log.exception("job %s crashed", job_id)
            self.store.finish(job_id, ERROR, f"unexpected error: {type(e).__name__}: {e}")
        try:
            build_report(job.settings.out)
        except Exception:  # noqa: BLE001 - the report is a by-product; the job's state stands
            log.exception("could not write the report for job %s", job_id)
        finally:
            # Only now is the output folder free again (and the report there to link to).
            with self._lock:
                self._active.pop(job_id, None)

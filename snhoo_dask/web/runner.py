"""Runs Jobs for the web service: one thread each, all on the service's one Dask client."""

from __future__ import annotations

import logging
import threading
from contextlib import ExitStack

from distributed import Client

from ..errors import JobError
from ..fs.paths import overlap
from ..jobs.job import Job
from ..jobs.progress import Progress
from ..jobs.summary import ERROR
from ..output.report import try_build_report
from .store import JobStore

log = logging.getLogger("snhoo_dask.web")


class Runner:
    def __init__(self, client: Client, store: JobStore) -> None:
        self.client = client
        self.store = store
        self._lock = threading.Lock()
        self._active: dict[str, tuple[Job, threading.Thread]] = {}
        self._claimed: set[str] = set()  # output folders of running jobs and of jobs being set up
        self._closing = threading.Event()

    def claim(self, out: str) -> bool:
        """Take ``out`` for one job; False if another job of this service has it.  Check and
        take are one step, so of many requests for one folder exactly one gets it."""
        with self._lock:
            # Nor one inside or around another's: a job writing into another's output
            # would replace its frames under its manifest.
            if any(overlap(out, other) for other in self._claimed):
                return False
            self._claimed.add(out)
            return True

    def release(self, out: str) -> None:
        """Give back a folder claimed for a job that then did not start."""
        with self._lock:
            self._claimed.discard(out)

    def is_running(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._active

    def start(self, job_id: str, job: Job, held: ExitStack | None = None) -> None:
        """Record the run and start it; the job row must already exist and its output folder
        be claimed (and ``held``, taken for it: ``Job.holding``): the claim and the hold now
        belong to the job's thread, which gives them back at the end."""
        self.store.begin_run(job_id, job.settings.run_id, [(v.out_rel, v.root, v.rel) for v in job.videos])
        held = held or ExitStack()
        thread = threading.Thread(
            target=self._run, args=(job_id, job, held), name=f"job-{job_id}", daemon=True
        )
        with self._lock:
            self._active[job_id] = (job, thread)
        thread.start()

    def progress(self, job_id: str) -> Progress | None:
        """A running job's frames done of expected and its videos being decoded; None if it
        is not running (or has submitted no task yet)."""
        with self._lock:
            entry = self._active.get(job_id)
        return entry[0].progress if entry else None

    def stop(self, job_id: str) -> bool:
        with self._lock:
            entry = self._active.get(job_id)
        if entry:
            entry[0].stop()
        return entry is not None

    def stop_all(self, wait: float = 15.0) -> None:
        """Stop every job (service shutdown) and wait for them to record it."""
        self._closing.set()
        with self._lock:
            entries = list(self._active.values())
        for job, _ in entries:
            job.stop()
        for _, thread in entries:
            thread.join(wait)

    def _run(self, job_id: str, job: Job, held: ExitStack) -> None:
        try:
            self._run_job(job_id, job)
        except Exception:  # noqa: BLE001 - logged; the job's state stands
            log.exception("job %s: could not record its end", job_id)
        finally:
            held.close()  # the folder's lock, once its report is written
            # Only now is the output folder free again (and the report there to link to).
            with self._lock:
                self._active.pop(job_id, None)
                self._claimed.discard(job.settings.out)

    def _run_job(self, job_id: str, job: Job) -> None:
        """Run, write the report, and record the outcome (the report's fate included)."""
        try:
            summary = job.run(self.client, on_record=lambda rec, s: self.store.record(job_id, rec, s))
        except JobError as e:
            # E.g. a command-line run holds the folder's lock: the report there is its to write.
            self.store.finish(job_id, ERROR, str(e))
            return
        except Exception as e:  # noqa: BLE001 - a job thread must always leave a final state
            log.exception("job %s crashed", job_id)
            self.store.finish(job_id, ERROR, f"unexpected error: {type(e).__name__}: {e}")
            self._report(job_id, job)
            return
        # Before the job's state is final, so a job shown as ended says whether its report is there.
        summary.report_error = self._report(job_id, job)
        outcome = summary.outcome
        self.store.finish(job_id, outcome.state, outcome.message, elapsed=summary.elapsed)

    def _report(self, job_id: str, job: Job) -> str | None:
        """Write the job's report.html; the one-line reason if it could not be."""
        if self._closing.is_set():
            # At shutdown the report waits for the resumed run: building it (Bokeh) can take
            # longer than the service manager waits for the stop.
            return None
        _, problem = try_build_report(
            job.settings.out, warn=lambda message: log.warning("job %s: %s", job_id, message)
        )
        if problem:
            log.warning("job %s: %s", job_id, problem)
        return problem

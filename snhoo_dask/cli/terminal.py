"""``snhoo-dask run`` at a terminal: signals, cluster, progress, the closing lines, the report."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from contextlib import ExitStack

import click

from ..jobs.cluster import ClusterError, ClusterSpec, dask_client
from ..jobs.dashboard import dashboard_link
from ..jobs.job import Job
from ..jobs.summary import EXIT_FAILED, EXIT_INTERRUPTED, Summary
from ..video import preload
from .grouped import warning_lines
from .progress import ProgressBar, closing_lines, summary_json, summary_line
from .text import plural

# After an interrupt, how long the cluster may take to close before the process exits
# without it.  An embedded worker's close waits for the tasks its threads run, and a task
# blocked in a read of a disk that stopped answering (a stopped FUSE daemon, a hung share)
# may never end; nothing can interrupt a thread in the kernel.
INTERRUPT_GRACE = 10.0


def _say(line: str) -> None:
    click.echo(line, err=True)


class _Ending:
    """The last words of an interrupted run, said once: by the main thread when the cluster
    closed in time, or, ``grace`` s after the job stopped (or at a second interrupt), by
    ``now``, which then ends the process with exit 130 without waiting any longer.  By then
    ``Job.run`` has returned: every record is in the manifest and the manifest closed."""

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.summary: Summary | None = None
        self._said = threading.Lock()
        self._timer: threading.Timer | None = None

    def job_ended(self, summary: Summary) -> None:
        self.summary = summary
        if summary.interrupted:
            self._timer = threading.Timer(self.grace, self.now)
            self._timer.daemon = True
            self._timer.start()

    def claim(self) -> None:
        """The main thread is to say the closing lines (blocks for good if ``now`` is saying them)."""
        if self._timer is not None:
            self._timer.cancel()
        self._said.acquire()

    def now(self, why: str = "") -> None:
        """Say the closing lines (unless the main thread is saying them) and exit 130."""
        if self._said.acquire(blocking=False):  # else the main thread is past the closing
            summary = self.summary
            assert summary is not None
            summary.interrupted = True
            for line in closing_lines(summary):
                _say(line)
            why = why or (
                f"the running tasks did not end within {self.grace:g} s of the interrupt (a disk not answering?)"
            )
            _say(f"warning: {why}; exiting without them, report.html not rebuilt")
            _say(summary_line(summary))
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(EXIT_INTERRUPTED)


def warn_unreadable(job: Job) -> None:
    for line in warning_lines(job.found.problems):
        _say(line)


def run_job(
    job: Job, cluster: ClusterSpec, quiet: bool, grace: float = INTERRUPT_GRACE, as_json: bool = False
) -> int:
    """Run the job to its end; return the exit status.  JobError for a usage problem.
    Interrupted, the process ends at most ``grace`` s after the job stopped (``_Ending``).
    ``as_json``: the summary also goes to stdout as one JSON object (nothing else goes there)."""
    warn_unreadable(job)
    out = job.settings.out
    # OUT is taken now (locked, checked, fenced), not after starting or joining a cluster: a
    # second run on it is refused at once.  The job runs on it and it is held to the job's end.
    held = ExitStack()
    held.enter_context(job.holding())

    # Ctrl-C and SIGTERM ask a running job to stop at its next safe point (between
    # records), so an interrupt never falls between writing a record and counting it.
    # Before the job runs, or on a second signal, they interrupt at once; after the job
    # ended (the cluster closing), the process ends at once with the closing lines.
    ending = _Ending(grace)

    def on_signal(signum, frame) -> None:
        if job.running and not job.stopping:
            job.stop()
        elif ending.summary is not None:
            ending.now("interrupted while the cluster was closing")
        else:
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # A lost scheduler is reported below in one line; the client's own reconnect
    # tracebacks would only bury it.
    logging.getLogger("distributed.client").setLevel(logging.CRITICAL)
    if cluster.scheduler is None and not cluster.processes:
        # The workers will run in this process: their first imports overlap the cluster's start.
        threading.Thread(target=_preload_quietly, name="snhoo-preload", daemon=True).start()
    try:
        with dask_client(cluster, warn=lambda message: _say(f"warning: {message}")) as client:
            _say(f"{plural(len(job.videos), 'video')}, {job.settings.describe()}, output {out}")
            link = dashboard_link(client, cluster.scheduler is None, cluster.dashboard_address)
            if link:  # none to open: say nothing rather than a link to a 404
                _say(f"Dask dashboard: {link}")
            bar = ProgressBar(len(job.videos), enabled=not quiet)
            summary = job.run(
                client, on_record=lambda record, totals: bar.update(totals), on_progress=bar.update_frames
            )
            bar.close()
            ending.job_ended(summary)  # interrupted: the cluster's close below has ``grace`` s
    except ClusterError as e:
        _say(f"snhoo-dask: error: {e}")
        if as_json:
            _print_json({"status": "error", "exit_code": EXIT_FAILED, "message": str(e), "out": out})
        return EXIT_FAILED
    except KeyboardInterrupt:
        _say("\ninterrupted before the job started; nothing was processed")
        return EXIT_INTERRUPTED
    finally:
        held.close()
    ending.claim()
    for line in closing_lines(summary):
        _say(line)
    _say(summary_line(summary))
    report = _write_report(out, summary)
    if as_json:
        _print_json(summary_json(summary, out, report))
    return summary.outcome.exit_code


def _print_json(data: dict) -> None:
    click.echo(json.dumps(data, ensure_ascii=False))


def _preload_quietly() -> None:
    try:
        preload()
    except Exception:  # noqa: BLE001 - the first task meets the same error and records it
        pass


def _write_report(out: str, summary: Summary) -> str | None:
    """Write OUT/report.html; its path, or None if it could not be written."""
    from ..output.report import try_build_report

    path, problem = try_build_report(out)
    summary.report_error = problem  # the exit status says it too (Summary.outcome)
    _say(f"warning: {problem}" if problem else f"report: {path}")
    return None if problem else path

"""Get a Dask client: to a running scheduler, or to an embedded LocalCluster."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dask
from dask.system import CPU_COUNT
from distributed import Client, LocalCluster

from ..errors import SnhooError
from .dashboard import LazyDashboard

DEFAULT_DASHBOARD = ":8787"
# Each worker's profiler walks every thread's stack under the GIL 100 times a second; in
# this process (workers as threads) that held the GIL for 2.5 % of a job of 300 one-second
# clips.  Ten times a second still fills the dashboard's Profile page.
EMBEDDED_CONFIG = {"distributed.worker.profile.interval": "100ms"}


class ClusterError(SnhooError):
    pass


@dataclass(frozen=True)
class ClusterSpec:
    """Where to run: a running scheduler's address, or the size of an embedded LocalCluster."""

    scheduler: str | None = None
    workers: int | None = None  # default: one per core (dask.system.CPU_COUNT honours cgroup limits)
    threads_per_worker: int = 1
    dashboard_address: str = DEFAULT_DASHBOARD
    processes: bool = False  # embedded workers as threads of this process (see dask_client)


@contextmanager
def dask_client(
    spec: ClusterSpec, connect_timeout: float = 10.0, worker_wait: float = 30.0
) -> Iterator[Client]:
    """Yield a connected client; raise ClusterError with a one-line reason if there is none."""
    # A batched stream that closes as the job ends (a worker or the client let go) is logged
    # by Dask at INFO with its whole traceback: not a failure, and a user would read it as one.
    logging.getLogger("distributed.batched").setLevel(logging.WARNING)
    scheduler = spec.scheduler
    if scheduler:
        try:
            client = Client(scheduler, timeout=connect_timeout)
        except (OSError, TimeoutError, ValueError) as e:
            raise ClusterError(
                f"cannot reach the Dask scheduler at {scheduler} "
                f"within {connect_timeout:g} s ({type(e).__name__})"
            ) from None
        try:
            try:
                client.wait_for_workers(1, timeout=worker_wait)
            except (TimeoutError, OSError):
                raise ClusterError(
                    f"the Dask scheduler at {scheduler} has no workers (waited {worker_wait:g} s)"
                ) from None
            yield client
        finally:
            _quiet_close(client)
        return
    # Failed videos are reported in the failure table and manifest; the workers' own
    # "Compute Failed" log lines would only repeat them as tracebacks.
    # Workers in this process by default: decoding runs in ffmpeg, JPEG encoding in
    # libjpeg-turbo without the GIL, and pipe reads and file writes release it too, so
    # threads use the cores as well as worker processes do, while worker processes
    # cost each its own interpreter, imports and start.  Measured on 20 one-second
    # clips with 2 workers: 10.4 s of CPU as threads against 17.9 s as processes.
    with _workers_ignore_ctrl_c(), dask.config.set(EMBEDDED_CONFIG):
        cluster = LocalCluster(
            n_workers=spec.workers or CPU_COUNT,
            threads_per_worker=spec.threads_per_worker,
            processes=spec.processes,
            # Loopback TCP, as worker processes would use: in-process workers would
            # otherwise default to inproc:// and a dashboard link on the machine's address.
            protocol="tcp://",
            host="127.0.0.1",
            dashboard_address=spec.dashboard_address,
            # The HTTP server still listens there; LazyDashboard adds the Bokeh pages.
            scheduler_kwargs={"dashboard": False},
            silence_logs=logging.CRITICAL,
        )
    if spec.dashboard_address:
        cluster.sync(LazyDashboard(cluster.scheduler).install)
    client = Client(cluster)
    try:
        yield client
    finally:
        _quiet_close(client)
        cluster.close()


@contextmanager
def _workers_ignore_ctrl_c() -> Iterator[None]:
    """Start local workers with SIGINT ignored (the disposition survives into them).

    Ctrl-C reaches every process of the terminal's group: the client stops the job in
    order and closes the cluster; workers dying on their own would only print tracebacks.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _quiet_close(client: Client) -> None:
    try:
        client.close(timeout=5)
    except Exception:  # noqa: BLE001 - closing a client to a dead scheduler may raise anything
        pass

"""Get a Dask client: to a running scheduler, or to an embedded LocalCluster."""

from __future__ import annotations

import logging
import re
import signal
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dask
from dask.system import CPU_COUNT
from distributed import Client, LocalCluster

from ..errors import SnhooError, UsageError
from .dashboard import LazyDashboard

DEFAULT_DASHBOARD = ":8787"
# Each worker's profiler walks every thread's stack under the GIL 100 times a second; in
# this process (workers as threads) that held the GIL for 2.5 % of a job of 300 one-second
# clips.  Ten times a second still fills the dashboard's Profile page.
EMBEDDED_CONFIG = {"distributed.worker.profile.interval": "100ms"}


class ClusterError(SnhooError):
    pass


# What Dask's Client takes: [scheme://]host[:port], host a name, an IPv4 or a [bracketed] IPv6.
SCHEMES = ("tcp", "tls", "ws", "wss", "ucx", "inproc")
_ADDRESS = re.compile(
    r"(?:(?P<scheme>[a-z]+)://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(?P<port>[0-9]{1,5}))?"
)


def check_address(address: str) -> str:
    """The scheduler address as given, or a UsageError at once for one Dask could never
    reach (``tcp//host:8786``): without this, a typo waits out the connect timeout."""
    m = _ADDRESS.fullmatch(address.strip())
    if (
        m is None
        or (m["scheme"] is not None and m["scheme"] not in SCHEMES)
        or (m["port"] is not None and not 0 < int(m["port"]) < 65536)
    ):
        raise UsageError(
            f"{address!r} is not a Dask scheduler address; write it as tcp://HOST:PORT "
            "(e.g. tcp://10.0.0.1:8786; also tls://)"
        )
    return address.strip()


def unreachable_hint(address: str) -> str:
    """What to check when no scheduler answers at ``address``."""
    m = _ADDRESS.fullmatch(address)
    port = (m["port"] if m else None) or "8786"
    return (
        f"check that a scheduler runs there (dask scheduler, or the lab's snhoo-dask-scheduler "
        f"service), that port {port} is open from this machine, and the address"
    )


@dataclass(frozen=True)
class ClusterSpec:
    """Where to run: a running scheduler's address, or the size of an embedded LocalCluster."""

    scheduler: str | None = None
    workers: int | None = None  # default: one per core (dask.system.CPU_COUNT honours cgroup limits)
    threads_per_worker: int = 1
    dashboard_address: str = DEFAULT_DASHBOARD
    processes: bool = False  # embedded workers as threads of this process (see dask_client)
    log_level: int = logging.CRITICAL  # what the embedded cluster's own logs show (-v)


@contextmanager
def dask_client(
    spec: ClusterSpec,
    connect_timeout: float = 10.0,
    worker_wait: float = 30.0,
    warn: Callable[[str], None] = lambda message: None,
) -> Iterator[Client]:
    """Yield a connected client; raise ClusterError with a one-line reason if there is none.
    ``warn``: told, in one line each, what Dask would have warned about in several."""
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
                f"within {connect_timeout:g} s ({type(e).__name__}); {unreachable_hint(scheduler)}"
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
    with (
        _workers_ignore_ctrl_c(),
        dask.config.set(EMBEDDED_CONFIG),
        warnings.catch_warnings(record=True) as said,
    ):
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
            silence_logs=spec.log_level,
        )
    _retell(said, warn)
    if spec.dashboard_address and cluster.scheduler is not None:  # in-process: always there
        cluster.sync(LazyDashboard(cluster.scheduler).install)
    client = Client(cluster)
    try:
        yield client
    finally:
        _quiet_close(client)
        cluster.close()


def _retell(said: list[warnings.WarningMessage], warn: Callable[[str], None]) -> None:
    """Dask's warnings while the cluster started: the busy dashboard port in one line of
    ours (Dask's is three, with its source line), any other as Python shows it."""
    for w in said:
        text = str(w.message)
        busy = re.search(r"Port (\d+) is already in use.*?on port (\d+) instead", text, re.S)
        if busy:
            warn(
                f"port {busy[1]} is in use (another Dask dashboard?); this cluster's dashboard "
                f"is on port {busy[2]} instead (--dashboard-address to choose)"
            )
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


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

"""Start the web service: one Dask client, the job store, the Tornado app."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field

import tornado.web
from tornado.netutil import bind_sockets

from ..errors import UsageError
from ..jobs.cluster import DEFAULT_DASHBOARD, ClusterSpec, dask_client
from ..jobs.dashboard import dashboard_link
from . import auth, browse
from . import handlers as h
from .bodies import HARD_HEADERS, BoundedBodies
from .connections import DEFAULT_MAX_CONNECTIONS, CappedServer, connection_cap, open_file_limit
from .runner import Runner
from .static import STATIC, StaticFile
from .store import JobStore
from .submission import MAX_BODY
from .validate import MISSING, NOT_RESPONDING, PathPolicy

# Bodies past MAX_BODY (a job is a few hundred bytes) get a 413 with a reason: the rest is read
# and thrown away, never kept (see bodies.py).  Past HARD_BODY (by Content-Length, or counted
# for a chunked body) Tornado drops the connection unread, writing only a bare
# "400 Bad Request": a client still sending then sees a reset rather than an answer.  Reading
# that much costs bandwidth only, so the bound is generous.
HARD_BODY = 64 * MAX_BODY

# A client that stalls (idle, or sending its headers or body a byte at a time) is cut off
# after TIMEOUT seconds; no client address holds more than MAX_CONNECTIONS connections at
# once (the next ones get a 503 and are closed).  Both can be set by the environment.  The
# cap on all connections comes from the limit on open files (connections.connection_cap).
TIMEOUT_ENV, DEFAULT_TIMEOUT = "SNHOO_WEB_TIMEOUT", 30.0
MAX_CONNECTIONS_ENV = "SNHOO_WEB_MAX_CONNECTIONS"  # default: DEFAULT_MAX_CONNECTIONS, 64

HERE = os.path.dirname(__file__)
log = logging.getLogger("snhoo_dask.web")


class ServeError(UsageError):
    """The service cannot start; the message is one line for the user."""


@dataclass(frozen=True)
class Limits:
    """How long a connection may stall, how many one client address may hold, and how many
    the service holds in all (derived from the open file limit, see connection_cap)."""

    timeout: float = DEFAULT_TIMEOUT
    per_client: int = DEFAULT_MAX_CONNECTIONS
    total: int = field(default_factory=connection_cap)

    @classmethod
    def from_env(cls, env=os.environ) -> Limits:
        timeout = _env_number(env, TIMEOUT_ENV, float, DEFAULT_TIMEOUT, 0.1, 3600, "a number of seconds")
        per_client = _env_number(
            env, MAX_CONNECTIONS_ENV, int, DEFAULT_MAX_CONNECTIONS, 1, 100000, "a whole number"
        )
        return cls(timeout, per_client)


def _env_number(env, name: str, kind, default, low, high, words: str):
    """``$name`` as ``kind`` within [low, high], ``default`` when unset; ServeError otherwise."""
    try:
        value = kind(env.get(name) or default)
        if not low <= value <= high:
            raise ValueError
    except ValueError:
        raise ServeError(f"${name} must be {words} from {low} to {high}") from None
    return value


@dataclass
class Service:
    store: JobStore
    runner: Runner
    policy: PathPolicy
    dashboard: str | None
    token: str
    hosts: frozenset[str]


def make_app(service: Service) -> tornado.web.Application:
    job = r"/jobs/([0-9A-Za-z-]+)"
    api = r"/api/jobs/([0-9A-Za-z-]+)"
    return tornado.web.Application(
        [
            (r"/", h.SubmitPage),
            (r"/submit", h.SubmitPage),
            (r"/jobs", h.JobsPage),
            (job, h.JobPage),
            (job + "/resume", h.ResumeForm),
            (job + "/stop", h.StopForm),
            (job + "/sheet", h.SheetImage),
            (job + "/report", h.ReportFile),
            (job + "/out/(.*)", h.OutputFile),
            (r"/api/jobs", h.ApiJobs),
            (api, h.ApiJob),
            (api + "/resume", h.ApiResume),
            (api + "/stop", h.ApiStop),
            (api + "/video", h.ApiVideo),
            (r"/api/disks", browse.ApiDisks),
            (r"/api/disks/eject", browse.ApiEject),
            (r"/api/folders", browse.ApiFolders),
            (r"/api/.*", h.ApiNotFound),
        ],
        template_path=os.path.join(HERE, "templates"),
        static_path=STATIC,
        static_handler_class=StaticFile,  # by descriptor, with the pages' Host check
        service=service,
        compress_response=True,
        cookie_secret=auth.cookie_secret(service.token),
        xsrf_cookies=True,
        xsrf_cookie_kwargs={"samesite": "Strict"},
    )


def check_bases(allow: list[str], out_base: list[str]) -> PathPolicy:
    """The folder policy; a folder that is missing (an unplugged disk) is only warned about."""
    if not allow:
        raise ServeError("give at least one --allow DIR: the folders under which jobs may read videos")
    policy = PathPolicy.make(allow, out_base)
    folders = policy.folders()  # bounded in time: a disk that hangs is only warned about
    for d, state in [*folders.allow, *folders.out_base]:
        if state == MISSING and os.path.lexists(d):
            raise ServeError(f"{d} is not a folder (given to --allow or --out-base)")
    for d in folders.unavailable():
        if dict([*folders.allow, *folders.out_base])[d] == NOT_RESPONDING:
            log.warning("%s is not responding (a hung disk?): shown as unavailable until it answers", d)
        else:
            log.warning("%s does not exist (yet): shown as unavailable until it appears", d)
    return policy


def serve(
    host: str = "127.0.0.1",
    port: int = 8888,
    allow: Sequence[str] = (),
    out_base: Sequence[str] = (),
    state_dir: str = "snhoo-state",
    scheduler: str | None = None,
    workers: int | None = None,
    threads_per_worker: int = 1,
    dashboard_address: str = DEFAULT_DASHBOARD,
    token: str | None = None,
    allowed_hosts: Sequence[str] = (),
    limits: Limits | None = None,
) -> None:
    """Run until SIGINT/SIGTERM; running jobs are then stopped and recorded as interrupted.

    ServeError (a configuration the service cannot start with) is raised before any
    cluster starts: the folders, the state folder, the token and the port come first.
    """
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    limits = limits or Limits.from_env()  # $SNHOO_WEB_TIMEOUT, $SNHOO_WEB_MAX_CONNECTIONS
    policy = check_bases(list(allow), list(out_base))
    try:
        store = JobStore(state_dir)
    except (OSError, sqlite3.Error) as e:
        raise ServeError(
            f"cannot use the state folder {state_dir}: {getattr(e, 'strerror', None) or e}"
        ) from None
    try:
        secret, from_file = auth.load_token(state_dir, token)
        sockets = bind_sockets(port, address=host)
    except auth.AuthError as e:
        store.close()
        raise ServeError(str(e)) from None
    except (OSError, ValueError) as e:
        store.close()
        raise ServeError(f"cannot listen on {host}:{port}: {getattr(e, 'strerror', None) or e}") from None
    port = sockets[0].getsockname()[1]
    hosts = auth.allowed_hosts(host, list(allowed_hosts))
    recovered = store.recover()
    if recovered:
        log.info("%d job(s) were running when the service last stopped; marked interrupted", recovered)
    try:
        spec = ClusterSpec(scheduler, workers, threads_per_worker, dashboard_address)
        with dask_client(spec, warn=log.warning) as client:
            _show_request_errors()
            service = Service(
                store,
                Runner(client, store),
                policy,
                dashboard_link(client, not scheduler, dashboard_address),
                secret,
                hosts,
            )
            try:
                asyncio.run(
                    _main(service, sockets, auth.login_url(host, port, secret if from_file else None), limits)
                )
            finally:
                service.runner.stop_all()
    finally:
        for sock in sockets:
            sock.close()
        store.close()


LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


def _show_request_errors() -> None:
    """Log every failed request with its traceback.  Dask's logging setup sends Tornado's
    loggers to one shared handler, which a local cluster turns down to CRITICAL for its
    life: without a handler of its own, a 500 would leave no trace at all."""
    app_log = logging.getLogger("tornado.application")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    app_log.addHandler(handler)
    app_log.setLevel(logging.ERROR)
    app_log.propagate = False


async def _main(
    service: Service, sockets: list[socket.socket], login: str, limits: Limits = Limits()
) -> None:
    server = CappedServer(
        BoundedBodies(make_app(service), MAX_BODY),
        xheaders=False,
        max_body_size=HARD_BODY,
        max_header_size=HARD_HEADERS,
        # Tornado's header timeout is this one: an idle connection, and one whose request
        # line and headers do not arrive whole within it, are closed.
        idle_connection_timeout=limits.timeout,
        body_timeout=limits.timeout,
        per_client=limits.per_client,
        total=limits.total,
    )
    server.add_sockets(sockets)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "snhoo-dask serve: roots under %s; outputs under %s; Dask dashboard %s (no login: keep it to the lab)",
        ", ".join(service.policy.allow),
        ", ".join(service.policy.out_base),
        service.dashboard,
    )
    log.info(
        "at most %d connections at once, %d from one address (%d open files at most)",
        limits.total,
        limits.per_client,
        open_file_limit(),
    )
    if "?token=" in login:
        log.info("open this login URL (the token is kept in the state folder, file 'token'):\n    %s", login)
    else:
        log.info("serving on %s (log in with the token given by --token or $%s)", login, auth.TOKEN_ENV)
    await stop.wait()
    log.info("stopping: interrupting running jobs")
    server.stop()
    # Job threads finish their bookkeeping (cancel tasks, record "interrupted") off the loop.
    await loop.run_in_executor(None, service.runner.stop_all)

"""Start the web service: one Dask client, the job store, the Tornado app."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from dataclasses import dataclass

import tornado.web
from distributed import Client

from ..cluster import DEFAULT_DASHBOARD, ClusterSpec, dask_client
from . import handlers as h
from .runner import Runner
from .store import JobStore
from .validate import PathPolicy

HERE = os.path.dirname(__file__)
log = logging.getLogger("snhoo_dask.web")


class ServeError(Exception):
    """The service cannot start; the message is one line for the user."""


@dataclass
class Service:
    store: JobStore
    runner: Runner
    policy: PathPolicy
    dashboard: str | None


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
            (r"/api/jobs", h.ApiJobs),
            (api, h.ApiJob),
            (api + "/resume", h.ApiResume),
            (api + "/stop", h.ApiStop),
            (r"/api/.*", h.ApiNotFound),
        ],
        template_path=os.path.join(HERE, "templates"),
        static_path=os.path.join(HERE, "static"),
        service=service,
        compress_response=True,
    )


def check_bases(allow: list[str], out_base: list[str]) -> PathPolicy:
    for d in [*allow, *out_base]:
        if not os.path.isdir(d):
            raise ServeError(f"{d} is not an existing folder (given to --allow or --out-base)")
    if not allow:
        raise ServeError("give at least one --allow DIR: the folders under which jobs may read videos")
    return PathPolicy.make(allow, out_base)


def serve(
    host: str = "127.0.0.1",
    port: int = 8888,
    allow: list[str] = (),
    out_base: list[str] = (),
    state_dir: str = "snhoo-state",
    scheduler: str | None = None,
    workers: int | None = None,
    threads_per_worker: int = 1,
    dashboard_address: str = DEFAULT_DASHBOARD,
) -> None:
    """Run until SIGINT/SIGTERM; running jobs are then stopped and recorded as interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    policy = check_bases(list(allow), list(out_base))
    try:
        store = JobStore(state_dir)
    except OSError as e:
        raise ServeError(f"cannot use the state folder {state_dir}: {e.strerror or e}") from None
    recovered = store.recover()
    if recovered:
        log.info("%d job(s) were running when the service last stopped; marked interrupted", recovered)
    with dask_client(ClusterSpec(scheduler, workers, threads_per_worker, dashboard_address)) as client:
        service = Service(store, Runner(client, store), policy, _dashboard(client))
        try:
            asyncio.run(_main(service, host, port))
        finally:
            service.runner.stop_all()
            store.close()


def _dashboard(client: Client) -> str | None:
    try:
        return client.dashboard_link
    except Exception:  # noqa: BLE001 - a scheduler without a dashboard is fine
        return None


async def _main(service: Service, host: str, port: int) -> None:
    app = make_app(service)
    try:
        server = app.listen(port, address=host, xheaders=False)
    except OSError as e:
        raise ServeError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "snhoo-dask serve on http://%s:%d/ (roots under %s; outputs under %s; Dask dashboard %s)",
        host,
        port,
        ", ".join(service.policy.allow),
        ", ".join(service.policy.out_base),
        service.dashboard,
    )
    await stop.wait()
    log.info("stopping: interrupting running jobs")
    server.stop()
    # Job threads finish their bookkeeping (cancel tasks, record "interrupted") off the loop.
    await loop.run_in_executor(None, service.runner.stop_all)

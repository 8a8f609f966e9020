"""The embedded cluster's Dask dashboard, built on its first visit.

Dask builds the dashboard's Bokeh application when the scheduler starts: importing
Bokeh and its models costs about 0.5 s of CPU on every run, most of a short job's
fixed cost, even when nobody opens the page.  Here the scheduler's HTTP server
listens on the dashboard address from the start (so the link works at once), and
the first request for a page no other route serves imports Bokeh in a thread, adds
Dask's own dashboard application to that server and sends the browser back to the
same address.  The page is Dask's own; only its first load waits for the import.
"""

from __future__ import annotations

import asyncio
import importlib

from distributed import Scheduler
from tornado import web

_DASK_DASHBOARD = "distributed.dashboard.scheduler"


class LazyDashboard:
    """Dask's dashboard on ``scheduler``'s HTTP server, connected on the first page request."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self._building: asyncio.Future | None = None
        self.app = web.Application([(r"/.*", _BuildOnFirstVisit, {"dashboard": self})])

    async def install(self) -> None:
        """Serve the first visit (a coroutine: it runs on the scheduler's event loop)."""
        # The scheduler's own routes (health, info, json, prometheus) answer first;
        # every other path reaches the applications added to it, in order.
        self.scheduler.http_application.add_application(self.app)

    async def build(self) -> None:
        """Connect Dask's dashboard once; concurrent first visits wait for the same build."""
        if self._building is None:
            self._building = asyncio.ensure_future(self._build())
        await asyncio.shield(self._building)

    async def _build(self) -> None:
        # The import runs in a thread so the scheduler keeps scheduling meanwhile.
        loop = asyncio.get_running_loop()
        module = await loop.run_in_executor(None, importlib.import_module, _DASK_DASHBOARD)
        server = self.scheduler
        module.connect(server.http_application, server.http_server, server, prefix="/")
        # Dask's application now answers these paths; this one steps aside.
        server.http_application.applications.remove(self.app)


class _BuildOnFirstVisit(web.RequestHandler):
    def initialize(self, dashboard: LazyDashboard) -> None:
        self.dashboard = dashboard

    async def get(self) -> None:
        try:
            await self.dashboard.build()
        except ImportError as e:
            self.set_status(503)
            self.finish(f"The Dask dashboard cannot start: {e} (pip install bokeh)\n")
            return
        # Back to the same page, which Dask's dashboard now serves.  Only as a path of this
        # server: "//host/..." (or "/\\host/...") would send the browser to another site.
        self.redirect("/" + self.request.uri.lstrip("/\\"))

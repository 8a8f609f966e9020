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
import importlib.util
import urllib.error
import urllib.request

from distributed import Client, Scheduler
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


PROBE_SECONDS = 3.0  # a remote scheduler's dashboard page asked for at most this long


def dashboard_link(client: Client, embedded: bool, address: str) -> str | None:
    """The Dask dashboard's address to show, or None where there is none to open.

    Dask gives a link whenever the scheduler's HTTP server listens, and it always does: also
    for a scheduler started with ``--no-dashboard`` (its /status is a 404) or without Bokeh
    (a page asking to install it).  So an embedded cluster's link is shown only with a
    dashboard address and Bokeh importable (LazyDashboard builds it then), and a remote
    scheduler's only if its status page is not one of those two.  A page that cannot be
    asked for here (TLS, a slow network) keeps its link: that says nothing of the browser's."""
    try:
        link = client.dashboard_link
    except Exception:  # noqa: BLE001 - Dask's KeyError when the scheduler lists no dashboard
        return None
    if not link:
        return None
    if embedded:
        return link if address and _bokeh_there() else None
    return link if _has_dashboard(link) else None


def _bokeh_there() -> bool:
    """Whether Bokeh can be imported, without importing it (that is LazyDashboard's 0.5 s)."""
    try:
        return importlib.util.find_spec("bokeh") is not None
    except (ImportError, ValueError):  # a broken or blocked install
        return False


def _has_dashboard(link: str) -> bool:
    try:
        with urllib.request.urlopen(link, timeout=PROBE_SECONDS) as answer:
            return b"needs bokeh" not in answer.read(65536).lower()
    except urllib.error.HTTPError as e:
        return e.code != 404
    except ConnectionRefusedError:
        return False
    except urllib.error.URLError as e:
        return not isinstance(e.reason, ConnectionRefusedError)
    except OSError:  # a timeout: unknown here
        return True

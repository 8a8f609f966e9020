"""What every page and API call shares: the Host and token checks (``Base``), reads of a
job's output folder off the event loop and bounded in time, and the headers for anything
read from there."""

from __future__ import annotations

import functools
import os
from contextlib import ExitStack
from urllib.parse import urlencode

import tornado.escape
import tornado.web
from tornado.ioloop import IOLoop

from ...errors import JobError
from ...fs.bounded import Stuck, bounded, bounded_all
from ...jobs.job import Job
from .. import auth, files
from ..store import ERROR
from ..submission import MAX_BODY, RequestError, Submission
from ..validate import build_job

# Nothing that touches a disk runs on the event loop: a disk that hangs would stop every page
# and API call of every user.  Reads of a job's output folder run in threads of their own
# (fs/bounded.py), waited for DISK_SECONDS at most after the folder itself answered within
# LOOK_SECONDS; past that the answer is a 503 and the next request does not wait again.
LOOK_SECONDS = 1.0
DISK_SECONDS = 10.0
HUNG = "the disk holding this job's output folder is not responding"


def _read_out(fn, out: str, *args):
    bounded(("dir", out), lambda: os.path.exists(out), LOOK_SECONDS)
    return bounded((fn.__name__, out, *args), functools.partial(fn, out, *args), DISK_SECONDS)


async def from_out(fn, out: str, *args):
    """``fn(out, *args)`` off the loop and bounded in time; 503 if its disk hangs."""
    try:
        return await IOLoop.current().run_in_executor(None, _read_out, fn, out, *args)
    except Stuck:
        raise tornado.web.HTTPError(503, reason=HUNG) from None


def _reports(outs: list[str]) -> dict[str, bool]:
    """Which of these output folders hold a report, each folder read at once in its own
    thread: a hung one is shown without one."""
    found = bounded_all(
        {("has_report", o): functools.partial(files.has_report, o) for o in outs}, LOOK_SECONDS
    )
    return {o: found[("has_report", o)] is True for o in outs}


# What is sent from a job's output folder is not the service's own: anyone who can run jobs
# (or write there by other means) can put a report.html of theirs in it.  So it is served
# as a page of no origin (CSP sandbox without allow-same-origin): its script, if any, cannot
# read the service's cookies or pages, and cannot fetch, post a form, open a window or frame
# anything.  The report's own script (the BokehJS chart, inline) still runs; nosniff keeps a
# browser from taking a file for something else than its Content-Type.
REPORT_CSP = (
    "sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; img-src data:; connect-src 'none'; form-action 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
FILE_CSP = "sandbox; default-src 'none'; img-src data:; frame-ancestors 'none'"


def untrusted(handler: tornado.web.RequestHandler, csp: str = FILE_CSP) -> None:
    """The headers for anything read from a job's output folder."""
    handler.set_header("Content-Security-Policy", csp)
    handler.set_header("X-Content-Type-Options", "nosniff")
    handler.set_header("Referrer-Policy", "no-referrer")
    handler.set_header("Cross-Origin-Resource-Policy", "same-origin")


def check_host(handler: tornado.web.RequestHandler, hosts: frozenset[str]) -> None:
    """403 unless the Host header names this service (DNS rebinding; see auth)."""
    if not auth.host_allowed(handler.request.headers.get("Host"), hosts):
        raise tornado.web.HTTPError(
            403, reason="this service does not answer to that Host name (see --allowed-host)"
        )


class Base(tornado.web.RequestHandler):
    """Every page and API call: Host check, then the token (header, login URL or cookie)."""

    by_header = False  # the token came in an Authorization header: an API client, no XSRF
    _guarded = False

    @property
    def svc(self):
        return self.application.settings["service"]

    def guard(self) -> None:
        if self._guarded:
            return
        self._guarded = True
        check_host(self, self.svc.hosts)
        if len(self.request.body) > MAX_BODY:
            raise tornado.web.HTTPError(413, reason=f"the request body is larger than {MAX_BODY // 1024} KiB")
        token = self.svc.token
        offered = auth.header_token(self.request.headers.get("Authorization"))
        if offered is not None:
            if not auth.token_matches(token, offered):
                self.refuse_login("wrong token")
            self.by_header = True
            return
        query = self.get_query_argument("token", None)
        if query is not None and self.request.method in ("GET", "HEAD"):
            if not auth.token_matches(token, query):
                self.refuse_login("wrong token")
            self.set_signed_cookie(auth.COOKIE, "1", expires_days=30, httponly=True, samesite="Lax")
            # The token leaves the address bar (and the history) at once, as in Jupyter.
            rest = {k: v[-1] for k, v in self.request.query_arguments.items() if k != "token"}
            self.redirect(self.request.path + ("?" + urlencode(rest) if rest else ""))
            return
        if self.get_signed_cookie(auth.COOKIE, max_age_days=30) is None:
            self.refuse_login("log in first")

    def refuse_login(self, why: str) -> None:
        raise tornado.web.HTTPError(
            401,
            reason=f"{why}: open the login URL printed by snhoo-dask serve "
            "(the token is in the file 'token' in its state folder)",
        )

    def prepare(self) -> None:
        self.guard()

    def why(self, status_code: int, kwargs: dict) -> str:
        """A short reason for an error answer: ours or Tornado's, never a traceback."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if status_code >= 500 and not isinstance(exc, tornado.web.HTTPError):
            return "internal error (logged by the service with its traceback)"
        if isinstance(exc, tornado.web.HTTPError) and exc.log_message and not exc.args:
            return exc.log_message  # e.g. Tornado's XSRF refusal
        return self._reason

    def write_error(self, status_code: int, **kwargs) -> None:
        reason = tornado.escape.xhtml_escape(self.why(status_code, kwargs))
        self.finish(
            f"<!DOCTYPE html><html><head><title>{status_code}: {reason}</title></head>"
            f"<body><h1>{status_code}</h1><p>{reason}</p></body></html>"
        )

    def check_xsrf_cookie(self) -> None:
        # Tornado calls this before prepare(): who is asking is settled first.
        self.guard()
        if not self.by_header:
            super().check_xsrf_cookie()

    def job_or_404(self, job_id: str) -> dict:
        job = self.svc.store.get(job_id)
        if job is None:
            raise tornado.web.HTTPError(404, reason=f"no job {job_id}")
        return job

    async def public(self, *jobs: dict) -> list[dict]:
        """The jobs as the API shows them: running, and whether a report can be opened."""
        reports = await IOLoop.current().run_in_executor(None, _reports, sorted({j["out"] for j in jobs}))
        return [
            dict(job, running=self.svc.runner.is_running(job["id"]), has_report=reports[job["out"]])
            for job in jobs
        ]

    async def folders(self):
        """The --allow and --out-base folders and their states, looked at off the loop."""
        return await IOLoop.current().run_in_executor(None, self.svc.policy.folders)

    async def start(self, sub: Submission, job_id: str | None = None) -> str:
        """Validate off the event loop (discovery walks folders) and start; return the job id."""
        svc = self.svc
        claimed: list[str] = []

        def claim(out: str) -> None:
            if not svc.runner.claim(out):
                raise RequestError(
                    409,
                    f"another job of this service is writing to {out}, or to a folder inside or "
                    "around it; wait for it or choose another output folder",
                    "out",
                )
            claimed.append(out)

        def prepare() -> tuple[Job, ExitStack]:
            job = build_job(sub, svc.policy, claim)
            return job, _taken(job)

        held: ExitStack | None = None
        try:
            job, held = await IOLoop.current().run_in_executor(None, prepare)
            if job_id is None:
                job_id = job.settings.run_id
                svc.store.create(
                    job_id, sub.spec(), job.settings.out, _roots(job), job.settings.selection.describe()
                )
            try:
                svc.runner.start(job_id, job, held)
            except Exception as e:
                # The job row exists: it must not stay "running" with nothing behind it.
                svc.store.finish(job_id, ERROR, f"could not start: {type(e).__name__}")
                raise
        except BaseException:
            if held is not None:
                held.close()
            for out in claimed:
                svc.runner.release(out)
            raise
        return job_id

    async def resume(self, job_id: str) -> None:
        job = self.job_or_404(job_id)
        if self.svc.runner.is_running(job_id):
            raise RequestError(409, "this job is already running")
        spec = dict(job["spec"], overwrite=False)  # resume = skip what is already done
        await self.start(Submission.from_json(spec), job_id)


def _taken(job: Job) -> ExitStack:
    """The job's output folder taken for it now (opened, locked, checked, taken over; see
    ``Job.holding``), until the ExitStack is closed: a folder another run holds (a
    ``snhoo-dask run`` writing there) is a 409 to the request, not a job that can only end
    in error."""
    held = ExitStack()
    try:
        held.enter_context(job.holding())
    except JobError as e:
        raise RequestError(409, str(e), "out") from None
    return held


def _roots(job) -> list[str]:
    seen = []
    for v in job.videos:
        if v.root not in seen:
            seen.append(v.root)
    return seen

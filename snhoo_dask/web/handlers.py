"""Tornado handlers: three pages (submit, jobs, job) and the JSON API under them."""

from __future__ import annotations

import functools
import json
import os
import time
from urllib.parse import urlencode

import tornado.escape
import tornado.web
from tornado.ioloop import IOLoop

from ..frames.selection import MODE_LIST, MODES
from ..fs.bounded import Stuck, bounded, bounded_all
from ..options import SECTIONS
from ..output.layout import REPORT
from ..output.sheets import FRAMES_CSV, MAX_IMAGE_BYTES
from . import auth, files
from .store import ERROR, QUEUED, RUNNING
from .validate import MAX_BODY, WEB_OPTIONS, RequestError, Submission, build_job, other_problems

MODE_LABELS = {m.name: m.label for m in MODE_LIST}

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

        try:
            job = await IOLoop.current().run_in_executor(None, build_job, sub, svc.policy, claim)
            if job_id is None:
                job_id = job.settings.run_id
                svc.store.create(
                    job_id, sub.spec(), job.settings.out, _roots(job), job.settings.selection.describe()
                )
            try:
                svc.runner.start(job_id, job)
            except Exception as e:
                # The job row exists: it must not stay "running" with nothing behind it.
                svc.store.finish(job_id, ERROR, f"could not start: {type(e).__name__}")
                raise
        except BaseException:
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


def _roots(job) -> list[str]:
    seen = []
    for v in job.videos:
        if v.root not in seen:
            seen.append(v.root)
    return seen


# -- pages ------------------------------------------------------------------------------


class SubmitPage(Base):
    async def get(self) -> None:
        await self.form(Submission(roots=[]), None, 200)

    async def form(
        self, sub: Submission, error: RequestError | None, status: int, others: list[RequestError] = ()
    ) -> None:
        folders = await self.folders()
        self.set_status(status)
        errors = [error, *others] if error else []
        self.render(
            "submit.html",
            sub=sub,
            error=error,
            errors=errors,
            bad={e.field for e in errors if e.field},
            modes=MODES,
            mode_labels=MODE_LABELS,
            sections=FORM_SECTIONS,
            advanced_open=_advanced_open(sub, errors),
            allow=[p for p, _ in folders.allow],
            out_base=[p for p, _ in folders.out_base],
            unavailable=folders.unavailable(),
            dashboard=self.svc.dashboard,
        )

    async def post(self) -> None:
        sub = Submission(roots=[])
        try:
            sub = Submission.from_form(lambda name, default: self.get_body_argument(name, default))
            job_id = await self.start(sub)
        except RequestError as e:
            shown = e.sub or sub
            known = {e.field, *(o.field for o in e.others)}
            more = await IOLoop.current().run_in_executor(None, other_problems, shown, self.svc.policy, known)
            await self.form(shown, e, e.status, [*e.others, *more])
            return
        self.redirect(f"/jobs/{job_id}", status=303)


# The form's options by section, from their one declaration (options.py).
FORM_SECTIONS = {s: [d for d in WEB_OPTIONS if d.meta.section == s] for s in SECTIONS}


def _advanced_open(sub: Submission, errors: list[RequestError]) -> bool:
    """Advanced is shown open when it holds a field at fault or anything not left as is."""
    advanced = FORM_SECTIONS["advanced"]
    if {e.field for e in errors} & {d.web_name for d in advanced}:
        return True
    return any(getattr(sub, d.name) != d.default for d in advanced)


class JobsPage(Base):
    def get(self) -> None:
        self.render("jobs.html", dashboard=self.svc.dashboard)


class JobPage(Base):
    def get(self, job_id: str) -> None:
        job = self.job_or_404(job_id)
        self.render("job.html", job=job, dashboard=self.svc.dashboard)


class ResumeForm(Base):
    async def post(self, job_id: str) -> None:
        try:
            await self.resume(job_id)
        except RequestError as e:
            raise tornado.web.HTTPError(e.status, reason=e.message) from None
        self.redirect(f"/jobs/{job_id}", status=303)


class StopForm(Base):
    def post(self, job_id: str) -> None:
        self.job_or_404(job_id)
        self.svc.runner.stop(job_id)
        self.redirect(f"/jobs/{job_id}", status=303)


class SheetImage(Base):
    """A few frames of one video of one job, as one JPEG strip."""

    async def get(self, job_id: str) -> None:
        job = self.job_or_404(job_id)
        rel = self.svc.store.video_path(job_id, self.get_query_argument("v", ""))
        if rel is None:
            raise tornado.web.HTTPError(404)
        jpeg = await from_out(files.job_sheet, job["out"], rel)
        if jpeg is None:
            raise tornado.web.HTTPError(404)
        untrusted(self)
        self.set_header("Content-Type", "image/jpeg")
        self.set_header("Cache-Control", "max-age=60")
        self.write(jpeg)


class ReportFile(Base):
    """The old address of a job's report: it now sits at /jobs/ID/out/report.html, where its
    relative links to the videos' folders lead to their pages."""

    def get(self, job_id: str) -> None:
        self.job_or_404(job_id)
        self.redirect(f"/jobs/{job_id}/out/{REPORT}")


PER_PAGE = 60  # images on one page of a video's page
MAX_CSV_BYTES = 256 * 1024 * 1024
IMAGE_TYPES = {".jpg": "image/jpeg", ".png": "image/png"}


class OutputFile(Base):
    """/jobs/ID/out/...: the job's output folder as report.html's relative links name it.

    ``report.html``; ``<video>/``, the page of one video's images; ``<video>/<image>`` (with
    ``?thumb=1``, a small copy) and ``<video>/frames.csv``.  ``<video>`` is one of the job's
    own videos, named by its folder's bytes (percent-encoded): a path from the URL is only
    ever compared with the job's records, never opened as such.
    """

    def decode_argument(self, value, name=None):
        return value  # the bytes as sent: a folder's name need not be UTF-8

    def video_or_404(self, job_id: str, raw: bytes) -> dict:
        video = self.svc.store.video(job_id, raw)
        if video is None:
            raise tornado.web.HTTPError(404, reason="not a video of this job")
        return video

    async def get(self, job_id: bytes, rest: bytes) -> None:
        job_id = job_id.decode("ascii")
        job = self.job_or_404(job_id)
        if rest == REPORT.encode():
            await self.report(job)
        elif rest.endswith(b"/"):
            await self.video_page(job, self.video_or_404(job_id, rest[:-1]))
        elif self.svc.store.video(job_id, rest) is not None:
            self.redirect(self.request.path + "/")
        else:
            parent, _, name = rest.rpartition(b"/")
            await self.image(job, self.video_or_404(job_id, parent), name)

    async def report(self, job: dict) -> None:
        try:
            body = await from_out(files.read_report, job["out"])
        except FileNotFoundError:
            raise tornado.web.HTTPError(
                404, reason="no report yet (it is written when the job ends)"
            ) from None
        except OSError:  # a link or not a plain file, in or on the way to the output folder
            raise tornado.web.HTTPError(
                404, reason="no report: it is not a plain file inside the job's output folder"
            ) from None
        untrusted(self, REPORT_CSP)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.write(body)

    async def video_page(self, job: dict, video: dict) -> None:
        try:
            page = max(1, int(self.get_query_argument("page", "1")))
        except ValueError:
            page = 1
        rel = os.fsdecode(video["raw"])
        listed = None
        if video["status"] in ("ok", "partial", "skipped"):
            listed = await from_out(files.listing, job["out"], rel, (page - 1) * PER_PAGE, PER_PAGE)
        pages = max(1, -(-listed.total // PER_PAGE)) if listed else 1
        self.render(
            "video.html",
            job=job,
            video=video,
            listed=listed,
            page=min(page, pages),
            pages=pages,
            per_page=PER_PAGE,
            dashboard=self.svc.dashboard,
            record_url=f"/api/jobs/{job['id']}/video?" + urlencode({"v": video["key"]}),
        )

    async def image(self, job: dict, video: dict, name: bytes) -> None:
        try:
            text_name = name.decode("ascii")
        except UnicodeDecodeError:
            raise tornado.web.HTTPError(404) from None
        rel = os.fsdecode(video["raw"])
        if text_name == FRAMES_CSV:
            data = await from_out(files.frame_file, job["out"], rel, text_name, MAX_CSV_BYTES)
            ctype = "text/plain; charset=utf-8"  # shown in the browser, not downloaded
        elif self.get_query_argument("thumb", None):
            data = await from_out(files.frame_thumb, job["out"], rel, text_name)
            ctype = "image/jpeg"
        else:
            data = await from_out(files.frame_file, job["out"], rel, text_name, MAX_IMAGE_BYTES)
            ctype = IMAGE_TYPES.get(os.path.splitext(text_name)[1], "application/octet-stream")
        if data is None:
            raise tornado.web.HTTPError(404, reason="no such image in this video's output")
        untrusted(self)
        self.set_header("Content-Type", ctype)
        self.set_header("Cache-Control", "private, max-age=60")
        self.write(data)


# -- JSON API ---------------------------------------------------------------------------


class Api(Base):
    """Scripts send ``Authorization: token TOKEN`` (no XSRF token needed); the service's own
    pages call it with their cookie, and then a POST needs the XSRF token like a form."""

    def write_json(self, data, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        # backslashreplace: a stray undecodable name must not turn an answer into a 500.
        self.finish(json.dumps(data, ensure_ascii=False, default=str).encode("utf-8", "backslashreplace"))

    def write_error(self, status_code: int, **kwargs) -> None:
        self.write_json({"error": self.why(status_code, kwargs), "status": status_code}, status_code)

    def refuse(self, e: RequestError) -> None:
        self.write_json({"error": e.message, "field": e.field, "status": e.status}, e.status)

    def known_job(self, job_id: str) -> dict | None:
        """The stored job, or None after answering 404."""
        job = self.svc.store.get(job_id)
        if job is None:
            self.write_json({"error": f"no job {job_id}", "status": 404}, 404)
        return job

    def body_json(self):
        ctype = self.request.headers.get("Content-Type", "").split(";")[0].strip()
        if ctype != "application/json":
            raise RequestError(415, "send the job as JSON (Content-Type: application/json)")
        try:
            return json.loads(self.request.body or b"")
        except ValueError as e:
            raise RequestError(400, f"the request body is not valid JSON: {e}"[:200]) from None


class ApiJobs(Api):
    async def get(self) -> None:
        jobs = await self.public(*self.svc.store.list())
        folders = await self.folders()
        self.write_json(
            {
                "jobs": jobs,
                "folders": folders.to_json(),
                "dashboard": self.svc.dashboard,
                "now": time.time(),
            }
        )

    async def post(self) -> None:
        try:
            job_id = await self.start(Submission.from_json(self.body_json()))
        except RequestError as e:
            self.refuse(e)
            return
        self.set_header("Location", f"/api/jobs/{job_id}")
        (shown,) = await self.public(self.svc.store.get(job_id))
        self.write_json(shown, 201)


class ApiJob(Api):
    """The job with its videos.  ``?since=N`` (the ``cursor`` of an earlier answer): only the
    videos changed since (``partial`` true), unless the job began a new run since, when
    every video comes again (``partial`` false) and replaces what the caller had."""

    async def get(self, job_id: str) -> None:
        job = self.known_job(job_id)
        if job is None:
            return
        try:
            since = int(self.get_query_argument("since", "-1"))
        except ValueError:
            self.write_json({"error": "since must be a whole number (a cursor)", "status": 400}, 400)
            return
        live = self.svc.runner.progress(job_id)
        videos, cursor, whole = self.svc.store.changes(job_id, since)
        running = live.running if live is not None else {}
        if not whole and running:
            # Being decoded changes no row: the videos running now come with every answer.
            sent = {v["out_rel"] for v in videos}
            videos += self.svc.store.videos_named(job_id, [n for n in running if n not in sent])
        for v in videos:
            # Being decoded now: "running", with its pieces finished of its pieces.
            pieces = running.get(v["out_rel"]) if v["status"] == QUEUED else None
            v["state"] = "running" if pieces else v["status"]
            if pieces:
                v["pieces_done"], v["pieces"] = pieces
        progress = live.to_json() if live is not None else None
        (shown,) = await self.public(job)
        self.write_json(
            dict(
                shown,
                videos=videos,
                cursor=cursor,
                partial=not whole,
                dashboard=self.svc.dashboard,
                progress=progress,
            )
        )


class ApiVideo(Api):
    """One video of a job (``?v=KEY``) with its full record, the manifest's line."""

    def get(self, job_id: str) -> None:
        if self.known_job(job_id) is None:
            return
        raw = self.svc.store.video_path(job_id, self.get_query_argument("v", ""))
        video = None if raw is None else self.svc.store.video(job_id, os.fsencode(raw))
        if video is None:
            self.write_json({"error": "not a video of this job", "status": 404}, 404)
            return
        video.pop("raw")
        video["record"] = json.loads(video["record"]) if video["record"] else None
        self.write_json(video)


class ApiResume(Api):
    async def post(self, job_id: str) -> None:
        if self.known_job(job_id) is None:
            return
        try:
            await self.resume(job_id)
        except RequestError as e:
            self.refuse(e)
            return
        (shown,) = await self.public(self.svc.store.get(job_id))
        self.write_json(shown, 202)


class ApiStop(Api):
    def post(self, job_id: str) -> None:
        if self.known_job(job_id) is None:
            return
        if not self.svc.runner.stop(job_id):
            self.write_json({"error": "this job is not running", "status": 409}, 409)
        else:
            self.write_json({"id": job_id, "stopping": True, "state": RUNNING}, 202)


class ApiNotFound(Api):
    def prepare(self) -> None:
        self.guard()
        self.write_json({"error": f"no such API endpoint: {self.request.path}", "status": 404}, 404)

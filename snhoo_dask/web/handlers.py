"""Tornado handlers: three pages (submit, jobs, job) and the JSON API under them."""

from __future__ import annotations

import json
import os
import time

import tornado.web
from tornado.ioloop import IOLoop

from ..layout import REPORT, video_dir
from ..selection import MODES
from ..sheets import contact_sheet
from ..writers import FORMATS
from .store import RUNNING
from .validate import RequestError, Submission, build_job

MODE_LABELS = {
    "all": "All frames",
    "every": "Every Nth frame",
    "fps": "Frames per second",
    "frames": "Chosen frame numbers",
    "times": "Chosen times",
    "keyframes": "Key frames only",
}


class Base(tornado.web.RequestHandler):
    @property
    def svc(self):
        return self.application.settings["service"]

    def job_or_404(self, job_id: str) -> dict:
        job = self.svc.store.get(job_id)
        if job is None:
            raise tornado.web.HTTPError(404, reason=f"no job {job_id}")
        return job

    def public(self, job: dict) -> dict:
        job = dict(job)
        job["running"] = self.svc.runner.is_running(job["id"])
        job["has_report"] = os.path.exists(os.path.join(job["out"], REPORT))
        return job

    async def start(self, sub: Submission, job_id: str | None = None) -> str:
        """Validate off the event loop (discovery walks folders) and start; return the job id."""
        svc = self.svc
        job = await IOLoop.current().run_in_executor(None, build_job, sub, svc.policy, svc.runner.busy_outs())
        if job_id is None:
            job_id = job.settings.run_id
            svc.store.create(
                job_id, sub.spec(), job.settings.out, _roots(job), job.settings.selection.describe()
            )
        svc.runner.start(job_id, job)
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
    def get(self) -> None:
        self.form(Submission(roots=[]), None, 200)

    def form(self, sub: Submission, error: RequestError | None, status: int) -> None:
        self.set_status(status)
        self.render(
            "submit.html",
            sub=sub,
            error=error,
            modes=MODES,
            mode_labels=MODE_LABELS,
            formats=FORMATS,
            allow=self.svc.policy.allow,
            out_base=self.svc.policy.out_base,
            dashboard=self.svc.dashboard,
        )

    async def post(self) -> None:
        sub = Submission(roots=[])
        try:
            sub = Submission.from_form(lambda name, default: self.get_body_argument(name, default))
            job_id = await self.start(sub)
        except RequestError as e:
            self.form(sub, e, e.status)
            return
        self.redirect(f"/jobs/{job_id}", status=303)


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
            raise tornado.web.HTTPError(e.status, reason=e.message.splitlines()[0][:200]) from None
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
        out_rel = self.get_query_argument("v", "")
        # Only videos of this job: the name comes from the job, never a path from the URL.
        if not self.svc.store.has_video(job_id, out_rel):
            raise tornado.web.HTTPError(404)
        folder = video_dir(job["out"], out_rel)
        jpeg = await IOLoop.current().run_in_executor(None, contact_sheet, folder)
        if jpeg is None:
            raise tornado.web.HTTPError(404)
        self.set_header("Content-Type", "image/jpeg")
        self.set_header("Cache-Control", "max-age=60")
        self.write(jpeg)


class ReportFile(Base):
    def get(self, job_id: str) -> None:
        job = self.job_or_404(job_id)
        try:
            with open(os.path.join(job["out"], REPORT), "rb") as f:
                body = f.read()
        except FileNotFoundError:
            raise tornado.web.HTTPError(
                404, reason="no report yet (it is written when the job ends)"
            ) from None
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.write(body)


# -- JSON API ---------------------------------------------------------------------------


class Api(Base):
    def check_xsrf_cookie(self) -> None:
        pass  # scripts call the API without a browser session

    def write_json(self, data, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(data, ensure_ascii=False, default=str))

    def write_error(self, status_code: int, **kwargs) -> None:
        reason = self._reason
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, tornado.web.HTTPError) and exc.log_message:
            reason = exc.log_message
        self.write_json({"error": reason, "status": status_code}, status_code)

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
            raise RequestError(400, f"the request body is not valid JSON: {e}") from None


class ApiJobs(Api):
    def get(self) -> None:
        self.write_json(
            {
                "jobs": [self.public(j) for j in self.svc.store.list()],
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
        self.write_json(self.public(self.svc.store.get(job_id)), 201)


class ApiJob(Api):
    def get(self, job_id: str) -> None:
        job = self.known_job(job_id)
        if job is None:
            return
        self.write_json(
            dict(self.public(job), videos=self.svc.store.videos(job_id), dashboard=self.svc.dashboard)
        )


class ApiResume(Api):
    async def post(self, job_id: str) -> None:
        if self.known_job(job_id) is None:
            return
        try:
            await self.resume(job_id)
        except RequestError as e:
            self.refuse(e)
            return
        self.write_json(self.public(self.svc.store.get(job_id)), 202)


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
        self.write_json({"error": f"no such API endpoint: {self.request.path}", "status": 404}, 404)

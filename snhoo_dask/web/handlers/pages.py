"""The pages: submit, jobs, one job, and a job's output folder as its report links it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from urllib.parse import urlencode

import tornado.web
from tornado.ioloop import IOLoop

from ...frames.selection import MODE_LIST, MODES
from ...options import SECTIONS
from ...output.folder import REPORT
from ...output.sheets import FRAMES_CSV, MAX_IMAGE_BYTES
from .. import files
from ..submission import WEB_OPTIONS, RequestError, Submission
from ..validate import other_problems
from .base import REPORT_CSP, Base, from_out, untrusted

MODE_LABELS = {m.name: m.label for m in MODE_LIST}


class SubmitPage(Base):
    async def get(self) -> None:
        await self.form(Submission(roots=[]), None, 200)

    async def form(
        self, sub: Submission, error: RequestError | None, status: int, others: Sequence[RequestError] = ()
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

    async def get(self, raw_id: bytes, rest: bytes) -> None:
        job_id = raw_id.decode("ascii")
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

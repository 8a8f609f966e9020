"""The JSON API under /api: jobs, one job and its videos, resume and stop."""

from __future__ import annotations

import json
import os
import time

from ..store import QUEUED, RUNNING
from ..submission import RequestError, Submission
from .base import Base


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
        except RecursionError:  # the C decoder's depth bound: not a bug of ours, a hostile body
            raise RequestError(400, "the request body is nested too deeply to be a job") from None


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

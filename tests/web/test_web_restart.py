"""Stop the service mid-job, start it again: the job shows interrupted, and resume finishes it
with the same output as one clean ``snhoo-dask run``."""

from __future__ import annotations

import os
import time

import pytest
from helpers import CHROMIUM_ARGS, run_on, start_dask, start_serve, tree
from videos import ffmpeg, make_video

from snhoo_dask.web.store import RUNNING, JobStore

pytestmark = pytest.mark.timeout(400)  # a restart and a resume; slow on a loaded machine


def long_video(path: str, seconds: int = 12) -> None:
    # testsrc is much faster to encode than make_video's per-pixel expression, and this
    # video only has to keep one worker busy for a few seconds.
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc=s=480x360:r=25", "-t", str(seconds), "-c:v", "mpeg4", "-q:v", "5", path
    )


def test_store_marks_jobs_left_running_as_interrupted(tmp_path):
    store = JobStore(str(tmp_path))
    store.create("j1", {"roots": ["a"]}, "/out", ["/a"], "all frames")
    assert store.get("j1")["state"] == RUNNING
    store.close()
    store = JobStore(str(tmp_path))  # the next service process
    assert store.recover() == 1
    job = store.get("j1")
    assert job["state"] == "interrupted" and "resume" in job["message"]


@pytest.mark.cluster
@pytest.mark.slow
def test_restart_mid_job_then_resume_from_the_page(tmp_path):
    from playwright.sync_api import sync_playwright

    tmp = str(tmp_path)
    base, out_base, state = (os.path.join(tmp, d) for d in ("lab", "frames", "state"))
    root = os.path.join(base, "day1")
    long_video(os.path.join(root, "long.mp4"))
    for i in range(4):
        make_video(os.path.join(root, "short", f"s{i}.mp4"), seconds=1)
    os.makedirs(out_base)
    dask = start_dask(tmp)
    svc = start_serve(tmp, dask.address, [base], [out_base], state, name="serve1")
    try:
        code, job = svc.call("/api/jobs", "POST", {"roots": ["day1"], "out": "day1-frames", "format": "png"})
        assert code == 201, job
        # Stop the service once some videos are done but the long one is not.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            _, now = svc.call(f"/api/jobs/{job['id']}")
            if now["done"] >= 1:
                break
            time.sleep(0.1)
        assert 1 <= now["done"] < now["total"], now
        assert svc.stop() == 0  # SIGTERM: an orderly stop
        first_token = svc.token
        svc = start_serve(tmp, dask.address, [base], [out_base], state, name="serve2")
        assert svc.token == first_token  # STATE/token is reused: the login URL survives a restart
        _, again = svc.call(f"/api/jobs/{job['id']}")
        assert again["state"] == "interrupted" and not again["running"], again
        assert again["done"] < again["total"]

        shots = os.path.join(tmp, "screenshots")
        os.makedirs(shots)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 860})
                page.goto(svc.login_url())
                page.goto(f"{svc.url}/jobs/{job['id']}")
                page.wait_for_selector("#state.interrupted")
                page.screenshot(path=os.path.join(shots, "interrupted.png"), full_page=True)
                page.click("#resume")
                page.wait_for_selector("#state.done", timeout=120_000)
                page.wait_for_selector("#report-link:not([hidden])", timeout=20_000)
                page.screenshot(path=os.path.join(shots, "resumed.png"), full_page=True)
            finally:
                browser.close()
        done = svc.wait_job(job["id"])
        assert (done["state"], done["ok"] + done["skipped"], done["failed"], done["runs"]) == (
            "done",
            5,
            0,
            2,
        ), done
        assert done["skipped"] >= 1  # what finished before the stop was not redone

        clean = os.path.join(tmp, "clean")
        res = run_on(dask, root, "-o", clean, "--format", "png")
        assert res.returncode == 0, res.stderr
        resumed, expected = tree(os.path.join(out_base, "day1-frames")), tree(clean)
        assert len(expected) == 300 + 4 * 25 + 5  # every frame, plus one frames.csv per video
        assert resumed.keys() == expected.keys()
        assert all(resumed[k] == expected[k] for k in expected)
    finally:
        svc.stop()
        dask.stop()

"""--keep-partial through ``snhoo-dask serve``: the job counts partial videos on their own,
in its JSON and on its page in a real browser."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import CHROMIUM_ARGS, start_embedded_serve
from partial_videos import cut_videos

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def test_job_page_counts_partial_videos(tmp_path):
    from playwright.sync_api import sync_playwright

    lab, frames = tmp_path / "lab", tmp_path / "frames"
    cut_videos(lab / "cam")
    os.makedirs(frames)
    svc = start_embedded_serve(str(tmp_path), [str(lab)], [str(frames)])
    try:
        code, reply = svc.call("/api/jobs", "POST", {"roots": ["cam"], "out": "set", "keep_partial": True})
        assert code == 201, reply
        job = svc.wait_job(reply["id"], timeout=180)
        assert (job["state"], job["ok"], job["partial_videos"], job["failed"], job["done"]) == (
            "done_failures",
            1,
            2,
            0,
            3,
        ), job
        assert "2 of 3 videos partial" in job["message"]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.goto(svc.login_url())
                page.goto(f"{svc.url}/jobs/{reply['id']}")
                page.wait_for_selector("#summary .card.partial")
                assert page.inner_text("#summary .card.partial") == "2\npartial"
                page.wait_for_selector("tr.st-partial")
                assert page.locator("tr.st-partial").count() == 2
                assert "truncated: decoded" in page.inner_text("tr.st-partial >> nth=0")
            finally:
                browser.close()
        assert Path(frames, "set", "cam", "cut.mp4", "frames.csv").exists()
    finally:
        svc.stop()

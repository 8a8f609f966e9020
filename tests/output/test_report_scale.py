"""report.html's figures and its table at scale: a video cut into pieces counts under the
workers that extracted them (old manifests too), plurals are right, and a report of
thousands of videos (records written directly, nothing decoded) is one page of rows at a
time whose filters find a failed video among all of them, at a phone's width as well."""

from __future__ import annotations

import os
import time

import pytest
from helpers import CHROMIUM_ARGS

from snhoo_dask.model import VideoRecord
from snhoo_dask.output.manifest import load_manifest
from snhoo_dask.output.report import build_report, render, summarize, throughput_series

pytestmark = pytest.mark.timeout(180)


def record(i: int, status: str = "ok", **kw) -> VideoRecord:
    now = time.time()
    base = dict(run="20261207T120000-abcdef", root="/lab/day1", video=f"cam{i % 10}/v{i:05d}.mp4")
    base["out"] = f"day1/{base['video']}"
    r = VideoRecord(**base, frames=10 if status == "ok" else 0, worker=str(i % 2), seconds=1.0)
    r.status, r.finished_at = status, now - 1000 + i
    if status == "failed":
        r.error = "not a readable video: moov atom not found"
    for k, v in kw.items():
        setattr(r, k, v)
    return r


def test_a_cut_video_counts_under_the_workers_of_its_pieces():
    cut = record(1, worker="1, 0", pieces=3, frames=500, worker_frames={"1": 300, "0": 200})
    s = summarize([cut])
    assert s["workers"] == ["0", "1"]  # two workers, not a third called "1, 0"
    series = {line["worker"]: line["n"][-1] for line in throughput_series([cut])}
    assert series == {"0": 200, "1": 300}
    # A manifest from before worker_frames: its workers from the text, its images shared out.
    old = record(2, worker="1, 0", pieces=2, frames=501)
    assert summarize([old])["workers"] == ["0", "1"]
    assert {line["worker"]: line["n"][-1] for line in throughput_series([old])} == {"0": 250, "1": 251}
    # One worker, one video: said in the singular.
    page = render("/nowhere", [record(4, worker="0")])
    assert "<b>1</b>worker<" in page and "<b>1</b>video<" in page and "1 workers" not in page


def test_worker_frames_survive_the_manifest(tmp_path):
    cut = record(1, worker="1, 0", pieces=2, frames=5, worker_frames={"1": 3, "0": 2})
    (tmp_path / "manifest.jsonl").write_text(
        cut.to_json() + "\n" + '{"run": "x", "root": "/", "video": "a", '
        '"out": "a", "worker_frames": ["not", "a", "dict"]}\n'
    )
    m = load_manifest(str(tmp_path))
    assert [r.worker_frames for r in m.records] == [{"1": 3, "0": 2}] and m.bad_lines == [2]


@pytest.mark.slow
def test_a_report_of_8000_videos_finds_its_failed_one_in_one_action(tmp_path):
    from playwright.sync_api import sync_playwright

    out = tmp_path / "out"
    out.mkdir()
    records = [record(i) for i in range(8000)]
    records[4711] = record(4711, "failed")
    with open(out / "manifest.jsonl", "w") as f:
        f.writelines(r.to_json() + "\n" for r in records)
    report = build_report(str(out))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            for w, h in ((1280, 800), (390, 844)):
                page = browser.new_page(viewport={"width": w, "height": h})
                page.goto(f"file://{report}")
                page.wait_for_selector("table.videos tbody tr")
                # One page of rows in the document, not 8,000.
                assert page.locator("table.videos tbody tr").count() == 100
                assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
                page.select_option("#filter-status", "failed")
                assert (
                    page.locator("table.videos tbody tr")
                    .all_inner_texts()[0]
                    .startswith("day1/cam1/v04711.mp4\tfailed")
                )
                assert page.locator("table.videos tbody tr").count() == 1
                assert page.inner_text("#shown") == "1 of 8000 videos shown"
                page.select_option("#filter-status", "")
                page.fill("#filter-text", "v0471")  # v04710 to v04719
                assert page.locator("table.videos tbody tr").count() == 10
                # A good video's name links to its folder, relative to the report.
                href = page.get_attribute("table.videos tbody tr:nth-child(2) a.video-link", "href")
                assert href == "day1/cam0/v04710.mp4/"
                page.fill("#filter-text", "")
                page.click("#page-next")
                assert page.inner_text("#page-at") == "page 2 of 80"
                page.screenshot(path=os.path.join(tmp_path, f"report-8000-{w}.png"))
                page.close()
        finally:
            browser.close()

"""The pages in a real Chromium, at a desktop's and a phone's width: none scrolls sideways
(wide tables scroll inside their box), every video links to a page of its images whose
thumbnails open full size, tars are listed from inside, and the running page is fed the
videos changed since its last look, not the whole job each time."""

from __future__ import annotations

import csv
import os
import urllib.parse

import pytest
from helpers import CHROMIUM_ARGS, start_embedded_serve
from videos import make_video

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SHOTS = os.environ.get("SNHOO_SHOTS")  # a folder to keep the screenshots in (else tmp)
VIEWPORTS = {"desktop": (1280, 800), "phone": (390, 844)}
FITS = "document.documentElement.scrollWidth <= window.innerWidth"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("pages"))
    lab, frames = os.path.join(tmp, "lab"), os.path.join(tmp, "frames")
    make_video(os.path.join(lab, "day1", "cam1", "a.mp4"), seconds=2)
    # A name long enough to push a table wider than a phone.
    make_video(os.path.join(lab, "day1", "cam2", "a-rather-long-name-for-a-phone-screen_0001.mp4"), seconds=1)
    os.makedirs(os.path.join(lab, "day1", "bad"))
    with open(os.path.join(lab, "day1", "bad", "broken.mp4"), "wb") as f:
        f.write(b"not a video at all " * 100)
    os.makedirs(frames)
    svc = start_embedded_serve(tmp, [lab], [frames])
    try:
        code, job = svc.call(
            "/api/jobs", "POST", {"roots": ["day1"], "out": "day1-frames", "mode": "every", "value": "5"}
        )
        assert code == 201, job
        job = svc.wait_job(job["id"])
        code, tar = svc.call(
            "/api/jobs",
            "POST",
            {"roots": ["day1"], "out": "day1-tar", "mode": "every", "value": "10", "pack": "tar"},
        )
        assert code == 201, tar
        tar = svc.wait_job(tar["id"])
        yield svc, job, tar, tmp
    finally:
        svc.stop()


def shots_dir(tmp: str) -> str:
    d = SHOTS or os.path.join(tmp, "screenshots")
    os.makedirs(d, exist_ok=True)
    return d


def browser_page(p, width: int, height: int, svc):
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(svc.login_url())
    return browser, page


def test_every_page_fits_a_phone_and_a_desktop(served):
    from playwright.sync_api import sync_playwright

    svc, job, _, tmp = served
    video = f"/jobs/{job['id']}/out/day1/cam1/a.mp4/"
    pages = {
        "form": "/",
        "jobs": "/jobs",
        "job": f"/jobs/{job['id']}",
        "video": video,
        "report": f"/jobs/{job['id']}/out/report.html",
    }
    wide = {}
    with sync_playwright() as p:
        for w, h in VIEWPORTS.values():
            browser, page = browser_page(p, w, h, svc)
            try:
                for name, path in pages.items():
                    page.goto(svc.url + path)
                    if name == "job":
                        page.wait_for_selector("#videos tbody tr a.video-link")
                    if name == "jobs":
                        page.wait_for_selector("#jobs tbody tr[data-job]")
                    if name == "report":
                        page.wait_for_selector("table.videos tbody tr")
                    page.screenshot(
                        path=os.path.join(shots_dir(tmp), f"pages-{name}-{w}.png"), full_page=True
                    )
                    if not page.evaluate(FITS):
                        wide[(name, w)] = page.evaluate("document.documentElement.scrollWidth")
                # The web form shows every error of a submission at once, not only the first.
                page.goto(svc.url + "/")
                page.fill("#roots", "no-such-folder")
                page.check("input[name=mode][value=every]")
                page.fill("#value", "often")
                page.click("#advanced summary")
                page.fill("#timeout", "-5")
                page.click("#start")
                page.wait_for_selector("#error")
                errors = page.locator("#errors li").all_inner_texts()
                page.screenshot(
                    path=os.path.join(shots_dir(tmp), f"pages-form-errors-{w}.png"), full_page=True
                )
                assert len(errors) == 3, errors
                for said in ("no-such-folder", "often", "timeout"):
                    assert any(said in e for e in errors), (said, errors)
                for field in ("roots", "value", "timeout"):
                    assert "bad" in page.get_attribute("#" + field, "class"), field
                assert page.evaluate(FITS)
            finally:
                browser.close()
    assert wide == {}, f"pages wider than the window: {wide}"


def test_a_video_links_to_its_images_and_a_thumbnail_opens_full_size(served):
    from playwright.sync_api import sync_playwright

    svc, job, _, tmp = served
    folder = os.path.join(job["out"], "day1", "cam1", "a.mp4")
    with open(os.path.join(folder, "frames.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["frame"] for r in rows] == [str(n) for n in range(0, 50, 5)]
    with sync_playwright() as p:
        for w, h in VIEWPORTS.values():
            browser, page = browser_page(p, w, h, svc)
            try:
                page.goto(f"{svc.url}/jobs/{job['id']}")
                page.click("a.video-link >> text=day1/cam1/a.mp4")
                page.wait_for_url("**/out/day1/cam1/a.mp4/")
                captions = page.locator("ul.frames .caption").all_inner_texts()
                assert captions == [f"frame {r['frame']} · {float(r['timestamp']):.3f} s" for r in rows]
                # Thumbnails load lazily, after the page: measure them once each has loaded or failed.
                page.wait_for_function(
                    "[...document.querySelectorAll('ul.frames img')].every(i => i.complete)"
                )
                thumbs = page.eval_on_selector_all("ul.frames img", "els => els.map(e => e.naturalWidth)")
                assert len(thumbs) == 10 and all(t == 64 for t in thumbs), thumbs  # 64x48: never enlarged
                assert page.evaluate(FITS)
                page.screenshot(path=os.path.join(shots_dir(tmp), f"pages-video-{w}.png"), full_page=True)
                # Click to enlarge: the viewer shows the image itself, full size.
                page.click("ul.frames a.frame >> nth=2")
                page.wait_for_selector("dialog#viewer[open]")
                page.wait_for_function("document.getElementById('viewer-image').naturalWidth > 0")
                src = page.get_attribute("#viewer-image", "src")
                assert src == rows[2]["file"]
                assert "frame 10" in page.inner_text("#viewer-caption")
                page.screenshot(path=os.path.join(shots_dir(tmp), f"pages-video-enlarged-{w}.png"))
                page.keyboard.press("ArrowRight")
                assert page.get_attribute("#viewer-image", "src") == rows[3]["file"]
                page.keyboard.press("Escape")
                # frames.csv and the record are a click away.
                text = page.goto(page.url + "frames.csv").text()
                with open(os.path.join(folder, "frames.csv"), newline="") as f:
                    assert text == f.read()
            finally:
                browser.close()
    # The image sent is the file on disk; the record is the manifest's.
    base = f"/jobs/{job['id']}/out/day1/cam1/a.mp4/"
    code, body = svc.call(base + rows[2]["file"], ctype=None)
    key = urllib.parse.quote("day1/cam1/a.mp4", safe="")
    code, v = svc.call(f"/api/jobs/{job['id']}/video?v={key}")
    assert code == 200 and v["record"]["frames"] == 10 and v["record"]["status"] == "ok", v


def test_a_tar_video_is_listed_from_inside_its_tar(served):
    from playwright.sync_api import sync_playwright

    svc, _, tar, tmp = served
    with sync_playwright() as p:
        browser, page = browser_page(p, 390, 844, svc)
        try:
            page.goto(f"{svc.url}/jobs/{tar['id']}")
            page.click("a.video-link >> text=day1/cam1/a.mp4.tar")
            page.wait_for_url("**/out/day1/cam1/a.mp4.tar/")
            assert "--pack tar" in page.inner_text("#packed-note")
            captions = page.locator("ul.frames .caption").all_inner_texts()
            assert captions == [f"frame {n} · {n / 25:.3f} s" for n in range(0, 50, 10)]
            page.wait_for_function(
                "Array.from(document.querySelectorAll('ul.frames img')).every(i => i.naturalWidth === 64)"
            )
            page.screenshot(path=os.path.join(shots_dir(tmp), "pages-video-tar-390.png"), full_page=True)
        finally:
            browser.close()


def test_the_job_api_sends_only_what_changed_since_a_cursor(served):
    svc, job, _, _ = served
    code, whole = svc.call(f"/api/jobs/{job['id']}")
    assert code == 200 and not whole["partial"] and len(whole["videos"]) == 3
    code, since = svc.call(f"/api/jobs/{job['id']}?since={whole['cursor']}")
    assert code == 200 and since["partial"] and since["videos"] == [] and since["cursor"] == whole["cursor"]
    # A cursor from before the job's run: every video again, to replace what the page had.
    code, old = svc.call(f"/api/jobs/{job['id']}?since=0")
    assert not old["partial"] and len(old["videos"]) == 3
    assert svc.call(f"/api/jobs/{job['id']}?since=x")[0] == 400
    # Names from the URL are only compared with the job's own videos.
    for path in (
        "day1/../../etc/passwd/",
        "day1/cam1/a.mp4/../../../report.html",
        "day1/cam1/a.mp4/.snhoo-done.json",
    ):
        code, _ = svc.call(f"/jobs/{job['id']}/out/{path}", ctype=None)
        assert code == 404, path

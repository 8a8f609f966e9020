"""``snhoo-dask serve``: the JSON API and the pages in a real browser, against real Dask processes."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from helpers import CHROMIUM_ARGS, Serve, manifest, small_corpus, start_dask, start_serve
from videos import make_video

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(180)]


@dataclass
class Env:
    tmp: str
    base: str  # --allow
    out_base: str  # --out-base
    outside: str  # a folder with videos that the service must not read
    svc: Serve
    scheduler: str


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("web"))
    base, out_base, outside = (os.path.join(tmp, d) for d in ("lab", "frames", "elsewhere"))
    small_corpus(os.path.join(base, "160811测试", "test"))
    os.makedirs(os.path.join(base, "empty"))
    with open(os.path.join(base, "notes.txt"), "w") as f:
        f.write("not a folder")
    make_video(os.path.join(outside, "secret.mp4"), seconds=1)
    os.makedirs(out_base)
    dask = start_dask(tmp)
    svc = start_serve(tmp, dask.address, [base], [out_base], os.path.join(tmp, "state"))
    try:
        yield Env(tmp, base, out_base, outside, svc, dask.address)
    finally:
        svc.stop()
        dask.stop()


ROOT = "160811测试/test"

BAD_REQUESTS = [
    # (body, status, field, words in the message)
    ({}, 400, "roots", "at least one root"),
    ({"roots": ROOT}, 400, "roots", "must be a list"),  # one string is not a list of roots
    ({"roots": 5}, 400, "roots", "list of folder paths"),
    ({"roots": [ROOT], "colour": "red"}, 400, None, "unknown field"),
    ({"roots": ["missing"]}, 400, "roots", "does not exist"),
    ({"roots": ["notes.txt"]}, 400, "roots", "neither a folder nor a video file"),
    ({"roots": ["empty"]}, 400, "roots", "no videos found"),
    ({"roots": ["/etc"]}, 403, "roots", "outside the folders"),
    ({"roots": ["../elsewhere"]}, 403, "roots", "outside the folders"),
    ({"roots": [ROOT], "out": "/tmp/anywhere"}, 403, "out", "outside the folders"),
    ({"roots": [ROOT], "mode": "every", "value": "0"}, 400, "value", "every must be 1 or more"),
    ({"roots": [ROOT], "mode": "every", "value": "x"}, 400, "value", "whole number"),
    ({"roots": [ROOT], "mode": "frames", "value": "5-1"}, 400, "value", "runs backwards"),
    ({"roots": [ROOT], "mode": "times", "value": "1:75"}, 400, "value", "below 60"),
    ({"roots": [ROOT], "mode": "fps", "value": ""}, 400, "value", "needs a value"),
    ({"roots": [ROOT], "mode": "sometimes"}, 400, "mode", "unknown frame selection"),
    ({"roots": [ROOT], "format": "gif"}, 400, "format", "format must be one of jpg, png"),
    ({"roots": [ROOT], "quality": 101}, 400, "quality", "1 to 100"),
    ({"roots": [ROOT], "quality": "high"}, 400, "quality", "1 to 100"),
    ({"roots": [ROOT], "overwrite": "yes"}, 400, "overwrite", "true or false"),
    # How the workers run it: the command line's --stage, --timeout, ... (jobs/spec.py checks them).
    ({"roots": [ROOT], "stage": "sometimes"}, 400, "stage", "stage must be one of auto, always, never"),
    ({"roots": [ROOT], "stage": True}, 400, "stage", "must be a string"),
    ({"roots": [ROOT], "hwaccel": "gpu"}, 400, "hwaccel", "hwaccel must be one of auto, cuda, none"),
    ({"roots": [ROOT], "timeout": 0}, 400, "timeout", "from 1 to 86400, not 0"),
    ({"roots": [ROOT], "timeout": -5}, 400, "timeout", "from 1 to 86400, not -5"),
    ({"roots": [ROOT], "timeout": float("nan")}, 400, "timeout", "not nan"),  # sent as NaN
    ({"roots": [ROOT], "timeout": float("inf")}, 400, "timeout", "not inf"),  # sent as Infinity
    ({"roots": [ROOT], "timeout": "5"}, 400, "timeout", "a number of seconds"),
    (
        {"roots": [ROOT], "split_seconds": -1},
        400,
        "split_seconds",
        "split seconds must be a number of seconds",
    ),
    ({"roots": [ROOT], "split_seconds": 1e300}, 400, "split_seconds", "from 0 to 1000000"),
    ({"roots": [ROOT], "decode_all": 1}, 400, "decode_all", "true or false"),
    ({"roots": [ROOT], "scratch": "/tmp/anywhere"}, 400, "scratch", "scratch is not taken from the web"),
]


@pytest.mark.parametrize(
    "body,status,field,words", BAD_REQUESTS, ids=[f"{s}-{w.replace(' ', '_')}" for _, s, _, w in BAD_REQUESTS]
)
def test_api_refuses_bad_jobs_with_a_reason_and_starts_nothing(env, body, status, field, words):
    _, before = env.svc.call("/api/jobs")
    outputs = sorted(os.listdir(env.out_base))
    code, reply = env.svc.call("/api/jobs", "POST", body)
    assert (code, reply["field"]) == (status, field), reply
    assert words in reply["error"], reply
    _, after = env.svc.call("/api/jobs")
    assert [j["id"] for j in after["jobs"]] == [j["id"] for j in before["jobs"]]  # no job recorded
    assert sorted(os.listdir(env.out_base)) == outputs  # no output folder made
    assert not os.path.exists("/tmp/anywhere")  # nor one outside the allowed folders


def test_api_refuses_malformed_requests(env):
    call = env.svc.call
    assert call("/api/jobs", "POST", raw=b"roots=x", ctype="application/x-www-form-urlencoded")[0] == 415
    code, reply = call("/api/jobs", "POST", raw=b"{not json")
    assert code == 400 and "not valid JSON" in reply["error"]
    assert call("/api/jobs", "POST", body=["a list"])[0] == 400
    assert call("/api/jobs/nope")[0] == 404
    assert call("/api/jobs/nope/resume", "POST", body={})[0] == 404
    assert call("/api/jobs/nope/stop", "POST", body={})[0] == 404
    assert call("/api/nothing")[0] == 404
    assert call("/api/jobs/nope", "DELETE")[0] == 405


def test_api_job_runs_to_the_end_and_reports_each_video(env):
    call = env.svc.call
    code, job = call(
        "/api/jobs", "POST", {"roots": [ROOT], "out": "api-run", "mode": "frames", "value": "0,10,20"}
    )
    assert code == 201 and job["state"] == "running", job
    # The same output folder cannot be taken by a second job while the first runs.
    code, busy = call("/api/jobs", "POST", {"roots": [ROOT], "out": "api-run"})
    assert code == 409 and busy["field"] == "out", busy
    done = env.svc.wait_job(job["id"])
    assert (done["state"], done["total"], done["ok"], done["failed"], done["images"]) == (
        "done_failures",
        4,
        3,
        1,
        9,
    ), done
    assert done["videos"][0]["status"] == "failed"  # failures first
    assert "not a readable video" in done["videos"][0]["reason"]
    assert {v["worker"] for v in done["videos"] if v["status"] == "ok"} <= {"w0", "w1"}
    out = os.path.join(env.out_base, "api-run")
    assert sorted(os.listdir(os.path.join(out, "test", "cam1", "a.mp4"))) == [
        ".snhoo-done.json",
        "000000.jpg",
        "000010.jpg",
        "000020.jpg",
        "frames.csv",
    ]
    assert os.path.exists(os.path.join(out, "report.html"))
    assert call(f"/api/jobs/{job['id']}/stop", "POST", body={})[0] == 409  # not running
    # The dashboard's task stream and progress group tasks by key prefix: they read as videos.
    from distributed import Client

    with Client(env.scheduler, timeout=30) as c:
        prefixes = c.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes))
    assert "extract-video" in prefixes, prefixes
    # A finished job may be resumed: everything done is skipped.
    code, again = call(f"/api/jobs/{job['id']}/resume", "POST", body={})
    assert code == 202, again
    again = env.svc.wait_job(job["id"])
    assert (again["ok"], again["skipped"], again["failed"], again["runs"]) == (0, 3, 1, 2), again


def test_api_job_takes_the_run_options_to_its_settings_and_its_workers(env):
    """stage, decode_all, split_seconds, timeout and hwaccel reach the job's Settings (what
    every task receives) and the workers' records; resume keeps them."""
    call = env.svc.call
    body = {
        "roots": [ROOT],
        "out": "api-options",
        "mode": "every",
        "value": "5",
        "stage": "always",
        "decode_all": True,
        "split_seconds": 0,
        "timeout": 5,
        "hwaccel": "none",
    }
    code, job = call("/api/jobs", "POST", body)
    assert code == 201, job
    done = env.svc.wait_job(job["id"])
    assert done["state"] == "done_failures" and done["ok"] == 3, done
    spec = done["spec"]
    assert {k: spec[k] for k in ("stage", "decode_all", "split_seconds", "timeout", "hwaccel")} == {
        "stage": "always",
        "decode_all": True,
        "split_seconds": 0,
        "timeout": 5,
        "hwaccel": "none",
    }, spec
    ok = [r for r in manifest(os.path.join(env.out_base, "api-options")) if r["status"] == "ok"]
    assert len(ok) == 3
    # stage "always": copied to scratch although the corpus is on a local disk;
    # decode_all: every frame decoded (the plain path), not the fast path every 5 would take.
    assert all(r["staged"] for r in ok), ok
    assert {r["path"] for r in ok} == {"plain (--decode-all)"}, ok
    assert {r["decoder"] for r in ok} == {"cpu"}, ok
    assert {r["pieces"] for r in ok} == {0}, ok


def test_browser_submit_watch_review(env):
    """The old :8888 form, done right: errors on the page, then a job watched to the end."""
    from playwright.sync_api import sync_playwright

    u = env.svc.url
    shots = os.path.join(env.tmp, "screenshots")
    os.makedirs(shots, exist_ok=True)
    _, before = env.svc.call("/api/jobs")
    errors = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(env.svc.login_url())
            assert page.url == u + "/"  # logged in, and the token is out of the address bar

            # A wrong root: the reason is on the page and nothing starts.
            page.fill("#roots", "160811测试/tset")
            page.click("#start")
            page.wait_for_selector("#error")
            assert "does not exist" in page.inner_text("#error")
            assert page.input_value("#roots") == "160811测试/tset"  # what was typed is kept
            page.screenshot(path=os.path.join(shots, "wrong-root.png"), full_page=True)

            # A root outside the allowed folders is refused.
            page.fill("#roots", env.outside)
            page.click("#start")
            page.wait_for_selector("#error")
            assert "outside the folders" in page.inner_text("#error")
            page.screenshot(path=os.path.join(shots, "outside-root.png"), full_page=True)
            _, after = env.svc.call("/api/jobs")
            assert len(after["jobs"]) == len(before["jobs"])
            assert not os.listdir(env.out_base) or "elsewhere-frames" not in os.listdir(env.out_base)

            # A real job: every 5th frame of the corpus with its one bad video.
            page.fill("#roots", ROOT)
            page.fill("#out", "browser-run")
            page.check("input[name=mode][value=every]")
            page.fill("#value", "5")
            page.click("#start")
            page.wait_for_url("**/jobs/*")
            page.wait_for_selector("#state.done_failures", timeout=90_000)
            page.wait_for_selector("#report-link:not([hidden])", timeout=10_000)
            page.wait_for_function(
                "[...document.querySelectorAll('img.sheet')].length == 3 && "
                "[...document.querySelectorAll('img.sheet')].every(i => i.naturalWidth > 0)",
                timeout=20_000,
            )
            page.screenshot(path=os.path.join(shots, "job.png"), full_page=True)
            first = page.locator("#videos tbody tr").first
            assert "bad.mp4" in first.inner_text() and "not a readable video" in first.inner_text()
            summary = page.inner_text("#summary")
            assert "3\nok" in summary and "1\nfailed" in summary
            # Filter: only the failures.
            page.select_option("#filter-status", "failed")
            assert page.locator("#videos tbody tr").count() == 1
            page.select_option("#filter-status", "")
            page.fill("#filter-text", "cam1")
            assert page.locator("#videos tbody tr").count() == 2
            job_id = page.inner_text("#job-id")

            # The jobs page lists it, finished, with its counts.
            page.goto(u + "/jobs")
            row = page.locator(f"tr[data-job='{job_id}']")
            row.wait_for()
            assert "done with failures" in row.inner_text()
            assert page.locator("#nav-dashboard").get_attribute("href").startswith("http://127.0.0.1:")
            page.screenshot(path=os.path.join(shots, "jobs.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []


def test_browser_form_sends_the_dataset_and_advanced_options(env):
    """Every option the form has reaches the job: a wrong threshold is shown on its own
    field with what was typed kept; then the job runs with all of them and resume keeps them."""
    from playwright.sync_api import sync_playwright

    shots = os.path.join(env.tmp, "screenshots")
    os.makedirs(shots, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.goto(env.svc.login_url())
            page.fill("#roots", ROOT)
            page.fill("#out", "form-options")
            page.check("input[name=mode][value=every]")
            page.fill("#value", "5")
            page.fill("#max_side", "32")
            page.check("input[name=dedup]")
            page.fill("#dedup_hi", "300")
            page.fill("#dedup_lo", "400")
            page.fill("#dedup_frac", "0.5")
            page.click("#advanced summary")
            page.select_option("#stage", "always")
            page.select_option("#hwaccel", "none")
            page.fill("#timeout", "30")
            page.fill("#split_seconds", "0")
            page.fill("#max_pixels", "3072")
            page.check("input[name=decode_all]")
            page.click("#start")
            page.wait_for_selector("#error")
            assert "dedup lo (400) must not be above dedup hi (300)" in page.inner_text("#error")
            assert "bad" in page.get_attribute("#dedup_lo", "class")
            # Everything typed is there again, the advanced part open.
            assert page.input_value("#dedup_hi") == "300" and page.input_value("#dedup_frac") == "0.5"
            assert page.input_value("#max_pixels") == "3072" and page.input_value("#stage") == "always"
            assert page.is_visible("#split_seconds")
            page.screenshot(path=os.path.join(shots, "form-options-error.png"), full_page=True)

            page.fill("#dedup_lo", "200")
            page.click("#start")
            page.wait_for_url("**/jobs/*")
            page.wait_for_selector("#state.done_failures", timeout=90_000)
            job_id = page.inner_text("#job-id")
        finally:
            browser.close()
    _, job = env.svc.call(f"/api/jobs/{job_id}")
    picked = ("max_side", "dedup", "dedup_hi", "dedup_lo", "dedup_frac", "stage", "hwaccel", "timeout")
    assert {k: job["spec"][k] for k in picked} == {
        "max_side": 32,
        "dedup": True,
        "dedup_hi": 300,
        "dedup_lo": 200,
        "dedup_frac": 0.5,
        "stage": "always",
        "hwaccel": "none",
        "timeout": 30,
    }, job["spec"]
    assert (job["spec"]["split_seconds"], job["spec"]["max_pixels"], job["spec"]["decode_all"]) == (
        0,
        3072,
        True,
    )
    ok = [r for r in manifest(os.path.join(env.out_base, "form-options")) if r["status"] == "ok"]
    assert len(ok) == 3, ok
    assert all(r["staged"] and r["out_width"] == 32 for r in ok), ok
    assert {r["path"] for r in ok} == {"plain (--decode-all)"}, ok

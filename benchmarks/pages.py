"""The pages at scale, in a real Chromium: report.html and the web job page with 8,000 videos,
and the web service's memory over 90 jobs.  Prints what it measured.

    python -m benchmarks.pages [--videos 8000] [--jobs 90] [--only report,job,rss]
                               [--before CHECKOUT]

- **report scroll**: report.html of N records (written directly, nothing decoded), scrolled
  by a steady 40 px per animation frame for 120 frames; the median and 95th percentile
  time between frames (60 Hz is 16.7 ms).
- **job page**: a running job of N videos, a video recorded every 50 ms by a thread of a
  stand-in service (the real Tornado app and job store; only the Dask runner is a stub, it
  says the job runs), watched for 20 s: the main thread's busy share (Chrome's own
  TaskDuration over the wall time), the bytes the page fetched, and the scroll frame time.
- **server RSS**: a real ``snhoo-dask serve`` on its own one-worker cluster runs 90 jobs of
  one 1-second clip each, one after another; its RSS after the first, and every 10th.

``--before CHECKOUT`` measures the report and the job page with another checkout's code
too (its package on PYTHONPATH), in the same call.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
RUN = "20261207T120000-abcdef"

SCROLL = """async () => {
  const times = [];
  await new Promise(done => {
    let n = 0;
    function step(t) {
      times.push(t);
      window.scrollBy(0, 40);
      if (++n < 120) requestAnimationFrame(step); else done();
    }
    requestAnimationFrame(step);
  });
  return times.slice(1).map((t, i) => t - times[i]);
}"""


def records(n: int) -> list[str]:
    """N manifest lines: every 97th video failed, the rest ok with 10 images."""
    sys.path.insert(0, REPO)
    now = time.time()
    lines = []
    for i in range(n):
        video = f"cam{i % 10}/v{i:06d}.mp4"
        rec = {
            "run": RUN,
            "root": "/lab/day1",
            "video": video,
            "out": f"day1/{video}",
            "status": "failed" if i % 97 == 0 else "ok",
            "frames": 0 if i % 97 == 0 else 10,
            "error": "not a readable video: moov atom not found" if i % 97 == 0 else None,
            "worker": str(i % 2),
            "seconds": 0.5,
            "finished_at": now - n + i,
        }
        lines.append(json.dumps(rec))
    return lines


def frame_times(page) -> tuple[float, float]:
    page.evaluate("window.scrollTo(0, 0)")
    gaps = sorted(page.evaluate(SCROLL))
    return statistics.median(gaps), gaps[int(len(gaps) * 0.95) - 1]


def bench_report(n: int, code: str, browser) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out")
        os.makedirs(out)
        with open(os.path.join(out, "manifest.jsonl"), "w") as f:
            f.write("\n".join(records(n)) + "\n")
        t0 = time.monotonic()
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from snhoo_dask.output.report import build_report; build_report(sys.argv[1])",
                out,
            ],
            check=True,
            env=dict(os.environ, PYTHONPATH=code),
        )
        built = time.monotonic() - t0
        report = os.path.join(out, "report.html")
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        t0 = time.monotonic()
        page.goto(f"file://{report}")
        page.wait_for_load_state("load")
        loaded = time.monotonic() - t0
        median, p95 = frame_times(page)
        rows = page.evaluate("document.querySelectorAll('table.videos tr').length")
        height = page.evaluate("document.documentElement.scrollHeight")
        # The failed video among them, in one action (a filter where the page has one).
        found = None
        if page.query_selector("#filter-status"):
            t0 = time.monotonic()
            page.select_option("#filter-status", "failed")
            found = time.monotonic() - t0
        page.close()
    return {
        "build_s": built,
        "load_s": loaded,
        "scroll_median_ms": median,
        "scroll_p95_ms": p95,
        "rows_in_document": rows,
        "page_height_px": height,
        "filter_failed_s": found,
        "size_mb": None,
    }


# -- a stand-in service for the job page: the real app and store, a stub runner ----------

FAKE_SERVER = r"""
import asyncio, os, sys, threading, time
from snhoo_dask.model import VideoRecord
from snhoo_dask.jobs.summary import Summary
from snhoo_dask.web import server as s
from snhoo_dask.web.store import JobStore
from snhoo_dask.web.validate import PathPolicy
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

n, state = int(sys.argv[1]), sys.argv[2]
store = JobStore(state)
job = "bench"
store.create(job, {"roots": ["/lab/day1"]}, "/nowhere", ["/lab/day1"], "every 5th frame")
videos = [(f"day1/cam{i % 10}/v{i:06d}.mp4", "/lab/day1", f"cam{i % 10}/v{i:06d}.mp4") for i in range(n)]
store.begin_run(job, "run", videos)
summary = Summary()

class Runner:
    def is_running(self, job_id): return True
    def progress(self, job_id): return None

def record():
    for i, (out_rel, root, rel) in enumerate(videos):
        rec = VideoRecord(run="run", root=root, video=rel, out=out_rel, worker=str(i % 2), seconds=0.5)
        rec.finish("failed" if i % 97 == 0 else "ok", frames=10, error="broken" if i % 97 == 0 else None)
        summary.ok += 1
        store.record(job, rec, summary)
        time.sleep(0.05)

svc = s.Service(store, Runner(), PathPolicy.make(["/lab"], []), None, "x" * 32, frozenset({"127.0.0.1"}))
sockets = bind_sockets(0, address="127.0.0.1")
print(sockets[0].getsockname()[1], flush=True)
threading.Thread(target=record, daemon=True).start()

async def main():
    HTTPServer(s.make_app(svc)).add_sockets(sockets)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def bench_job_page(n: int, code: str, browser, watch: float = 20.0) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [sys.executable, "-c", FAKE_SERVER, str(n), tmp],
            stdout=subprocess.PIPE,
            env=dict(os.environ, PYTHONPATH=code),
            text=True,
        )
        try:
            port = int(proc.stdout.readline())
            url = f"http://127.0.0.1:{port}"
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            fetched = []
            page.on("response", lambda r: fetched.append(r) if "/api/jobs/" in r.url else None)
            page.goto(f"{url}/?token={'x' * 32}")
            page.goto(f"{url}/jobs/bench")
            page.wait_for_selector("#videos tbody tr")
            cdp = page.context.new_cdp_session(page)
            cdp.send("Performance.enable")

            def busy() -> float:
                m = {x["name"]: x["value"] for x in cdp.send("Performance.getMetrics")["metrics"]}
                return m["TaskDuration"]

            n_before = len(fetched)
            b0, t0 = busy(), time.monotonic()
            page.wait_for_timeout(watch * 1000)
            b1, t1 = busy(), time.monotonic()
            polls = fetched[n_before:]
            sizes = []
            for r in polls:
                try:
                    sizes.append(len(r.body()))
                except Exception:  # noqa: BLE001 - a response the page no longer holds
                    pass
            median, p95 = frame_times(page)
            rows = page.evaluate("document.querySelectorAll('#videos tbody tr').length")
            # The failed ones among all: one action on the filter.
            t2 = time.monotonic()
            page.select_option("#filter-status", "failed")
            page.wait_for_selector("#videos tbody tr.st-failed")
            found = time.monotonic() - t2
            page.close()
        finally:
            proc.kill()
            proc.wait()
    return {
        "busy_fraction": (b1 - b0) / (t1 - t0),
        "polls": len(polls),
        "bytes_per_poll": statistics.median(sizes) if sizes else None,
        "scroll_median_ms": median,
        "scroll_p95_ms": p95,
        "rows_in_document": rows,
        "filter_failed_s": found,
    }


# -- the service's memory over many jobs -------------------------------------------------


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_rss(jobs: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        lab, frames, state = (os.path.join(tmp, d) for d in ("lab", "frames", "state"))
        os.makedirs(os.path.join(lab, "day1"))
        os.makedirs(frames)
        subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=s=160x120:r=25:d=1",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
                os.path.join(lab, "day1", "a.mp4"),
            ],
            check=True,
        )
        port = free_port()
        log = open(os.path.join(tmp, "serve.log"), "wb")
        proc = subprocess.Popen(
            [
                "snhoo-dask",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--state-dir",
                state,
                "--allow",
                lab,
                "--out-base",
                frames,
                "--workers",
                "1",
                "--dashboard-address",
                "127.0.0.1:0",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    socket.create_connection(("127.0.0.1", port), 1).close()
                    break
                except OSError:
                    time.sleep(0.3)
            with open(os.path.join(state, "token")) as f:
                token = f.read().strip()

            def call(path: str, body=None) -> dict:
                req = urllib.request.Request(
                    url + path,
                    data=None if body is None else json.dumps(body).encode(),
                    headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
                )
                with urllib.request.urlopen(req, timeout=60) as r:
                    return json.loads(r.read())

            idle = rss_kb(proc.pid)
            after = {}
            t0 = time.monotonic()
            for i in range(1, jobs + 1):
                job = call(
                    "/api/jobs", {"roots": ["day1"], "out": f"job{i:03d}", "mode": "every", "value": "5"}
                )
                while True:
                    j = call(f"/api/jobs/{job['id']}")
                    if not j["running"] and j["state"] != "running":
                        break
                    time.sleep(0.1)
                if i == 1 or i % 10 == 0:
                    after[i] = rss_kb(proc.pid)
            took = time.monotonic() - t0
            time.sleep(5)
            settled = rss_kb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(30)
    return {"idle_kb": idle, "after_job_kb": after, "settled_kb": settled, "seconds": took}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=8000)
    parser.add_argument("--jobs", type=int, default=90)
    parser.add_argument("--only", default="report,job,rss")
    parser.add_argument("--before", help="a checkout of the code to compare with")
    args = parser.parse_args()
    only = set(args.only.split(","))
    trees = {"after": REPO, **({"before": os.path.abspath(args.before)} if args.before else {})}
    results: dict = {"videos": args.videos, "date": time.strftime("%Y-%m-%d %H:%M")}
    if only & {"report", "job"}:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                for side, code in trees.items():
                    if "report" in only:
                        r = results.setdefault("report", {})[side] = bench_report(args.videos, code, browser)
                        print(
                            f"report.html, {args.videos} videos, {side}: "
                            + ", ".join(f"{k} {_fmt(v)}" for k, v in r.items()),
                            flush=True,
                        )
                    if "job" in only:
                        r = results.setdefault("job_page", {})[side] = bench_job_page(
                            args.videos, code, browser
                        )
                        print(
                            f"job page, {args.videos} videos, running, {side}: "
                            + ", ".join(f"{k} {_fmt(v)}" for k, v in r.items()),
                            flush=True,
                        )
            finally:
                browser.close()
    if "rss" in only:
        r = results["rss"] = bench_rss(args.jobs)
        first = r["after_job_kb"][1]
        last = r["after_job_kb"][max(r["after_job_kb"])]
        print(
            f"serve RSS: idle {r['idle_kb'] / 1024:.0f} MB, after job 1 {first / 1024:.0f} MB, "
            + ", ".join(f"after {i}: {kb / 1024:.0f} MB" for i, kb in r["after_job_kb"].items())
            + f"; 5 s later {r['settled_kb'] / 1024:.0f} MB; last / first {last / first:.2f} "
            f"({args.jobs} jobs in {r['seconds']:.0f} s)",
            flush=True,
        )
    print(json.dumps(results))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


if __name__ == "__main__":
    main()

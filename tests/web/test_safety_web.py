"""The web service against hostile clients and hostile files, on a real ``snhoo-dask serve``
(its own local cluster) and a real browser: a report.html planted in a job's output, huge
numbers, stalled and piled-up connections, oversized request lines and headers, odd Host
headers (the rules underneath, without a server: test_safety_web_rules.py).

The service runs with a 2 s stall limit ($SNHOO_WEB_TIMEOUT) so the tests of it stay short."""

from __future__ import annotations

import os
import re
import socket
import time
import urllib.parse
from dataclasses import dataclass

import pytest
from helpers import CHROMIUM_ARGS, Serve, call, start_embedded_serve
from videos import make_video

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

STALL = 2.0  # the service's $SNHOO_WEB_TIMEOUT here
PER_CLIENT = 64  # the default cap, which the service keeps


@dataclass
class Env:
    tmp: str
    frames: str  # --out-base
    svc: Serve
    job: dict  # a finished job, with a report and sheets


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("safeweb"))
    lab, frames = os.path.join(tmp, "lab"), os.path.join(tmp, "frames")
    make_video(os.path.join(lab, "day1", "a.mp4"), seconds=1)
    os.makedirs(frames)
    svc = start_embedded_serve(tmp, [lab], [frames], None, env={"SNHOO_WEB_TIMEOUT": str(STALL)})
    try:
        code, job = svc.call(
            "/api/jobs", "POST", {"roots": ["day1"], "out": "first", "mode": "every", "value": "5"}
        )
        assert code == 201, job
        job = svc.wait_job(job["id"])
        assert job["state"] == "done" and job["has_report"], job
        yield Env(tmp, frames, svc, job)
    finally:
        svc.stop()


# -- a report planted in a job's output folder ------------------------------------------------

PLANTED = """<!DOCTYPE html><html><head><title>planted</title></head><body><pre id="out">running</pre>
<script>
(async function () {
  const log = [];
  let xsrf = "";
  try { xsrf = (document.cookie.match(/_xsrf=([^;]+)/) || [])[1] || ""; log.push("cookie:" + (xsrf ? "read" : "none")); }
  catch (e) { log.push("cookie:blocked"); }
  try {
    const r = await fetch("/api/jobs", {credentials: "include"});
    const t = await r.text();
    log.push("read:" + r.status + (t.includes('"jobs"') ? ":jobs" : ""));
  } catch (e) { log.push("read:blocked"); }
  try {
    const r = await fetch("/api/jobs", {method: "POST", credentials: "include",
      headers: {"Content-Type": "application/json", "X-XSRFToken": decodeURIComponent(xsrf)},
      body: JSON.stringify({roots: ["day1"], out: "planted-fetch"})});
    log.push("post:" + r.status);
  } catch (e) { log.push("post:blocked"); }
  try {
    await fetch("/api/jobs", {method: "POST", mode: "no-cors", credentials: "include",
      headers: {"Content-Type": "text/plain"}, body: JSON.stringify({roots: ["day1"], out: "planted-nocors"})});
    log.push("nocors:sent");
  } catch (e) { log.push("nocors:blocked"); }
  document.getElementById("out").textContent = log.join(" ");
  console.log("planted: " + log.join(" "));
  const f = document.createElement("form");
  f.method = "post"; f.action = "/submit";
  for (const [k, v] of [["_xsrf", decodeURIComponent(xsrf)], ["roots", "day1"], ["out", "planted-form"], ["mode", "all"]]) {
    const i = document.createElement("input"); i.name = k; i.value = v; f.appendChild(i);
  }
  document.body.appendChild(f);
  try { f.submit(); } catch (e) {}
})();
</script></body></html>"""


def test_a_report_planted_in_the_output_cannot_act_as_the_logged_in_user(env):
    from playwright.sync_api import sync_playwright

    svc, job = env.svc, env.job
    report = os.path.join(job["out"], "report.html")
    before = svc.job_ids()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            console: list[str] = []
            page.on("console", lambda m: console.append(m.text))
            page.goto(svc.login_url())  # logged in: the auth cookie and the XSRF cookie
            assert {"snhoo-auth", "_xsrf"} <= {c["name"] for c in page.context.cookies()}

            # The service's own report still works under the sandbox: its chart is drawn.
            r = page.goto(f"{svc.url}/jobs/{job['id']}/report")
            assert r.status == 200  # (its headers: the next test)
            page.wait_for_selector("#chart canvas", state="attached", timeout=30_000)
            assert not [m for m in console if "Content Security Policy" in m or "Refused" in m], console

            # Someone with write access to the output folder replaces the report.
            with open(report, "w", encoding="utf-8") as f:
                f.write(PLANTED)
            with page.expect_console_message(lambda m: m.text.startswith("planted: "), timeout=20_000) as msg:
                page.goto(f"{svc.url}/jobs/{job['id']}/report")
            result = msg.value.text
            page.wait_for_timeout(1500)  # time for the form, were it allowed, to be sent
        finally:
            browser.close()
    assert "read:200" not in result and ":jobs" not in result, result  # the API is not readable
    assert "cookie:read" not in result, result  # nor the XSRF cookie
    assert "post:201" not in result, result
    assert svc.job_ids() == before  # no job was started by the page
    assert sorted(os.listdir(env.frames)) == ["first"]


def test_everything_from_an_output_folder_is_sandboxed_and_not_sniffed(env):
    import urllib.request

    job = env.job
    (video,) = env.svc.call(f"/api/jobs/{job['id']}")[1]["videos"]
    for path in (
        f"/jobs/{job['id']}/report",
        f"/jobs/{job['id']}/sheet?v={urllib.parse.quote(video['key'])}",
    ):
        req = urllib.request.Request(env.svc.url + path, headers={"Authorization": f"token {env.svc.token}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            csp = r.headers["Content-Security-Policy"]
            assert r.status == 200 and csp.startswith("sandbox") and "allow-same-origin" not in csp, path
            assert r.headers["X-Content-Type-Options"] == "nosniff", path


# -- huge numbers -------------------------------------------------------------------------------

HUGE = "9" * 5000


@pytest.mark.parametrize(
    "fields",
    [
        {"mode": "every", "value": HUGE},
        {"mode": "frames", "value": HUGE},
        {"mode": "fps", "value": "1e999"},
        {"mode": "fps", "value": "9" * 400},
        {"max_side": HUGE},
        {"square": HUGE},
        {"max_pixels": HUGE},
        {"timeout": HUGE},
        {"split_seconds": HUGE},
    ],
    ids=[
        "every",
        "frames",
        "fps-1e999",
        "fps-400-digits",
        "max_side",
        "square",
        "max_pixels",
        "timeout",
        "split_seconds",
    ],
)
def test_huge_numbers_in_the_form_are_a_400_with_a_reason(env, fields):
    form = {"roots": "day1", "out": "huge", "mode": "all", **fields}
    code, reply = call(
        env.svc.url + "/submit",
        "POST",
        raw=urllib.parse.urlencode(form).encode(),
        ctype="application/x-www-form-urlencoded",
        token=env.svc.token,
    )
    assert code == 400, reply
    (error,) = re.findall(r'<div class="error" id="error"[^>]*>(.*?)</div>', reply["text"], re.S)
    assert "Not started" in error and "internal error" not in error and len(error) < 400, error


@pytest.mark.parametrize(
    "fields",
    [
        {"mode": "every", "value": HUGE},
        {"mode": "frames", "value": HUGE},
        {"mode": "fps", "value": "1e999"},
        {"max_side": int("9" * 4000)},
        {"square": int("9" * 4000)},
        {"max_pixels": int("9" * 4000)},
        {"dedup": True, "dedup_hi": int("9" * 4000)},
        {"timeout": int("9" * 4000)},
        {"split_seconds": int("9" * 4000)},
    ],
    ids=[
        "every",
        "frames",
        "fps",
        "max_side",
        "square",
        "max_pixels",
        "dedup_hi",
        "timeout",
        "split_seconds",
    ],
)
def test_huge_numbers_in_the_api_are_a_400_naming_the_field(env, fields):
    import json

    body = json.dumps({"roots": ["day1"], "out": "huge", **fields})
    code, reply = call(env.svc.url + "/api/jobs", "POST", raw=body.encode(), token=env.svc.token)
    assert code == 400, reply
    assert reply["field"] in fields and len(reply["error"]) < 200, reply
    assert "huge" not in os.listdir(env.frames)


# -- stalled and piled-up connections ------------------------------------------------------------


def until_closed(
    sock: socket.socket, drip: bytes = b"", every: float = 0.4, limit: float = 8.0
) -> float | None:
    """Send ``drip`` one byte every ``every`` s; the seconds until the server closed the
    connection, or None if it was still open after ``limit`` s."""
    sock.settimeout(every)
    start = time.monotonic()
    sent = 0
    while time.monotonic() - start < limit:
        try:
            if sent < len(drip):
                sock.send(drip[sent : sent + 1])
                sent += 1
            if not sock.recv(65536):
                return time.monotonic() - start
        except TimeoutError:
            continue
        except OSError:  # reset, or a send after the close
            return time.monotonic() - start
    return None


def connect(env: Env) -> socket.socket:
    return socket.create_connection(("127.0.0.1", env.svc.port), timeout=5)


def test_idle_and_slow_clients_are_cut_off(env):
    head = f"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: token {env.svc.token}\r\n"
    slow_header = (head + "X-Slow: " + "a" * 200).encode()
    slow_body = (head + "Content-Type: application/json\r\nContent-Length: 500\r\n\r\n").encode()
    with connect(env) as idle, connect(env) as header, connect(env) as body:
        body.sendall(slow_body)  # the headers at once, then the body a byte at a time
        times = {
            "idle": until_closed(idle),
            "header": until_closed(header, slow_header),
            "body": until_closed(body, b'{"roots": ["day1"], "out": "' + b"x" * 400),
        }
    for what, seconds in times.items():
        assert seconds is not None and seconds < STALL + 4, (what, times)
    assert "x" * 10 not in "".join(os.listdir(env.frames))


def test_one_client_cannot_hold_more_than_its_share_of_connections(env):
    socks = [connect(env) for _ in range(PER_CLIENT + 36)]
    try:
        # Accepted in the order they connected: the last 36 are over the share.  Their
        # answers are waited for first (each comes at once); by then the kept ones were
        # accepted long ago, so one that has said nothing yet says nothing.
        order = [*range(PER_CLIENT, len(socks)), *range(PER_CLIENT)]
        answered: dict[int, bool] = {}
        for i in order:
            s = socks[i]
            s.settimeout(10 if i >= PER_CLIENT else 0.05)
            try:
                answered[i] = s.recv(200).startswith(b"HTTP/1.1 503")
            except TimeoutError:
                answered[i] = False
            except OSError:
                answered[i] = True
        busy = [answered[i] for i in range(len(socks))]
        assert busy == [False] * PER_CLIENT + [True] * 36, busy
        # The ones it kept are closed too once they have stalled; then the client is served again.
        assert all(
            until_closed(s, limit=STALL + 4) is not None for s, b in zip(socks, busy, strict=True) if not b
        )
    finally:
        for s in socks:
            s.close()
    assert call(env.svc.url + "/api/jobs", token=env.svc.token)[0] == 200


# -- oversized requests, odd Host headers -------------------------------------------------------


def status_of(env: Env, request: bytes) -> int | None:
    """The status code the service answers ``request`` with (None: closed unanswered)."""
    with connect(env) as s:
        s.sendall(request)
        s.settimeout(10)
        data = b""
        try:
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
    return int(data.split()[1]) if data.startswith(b"HTTP/1.1 ") else None


def test_a_huge_url_gets_414_and_huge_headers_get_431(env):
    host = b"Host: 127.0.0.1\r\n"
    assert status_of(env, b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n" + host + b"\r\n") == 414
    assert status_of(env, b"GET / HTTP/1.1\r\n" + host + b"X-Big: " + b"a" * 100_000 + b"\r\n\r\n") == 431
    many = b"".join(b"X-H%d: %s\r\n" % (i, b"a" * 900) for i in range(100))
    assert status_of(env, b"GET / HTTP/1.1\r\n" + host + many + b"\r\n") == 431
    # Long, but within the bounds: answered as usual (here: log in first).
    assert status_of(env, b"GET /jobs?x=" + b"a" * 10_000 + b" HTTP/1.1\r\n" + host + b"\r\n") == 401


def test_a_request_whose_host_has_junk_after_the_address_gets_403(env):
    code, _ = call(env.svc.url + "/api/jobs", token=env.svc.token, headers={"Host": "[::1]evil"})
    assert code == 403

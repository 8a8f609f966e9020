"""The service's sign-in in a real browser: the login URL sets the cookie, other sites' pages
cannot start jobs (XSRF, SameSite), and a DNS-rebound name is not answered."""

from __future__ import annotations

import http.server
import os
import threading

import pytest
from helpers import CHROMIUM_ARGS, free_port, start_embedded_serve
from videos import make_video

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

FORM = """<!DOCTYPE html><html><body>
<form id="f" method="post" action="{service}/submit">
  <input name="roots" value="day1"><input name="out" value="{out}"><input name="mode" value="all">
</form>
<script>document.getElementById("f").submit();</script></body></html>"""

FETCH = """<!DOCTYPE html><html><body><script>
window.done = false;
fetch("{service}/api/jobs", {{method: "POST", mode: "no-cors", credentials: "include",
  headers: {{"Content-Type": "text/plain"}}, body: JSON.stringify({{roots: ["day1"], out: "{out}"}})}})
  .catch(() => null).finally(() => {{ window.done = true; }});
</script></body></html>"""


def attacker_site(pages: dict[str, str]) -> tuple[http.server.ThreadingHTTPServer, int]:
    """Another origin on this machine, serving pages that try to drive the service."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server interface
            body = pages.get(self.path.split("?")[0], "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, port


def test_login_url_cookie_and_pages_of_other_sites_cannot_start_jobs(tmp_path):
    from playwright.sync_api import sync_playwright

    tmp = str(tmp_path)
    lab, frames = os.path.join(tmp, "lab"), os.path.join(tmp, "frames")
    make_video(os.path.join(lab, "day1", "a.mp4"), seconds=1)
    os.makedirs(frames)
    svc = start_embedded_serve(tmp, [lab], [frames])
    u = svc.url
    site, aport = attacker_site(
        {
            "/same-site-form": FORM.format(service=u, out="csrf-same-site"),
            "/cross-site-form": FORM.format(service=u, out="csrf-cross-site"),
            "/fetch": FETCH.format(service=u, out="csrf-fetch"),
        }
    )
    shots = os.path.join(tmp, "screenshots")
    os.makedirs(shots)

    def no_jobs_started() -> None:
        assert svc.call("/api/jobs")[1]["jobs"] == []
        assert os.listdir(frames) == []

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=[
                    *CHROMIUM_ARGS,
                    "--host-resolver-rules=MAP attacker.example 127.0.0.1, MAP rebind.example 127.0.0.1",
                ],
            )
            try:
                page = browser.new_page()
                # Without the token: nothing but the way to log in.
                r = page.goto(u + "/")
                assert r.status == 401 and "login URL" in page.content()
                assert "Extract frames" not in page.content()

                # The login URL: a cookie, and the token leaves the address bar.
                r = page.goto(svc.login_url())
                assert r.status == 200 and page.url == u + "/"
                assert page.locator("#submit-form").is_visible()
                (cookie,) = [c for c in page.context.cookies() if c["name"] == "snhoo-auth"]
                assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
                assert svc.token not in cookie["value"]

                # A page of the same site (another port of 127.0.0.1): the cookie goes along,
                # the XSRF token does not.
                with page.expect_navigation(url=lambda url: url.startswith(u)):
                    page.goto(f"http://127.0.0.1:{aport}/same-site-form")
                assert "403" in page.title() and "xsrf" in page.content().lower()
                page.screenshot(path=os.path.join(shots, "csrf-same-site.png"))
                no_jobs_started()

                # Another site: the SameSite cookie stays home, so it is not even logged in.
                with page.expect_navigation(url=lambda url: url.startswith(u)):
                    page.goto(f"http://attacker.example:{aport}/cross-site-form")
                assert "401" in page.title() or "403" in page.title()
                no_jobs_started()

                # A script of another site posting to the API with the browser's cookie.
                page.goto(f"http://127.0.0.1:{aport}/fetch")
                page.wait_for_function("window.done === true")
                no_jobs_started()

                # DNS rebinding: a name of the attacker's, now pointing at 127.0.0.1.
                r = page.goto(f"http://rebind.example:{svc.port}/api/jobs")
                assert r.status == 403 and '"jobs"' not in page.content()

                # The service's own form, with its XSRF token, still works.
                page.goto(u + "/")
                page.fill("#roots", "day1")
                page.fill("#out", "own-form")
                page.click("#start")
                page.wait_for_url("**/jobs/*")
                page.wait_for_selector("#state.done", timeout=90_000)
                page.screenshot(path=os.path.join(shots, "own-form.png"))
            finally:
                browser.close()
        (job,) = svc.call("/api/jobs")[1]["jobs"]
        assert job["out"] == os.path.join(frames, "own-form")
    finally:
        site.shutdown()
        svc.stop()

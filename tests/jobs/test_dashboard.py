"""The embedded cluster's Dask dashboard: listening at once, built on the first visit."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from helpers import run_cli, start_dask
from videos import make_video

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

# In a fresh interpreter: whether Bokeh was imported is a fact of that process alone.
_SCRIPT = textwrap.dedent(
    """
    import http.client, json, sys
    from urllib.parse import urlsplit
    from snhoo_dask.jobs.cluster import ClusterSpec, dask_client

    def get(path):
        conn = http.client.HTTPConnection(host, port, timeout=60)
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read().decode("utf-8", "replace")
        return {"status": r.status, "location": r.getheader("Location"), "bokeh": "Bokeh" in body}

    seen = {}
    with dask_client(ClusterSpec(workers=1, dashboard_address="127.0.0.1:0")) as client:
        link = urlsplit(client.dashboard_link)
        host, port = link.hostname, link.port
        seen["health"] = get("/health")
        seen["bokeh_before_visit"] = "bokeh" in sys.modules
        seen["hostile_first_visit"] = get("//evil.example/status")
        seen["backslash_visit"] = get("/\\\\evil.example/status")
        seen["status"] = get("/status")
        seen["unknown"] = get("/no-such-page")
        seen["bokeh_after_visit"] = "bokeh" in sys.modules
    print(json.dumps(seen))
    """
)


def test_dashboard_answers_at_once_builds_on_first_visit_and_redirects_only_to_itself():
    res = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=100)
    assert res.returncode == 0, res.stderr
    seen = json.loads(res.stdout.strip().splitlines()[-1])
    # The scheduler's own routes answer from the start; a run nobody watches imports no Bokeh.
    assert seen["health"]["status"] == 200
    assert seen["bokeh_before_visit"] is False
    # The first visit builds the dashboard and sends the browser back to a path of this server,
    # never to the host a hostile link names.
    assert seen["hostile_first_visit"]["status"] == 302
    assert seen["hostile_first_visit"]["location"] == "/evil.example/status"
    assert seen["backslash_visit"]["status"] in (302, 404)
    assert not (seen["backslash_visit"]["location"] or "/").startswith(("//", "/\\"))
    assert seen["status"]["status"] == 200 and seen["status"]["bokeh"]
    assert seen["unknown"]["status"] == 404
    assert seen["bokeh_after_visit"] is True


@pytest.mark.parametrize(
    "scheduler_args, shown",
    [(("--no-dashboard",), False), (("--dashboard-address", ":0"), True)],
    ids=["no-dashboard", "dashboard"],
)
def test_a_dashboard_link_is_printed_only_when_the_scheduler_has_a_dashboard(tmp_path, scheduler_args, shown):
    """``dask scheduler --no-dashboard`` still listens for HTTP (its /status is a 404), and
    Dask still gives a link to it: the run prints none then."""
    cluster = start_dask(tmp_path, n_workers=1, scheduler_args=scheduler_args)
    try:
        make_video(str(tmp_path / "v" / "a.mp4"), seconds=1)
        res = run_cli(
            "run",
            str(tmp_path / "v"),
            "--out",
            str(tmp_path / "o"),
            "--scheduler",
            cluster.address,
            "--every",
            "10",
            timeout=120,
        )
    finally:
        cluster.stop()
    assert res.returncode == 0, res.stderr
    links = [line for line in res.stderr.splitlines() if line.startswith("Dask dashboard:")]
    assert len(links) == (1 if shown else 0), res.stderr
    if shown:
        assert links[0].endswith("/status")

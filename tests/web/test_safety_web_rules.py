"""The web service's safety rules without a server: Host headers, the stall limit and
connection cap, and the job store's names and final states (the server side of each:
test_safety_web.py)."""

from __future__ import annotations

import os

import pytest
from helpers import run_cli

from snhoo_dask.jobs.summary import DONE, ERROR, INTERRUPTED, Summary
from snhoo_dask.model import VideoRecord
from snhoo_dask.web import auth
from snhoo_dask.web.server import DEFAULT_MAX_CONNECTIONS, DEFAULT_TIMEOUT, Limits, ServeError
from snhoo_dask.web.store import JobStore

pytestmark = pytest.mark.timeout(60)


def test_a_host_header_with_anything_after_the_address_is_refused():
    hosts = auth.allowed_hosts("127.0.0.1", [])
    for bad in ("[::1]evil", "[::1]evil:80", "[::1]:80x", "127.0.0.1:abc", "localhost:80:80", "[::1"):
        assert not auth.host_allowed(bad, hosts), bad
    for good in ("[::1]", "[::1]:8888", "127.0.0.1:8888", "localhost", "localhost:8888"):
        assert auth.host_allowed(good, hosts), good


def test_the_stall_limit_and_the_cap_default_to_30_s_and_64_and_are_checked():
    assert Limits.from_env({}) == Limits(DEFAULT_TIMEOUT, DEFAULT_MAX_CONNECTIONS) == Limits(30.0, 64)
    assert Limits.from_env({"SNHOO_WEB_TIMEOUT": "2", "SNHOO_WEB_MAX_CONNECTIONS": "8"}) == Limits(2.0, 8)
    for bad in (
        {"SNHOO_WEB_TIMEOUT": "1e999"},
        {"SNHOO_WEB_TIMEOUT": "x"},
        {"SNHOO_WEB_MAX_CONNECTIONS": "0"},
    ):
        with pytest.raises(ServeError, match="SNHOO_WEB_"):
            Limits.from_env(bad)


# -- the job store: names kept apart, no video left "queued" ----------------------------------


def test_a_name_with_a_byte_that_is_not_utf8_and_its_escaped_spelling_stay_two_videos(tmp_path):
    store = JobStore(str(tmp_path))
    odd, literal = os.fsdecode(b"day/lit\xff.mp4"), "day/lit\\xff.mp4"
    store.create("j1", {"roots": ["day"]}, "/out", ["/lab/day"], "all frames")
    store.begin_run("j1", "r1", [(odd, "/lab/day", odd[4:]), (literal, "/lab/day", literal[4:])])
    for name, status in ((odd, "failed"), (literal, "ok")):
        store.record("j1", VideoRecord("r1", "/lab/day", name[4:], name, status=status), Summary(total=2))
    videos = store.videos("j1")
    assert len(videos) == 2 and {v["out_rel"] for v in videos} == {literal}  # same text, two videos
    assert {v["status"] for v in videos} == {"failed", "ok"}
    assert {store.video_path("j1", v["key"]) for v in videos} == {odd, literal}
    assert store.video_path("j1", literal) == literal  # as bytes, that text is the literal name
    store.close()


def test_no_video_stays_queued_once_its_job_has_ended(tmp_path):
    store = JobStore(str(tmp_path))
    store.create("j1", {"roots": ["day"]}, "/out", ["/lab/day"], "every 5th")
    videos = [(f"day/{n}", "/lab/day", n) for n in ("a.mp4", "b.mp4", "c.mp4")]
    store.begin_run("j1", "r1", videos)
    store.record("j1", VideoRecord("r1", "/lab/day", "a.mp4", "day/a.mp4", status="ok"), Summary(total=3))
    store.finish("j1", ERROR, "lost the connection to the Dask scheduler")
    assert {v["out_rel"]: v["status"] for v in store.videos("j1")} == {
        "day/a.mp4": "ok",
        "day/b.mp4": "unfinished",
        "day/c.mp4": "unfinished",
    }
    # Resumed without c.mp4 (moved away since): c is no longer the job's, b is done this time.
    store.begin_run("j1", "r2", videos[:2])
    assert {v["status"] for v in store.videos("j1")} == {"queued"}
    for name, status in (("a.mp4", "skipped"), ("b.mp4", "ok")):
        store.record(
            "j1", VideoRecord("r2", "/lab/day", name, f"day/{name}", status=status), Summary(total=2)
        )
    store.finish("j1", DONE)
    assert {v["out_rel"]: v["status"] for v in store.videos("j1")} == {
        "day/a.mp4": "skipped",
        "day/b.mp4": "ok",
    }
    # A service that stopped mid-run: the job is interrupted, its waiting videos unfinished.
    store.begin_run("j1", "r3", videos[:2])
    store.close()
    store = JobStore(str(tmp_path))
    assert store.recover() == 1
    assert store.get("j1")["state"] == INTERRUPTED
    assert {v["status"] for v in store.videos("j1")} == {"unfinished"}
    store.close()


def test_a_bad_stall_limit_in_the_environment_stops_serve_with_one_line(tmp_path):
    done = run_cli(
        "serve", "--allow", str(tmp_path), "--state-dir", str(tmp_path / "state"), "--port", "0",
        timeout=60, env=dict(os.environ, SNHOO_WEB_TIMEOUT="soon"),
    )  # fmt: skip
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        == "snhoo-dask: error: $SNHOO_WEB_TIMEOUT must be a number of seconds from 0.1 to 3600"
    )

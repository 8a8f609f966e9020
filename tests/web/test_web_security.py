"""What the web service refuses, against a real ``snhoo-dask serve`` (its own local Dask cluster, as on a single
lab machine): token, Host check, bounded bodies, links out of --allow, names that are not
UTF-8, logged 500s, one job per output folder, and a folder whose disk is unplugged."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass

import pytest
from helpers import Serve, call, start_embedded_serve
from videos import make_video

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@dataclass
class Env:
    tmp: str
    lab: str  # --allow
    disk: str  # --allow, missing at start (an unplugged disk)
    frames: str  # --out-base
    svc: Serve


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("websec"))
    lab, disk, frames, elsewhere = (os.path.join(tmp, d) for d in ("lab", "disk", "frames", "elsewhere"))
    make_video(os.path.join(lab, "day1", "cam1", "a.mp4"), seconds=1)
    make_video(os.path.join(lab, "day1", "cam2", "b.mp4"), seconds=1)
    make_video(os.path.join(elsewhere, "secret.mp4"), seconds=1)
    os.symlink(elsewhere, os.path.join(lab, "day1", "link-out"))  # a link leading out of --allow
    os.symlink(os.path.join(elsewhere, "secret.mp4"), os.path.join(lab, "day1", "secret-link.mp4"))
    odd = os.path.join(os.fsencode(lab), b"odd")
    os.makedirs(odd)
    make_video(os.path.join(odd, b"caf\xe9.mp4").decode("utf-8", "surrogateescape"), seconds=1)
    os.makedirs(frames)
    svc = start_embedded_serve(tmp, [lab, disk], [frames], ["--allowed-host", "lab.example"])
    try:
        yield Env(tmp, lab, disk, frames, svc)
    finally:
        svc.stop()


CAMS = ["day1/cam1", "day1/cam2"]  # day1 without its links out (those make "done with failures")


def status(url: str, headers: dict | None = None, method: str = "GET", data: bytes | None = None) -> int:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_every_page_and_api_call_needs_the_token(env):
    u, token = env.svc.url, env.svc.token
    for path in (
        "/",
        "/submit",
        "/jobs",
        "/jobs/x",
        "/jobs/x/sheet?v=a",
        "/api/jobs",
        "/api/jobs/x",
        "/api/no",
    ):
        assert status(u + path) == 401, path
        assert status(u + path, {"Authorization": "token wrong-token-of-some-length"}) == 401, path
        assert status(u + path + ("&" if "?" in path else "?") + "token=wrong") == 401, path
    assert status(u + "/api/jobs", method="POST", data=b"{}") == 401
    before = env.svc.job_ids()
    code, reply = call(u + "/api/jobs", "POST", {"roots": ["day1"], "out": "no-token"})
    assert code == 401 and "login" in reply["error"]
    assert env.svc.job_ids() == before and not os.path.exists(os.path.join(env.frames, "no-token"))
    assert status(u + "/", {"Authorization": f"token {token}"}) == 200
    assert status(u + "/api/jobs", {"Authorization": f"token {token}"}) == 200


def test_host_names_the_service_does_not_answer_are_refused(env):
    u, auth = env.svc.url, {"Authorization": f"token {env.svc.token}"}
    port = env.svc.port
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}"):
        assert status(u + "/api/jobs", dict(auth, Host=host)) == 403, host
        assert status(u + "/", dict(auth, Host=host)) == 403, host
    for host in (
        f"localhost:{port}",
        f"127.0.0.1:{port}",
        f"lab.example:{port}",
    ):  # lab.example: --allowed-host
        assert status(u + "/api/jobs", dict(auth, Host=host)) == 200, host


def test_bodies_and_lists_are_bounded_and_errors_do_not_echo_the_input(env):
    svc = env.svc
    before = svc.job_ids()
    big = b'{"roots": ["day1"], "value": "' + b"1," * 1_000_000 + b'"}'
    code, reply = call(svc.url + "/api/jobs", "POST", raw=big, token=svc.token)
    assert code == 413 and "larger than 1024 KiB" in reply["error"], reply
    code, reply = call(
        svc.url + "/submit",
        "POST",
        raw=b"roots=" + b"a" * 2_000_000,
        ctype="application/x-www-form-urlencoded",
    )
    assert code == 413 and "a" * 100 not in reply["text"]
    code, reply = call(svc.url + "/api/jobs", "POST", raw=b"x" * 5_000_000, token=svc.token)
    assert code == 413 and "larger than 1024 KiB" in reply["error"], reply  # read away, answered
    with pytest.raises((urllib.error.URLError, ConnectionError)):  # past 64 MiB: dropped unread
        call(svc.url + "/api/jobs", "POST", raw=b"x" * (64 * 2**20 + 1), token=svc.token)
    code, reply = svc.call("/api/jobs", "POST", {"roots": ["day1"] * 300})
    assert code == 400 and "at most 64" in reply["error"]
    secret = "x" * 5000
    code, reply = svc.call("/api/jobs", "POST", {"roots": ["day1"], "mode": "frames", "value": secret})
    assert code == 400 and len(reply["error"]) <= 400 and secret not in reply["error"], reply
    code, reply = svc.call("/api/jobs", "POST", {"roots": [secret]})
    assert code in (400, 403) and secret not in reply["error"], reply
    assert svc.job_ids() == before
    assert svc.call("/api/jobs")[0] == 200  # still serving


def test_a_deeply_nested_body_is_a_400_in_one_line_and_logs_no_traceback(env):
    svc = env.svc
    logged = len(svc.log_text())
    for deep in (b"[" * 100_000 + b"]" * 100_000, b'{"roots": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"):
        code, reply = call(svc.url + "/api/jobs", "POST", raw=deep, token=svc.token)
        assert code == 400 and "nested" in reply["error"] and "\n" not in reply["error"], reply
    assert svc.call("/api/jobs")[0] == 200  # still serving
    new = svc.log_text()[logged:]
    assert "RecursionError" not in new and "Traceback" not in new, new[-2000:]


def test_the_same_root_many_times_runs_each_video_once(env):
    roots = ["day1"] * 60 + ["day1/cam1", os.path.join(env.lab, "day1", "cam2")]
    code, job = env.svc.call(
        "/api/jobs", "POST", {"roots": roots, "out": "dup", "mode": "every", "value": "10"}
    )
    assert code == 201, job
    done = env.svc.wait_job(job["id"])
    assert sorted(v["out_rel"] for v in done["videos"]) == ["day1/cam1/a.mp4", "day1/cam2/b.mp4"], done
    assert (done["total"], done["ok"]) == (2, 2)
    assert sorted(os.listdir(os.path.join(env.frames, "dup", "day1"))) == ["cam1", "cam2"]
    with open(os.path.join(env.frames, "dup", "manifest.jsonl"), encoding="utf-8") as f:
        assert sum(1 for line in f if line.strip()) == 2  # one record per distinct video


def test_links_leading_out_of_the_allowed_folders_are_not_followed(env):
    code, job = env.svc.call(
        "/api/jobs", "POST", {"roots": ["."], "out": "all", "mode": "every", "value": "10"}
    )
    assert code == 201, job
    done = env.svc.wait_job(job["id"])
    names = [v["out_rel"] for v in done["videos"]]
    assert not any("secret" in n or "link-out" in n for n in names), names
    assert "not followed" in (done["message"] or "")
    for folder, _, files in os.walk(os.path.join(env.frames, "all")):
        assert "secret" not in folder and not any("secret" in f for f in files)
    code, _ = env.svc.call("/api/jobs", "POST", {"roots": ["day1/link-out"], "out": "out-link"})
    assert code == 403
    # Frames are only served for the job's own videos, never for a path from the URL.
    for v in ("lab/day1/link-out/secret.mp4", "../../elsewhere/secret.mp4"):
        assert (
            status(f"{env.svc.url}/jobs/{job['id']}/sheet?v={v}", {"Authorization": f"token {env.svc.token}"})
            == 404
        )


def test_a_name_that_is_not_utf8_is_processed_and_the_service_keeps_working(env):
    code, job = env.svc.call(
        "/api/jobs", "POST", {"roots": ["odd"], "out": "odd-frames", "mode": "every", "value": "5"}
    )
    assert code == 201, job
    done = env.svc.wait_job(job["id"])
    assert done["state"] == "done", done
    (video,) = done["videos"]
    assert video["out_rel"] == "odd/caf\\xe9.mp4" and video["frames"] == 5
    assert os.path.isdir(os.path.join(os.fsencode(env.frames), b"odd-frames", b"odd", b"caf\xe9.mp4"))
    req = urllib.request.Request(
        f"{env.svc.url}/jobs/{job['id']}/sheet?v=" + urllib.request.quote(video["out_rel"]),
        headers={"Authorization": f"token {env.svc.token}"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.headers["Content-Type"] == "image/jpeg" and r.read(3) == b"\xff\xd8\xff"
    code, again = env.svc.call(
        "/api/jobs", "POST", {"roots": ["odd"], "out": "odd-again", "mode": "every", "value": "5"}
    )
    assert code == 201, again  # the next request is fine too
    assert env.svc.wait_job(again["id"])["state"] == "done"


def test_a_500_is_logged_with_its_traceback_and_the_next_request_works(env):
    db = sqlite3.connect(os.path.join(env.tmp, "state", "jobs.sqlite"), isolation_level=None)
    try:
        db.execute("BEGIN EXCLUSIVE")  # someone holds the database (a sqlite3 shell, a backup)
        code, reply = env.svc.call("/api/jobs", "POST", {"roots": ["day1"], "out": "locked"})
    finally:
        db.execute("ROLLBACK")
        db.close()
    assert code == 500 and "Traceback" not in str(reply), reply
    log = env.svc.log_text()
    assert "Traceback" in log and "database is locked" in log and "POST /api/jobs" in log, log[-3000:]
    code, job = env.svc.call(
        "/api/jobs", "POST", {"roots": ["day1/cam1"], "out": "locked", "mode": "every", "value": "25"}
    )
    assert code == 201, job  # the folder claimed by the failed request was given back
    assert env.svc.wait_job(job["id"])["state"] == "done"


def test_eight_concurrent_jobs_on_one_output_one_runs_the_others_get_409(env):
    answers: list[tuple[int, dict]] = []
    gate = threading.Barrier(8)

    def post() -> None:
        gate.wait()
        answers.append(
            env.svc.call("/api/jobs", "POST", {"roots": CAMS, "out": "race", "mode": "every", "value": "5"})
        )

    threads = [threading.Thread(target=post) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    codes = sorted(code for code, _ in answers)
    assert codes == [201] + [409] * 7, answers
    (job,) = [j for code, j in answers if code == 201]
    assert all(j["field"] == "out" and "another job" in j["error"] for code, j in answers if code == 409)
    done = env.svc.wait_job(job["id"])
    assert (done["state"], done["ok"], done["failed"]) == ("done", 2, 0), done


def test_a_job_on_a_folder_another_run_holds_is_a_409_at_submit_and_leaves_it_alone(env):
    out = os.path.join(env.frames, "cli-owned")
    os.makedirs(out)
    with open(os.path.join(out, "report.html"), "w") as f:
        f.write("the running CLI job's report")
    before = env.svc.job_ids()
    fd = os.open(os.path.join(out, ".snhoo.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a `snhoo-dask run` writing there holds it
        spec = {"roots": ["day1/cam1"], "out": "cli-owned", "mode": "every", "value": "25"}
        code, reply = env.svc.call("/api/jobs", "POST", spec)
        assert code == 409 and "in use" in reply["error"] and reply["field"] == "out", reply
        assert env.svc.job_ids() == before  # no job that could only end in error
        with open(os.path.join(out, "report.html")) as f:
            assert f.read() == "the running CLI job's report"
        assert not os.path.exists(os.path.join(out, "manifest.jsonl"))
    finally:
        os.close(fd)
    # The refusal let go of the folder: once the other run is over, the same job runs.
    code, job = env.svc.call("/api/jobs", "POST", spec)
    assert code == 201, job
    done = env.svc.wait_job(job["id"])
    assert (done["ok"], done["failed"]) == (1, 0), done
    with open(os.path.join(out, "report.html")) as f:  # still the user's (not snhoo-dask's) file
        assert f.read() == "the running CLI job's report"


def test_an_unplugged_allowed_folder_is_shown_refused_then_used_once_it_appears(env):
    _, listing = env.svc.call("/api/jobs")
    assert {"path": env.disk, "available": False, "state": "missing"} in listing["folders"]["allow"]
    code, page = call(env.svc.url + "/", token=env.svc.token)
    assert code == 200 and 'id="unavailable"' in page["text"] and env.disk in page["text"]
    for root in ("day9", os.path.join(env.disk, "day9")):
        code, reply = env.svc.call("/api/jobs", "POST", {"roots": [root], "out": "from-disk"})
        assert code == 409 and "not available" in reply["error"] and reply["field"] == "roots", reply
    make_video(os.path.join(env.disk, "day9", "c.mp4"), seconds=1)  # the disk is plugged in
    _, listing = env.svc.call("/api/jobs")
    assert {"path": env.disk, "available": True, "state": "available"} in listing["folders"]["allow"]
    code, job = env.svc.call(
        "/api/jobs", "POST", {"roots": ["day9"], "out": "from-disk", "mode": "every", "value": "5"}
    )
    assert code == 201, job
    assert env.svc.wait_job(job["id"])["state"] == "done"
    assert 'id="unavailable"' not in call(env.svc.url + "/", token=env.svc.token)[1]["text"]


def test_the_start_log_gives_the_login_url_and_warns_of_missing_folders(env):
    log = env.svc.log_text()
    assert f"http://127.0.0.1:{env.svc.port}/?token={env.svc.token}" in log
    assert "does not exist (yet)" in log and env.disk in log

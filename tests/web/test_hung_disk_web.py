"""One --allow folder on a disk that stops answering (its FUSE daemon stopped with SIGSTOP):
the service goes on answering every page and API call for everyone, shows that folder as not
responding, refuses jobs on it at once, and runs jobs on the other folder as usual."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request

import pytest
from helpers import mount_ntfs, start_embedded_serve
from videos import make_video

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

BOUND = 5.0  # seconds any answer may take while the disk hangs


def ask(svc, path: str, method: str = "GET", body=None) -> tuple[int, str, float]:
    """(status, body text, seconds taken); a request unanswered in 15 s fails the test."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(svc.url + path, data=data, method=method)
    req.add_header("Authorization", f"token {svc.token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            code, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        code, text = e.code, e.read().decode()
    return code, text, time.monotonic() - started


def test_a_hung_allowed_disk_leaves_every_other_page_answering(tmp_path):
    lab, frames = str(tmp_path / "lab"), str(tmp_path / "frames")
    make_video(os.path.join(lab, "day1", "a.mp4"), seconds=1)
    os.makedirs(frames)
    disk = mount_ntfs(str(tmp_path / "disk"))
    svc = None
    stopped = False
    try:
        make_video(os.path.join(disk.path, "day2", "b.mp4"), seconds=1)
        svc = start_embedded_serve(str(tmp_path), [disk.path, lab], [frames, disk.path])
        # A job whose output is on that disk, finished before it hangs.
        code, text, _ = ask(svc, "/api/jobs", "POST", {"roots": [lab], "out": os.path.join(disk.path, "out")})
        assert code == 201, text
        on_disk = json.loads(text)["id"]
        assert svc.wait_job(on_disk)["state"] == "done"
        assert ask(svc, f"/jobs/{on_disk}/out/report.html")[0] == 200

        os.kill(disk.proc.pid, signal.SIGSTOP)  # the daemon this test started, by its pid
        stopped = True
        time.sleep(1.5)  # past the kernel's attribute cache: every look asks the daemon

        for _ in range(2):  # the second time too: no request waits on the stuck first look
            code, text, took = ask(svc, "/api/jobs")
            assert code == 200 and took < BOUND, (code, took)
            listing = json.loads(text)
            assert {"path": disk.path, "available": False, "state": "not responding"} in listing["folders"][
                "allow"
            ]
            assert {"path": lab, "available": True, "state": "available"} in listing["folders"]["allow"]
            (job,) = [j for j in listing["jobs"] if j["id"] == on_disk]
            assert job["has_report"] is False

            code, text, took = ask(svc, "/")
            assert code == 200 and took < BOUND and 'id="unavailable"' in text and disk.path in text

            code, _, took = ask(svc, "/static/style.css")
            assert code == 200 and took < BOUND

            code, text, took = ask(svc, f"/api/jobs/{on_disk}")
            assert code == 200 and took < BOUND and json.loads(text)["has_report"] is False

            code, text, took = ask(svc, f"/jobs/{on_disk}/out/report.html")
            assert code == 503 and took < BOUND + 2 and "not responding" in text, (code, took)

            code, text, took = ask(svc, "/api/jobs", "POST", {"roots": ["day2"], "out": "x"})
            assert code == 409 and took < BOUND and "not responding" in json.loads(text)["error"], text
            code, text, took = ask(svc, "/api/jobs", "POST", {"roots": [os.path.join(disk.path, "day2")]})
            assert code == 409 and took < BOUND and "not responding" in json.loads(text)["error"], text

        # A job on the other folder runs as usual, start to finish.
        code, text, took = ask(
            svc, "/api/jobs", "POST", {"roots": ["day1"], "out": os.path.join(frames, "from-lab")}
        )
        assert code == 201 and took < BOUND, text
        assert svc.wait_job(json.loads(text)["id"])["state"] == "done"
        assert os.path.isfile(os.path.join(frames, "from-lab", "report.html"))
    finally:
        if stopped:
            os.kill(disk.proc.pid, signal.SIGCONT)
        if svc is not None:
            svc.stop()
        disk.unmount()

"""What ``snhoo-dask serve`` sends from disk, against a real server and real files: the
report, contact sheets and static files are opened by descriptor beneath their base, never
through a symbolic link; hostile requests get a 4xx with a reason, never a 500.

The server runs from a copy of the package, so a test can plant links in its static folder
without touching the source tree."""

from __future__ import annotations

import os
import re
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

import pytest
from helpers import Serve, call, start_embedded_serve
from PIL import Image
from videos import make_video

import snhoo_dask

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

THUMB = (64, 48)  # make_video's size: thumbnails stay that size (the sheet never enlarges)
GAP = 2


@dataclass
class Env:
    tmp: str
    frames: str  # --out-base
    elsewhere: str  # outside every folder the service may use
    static: str  # the running server's static folder (in its copy of the package)
    svc: Serve


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("webserve"))
    lab, frames, elsewhere, pkg = (os.path.join(tmp, d) for d in ("lab", "frames", "elsewhere", "pkg"))
    for cam, name in (("cam1", "a.mp4"), ("cam2", "b.mp4"), ("cam3", "c.mp4")):
        make_video(os.path.join(lab, cam, name), seconds=1)
    os.makedirs(frames)
    os.makedirs(elsewhere)
    with open(os.path.join(elsewhere, "secret.txt"), "w") as f:
        f.write("outside the static folder\n")
    here = os.path.dirname(snhoo_dask.__file__)
    shutil.copytree(here, os.path.join(pkg, "snhoo_dask"), ignore=shutil.ignore_patterns("__pycache__"))
    static = os.path.join(pkg, "snhoo_dask", "web", "static")
    os.symlink("/etc/passwd", os.path.join(static, "passwd.css"))  # a file link leading out
    os.symlink(elsewhere, os.path.join(static, "up"))  # a folder link leading out
    svc = start_embedded_serve(tmp, [lab], [frames], None, env={"PYTHONPATH": pkg})
    try:
        yield Env(tmp, frames, elsewhere, static, svc)
    finally:
        svc.stop()


def get(env: Env, path: str, headers: dict | None = None, token: bool = True) -> tuple[int, dict, bytes]:
    """Status, headers and body of one GET (raw path: nothing re-quoted)."""
    req = urllib.request.Request(env.svc.url + path, headers=dict(headers or {}))
    if token:
        req.add_header("Authorization", f"token {env.svc.token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def finished_job(env: Env, out: str, roots: list[str], **spec) -> dict:
    body = {"roots": roots, "out": out, "mode": "every", "value": "10", **spec}
    code, job = env.svc.call("/api/jobs", "POST", body)
    assert code == 201, job
    done = env.svc.wait_job(job["id"])
    assert done["state"] == "done", done
    return done


def sheet(env: Env, job: dict, v: str) -> tuple[int, bytes]:
    code, _, body = get(env, f"/jobs/{job['id']}/sheet?v=" + urllib.parse.quote(v))
    return code, body


def sheet_size(jpeg: bytes) -> tuple[int, int]:
    import io

    with Image.open(io.BytesIO(jpeg)) as im:
        assert im.format == "JPEG"
        return im.size


def move_out(path: str, to: str) -> None:
    """Put ``path`` elsewhere and a symbolic link to it in its place."""
    shutil.move(path, to)
    os.symlink(to, path)


def assert_sheets_of_three(env: Env, job: dict, videos: tuple[str, ...]) -> None:
    """Each video's contact sheet is served: its three frames in a row."""
    for v in videos:
        code, body = sheet(env, job, v)
        assert code == 200 and sheet_size(body) == (3 * THUMB[0] + 2 * GAP, THUMB[1]), v


def refused_once_moved_out(env: Env, job: dict, v: str, path: str, away: str) -> bool:
    """Whether the sheet of ``v`` is refused once ``path`` (of the job's output) is a link to
    ``away``, a folder outside it that holds what was there."""
    move_out(path, os.path.join(env.elsewhere, away))
    return sheet(env, job, v)[0] == 404


# -- 1. served by descriptor -------------------------------------------------------------------


def test_the_report_is_sent_only_as_a_plain_file_inside_the_jobs_output(env):
    job = finished_job(env, "nest/rep", ["cam1"])
    out = os.path.join(env.frames, "nest", "rep")
    report = os.path.join(out, "report.html")
    code, _, body = get(env, f"/jobs/{job['id']}/report")
    assert code == 200 and b"<html" in body[:2000].lower()
    with open(report, "rb") as f:
        real = f.read()

    os.replace(report, report + ".kept")
    os.symlink("/etc/passwd", report)  # ln -sf /etc/passwd OUT/report.html
    code, _, body = get(env, f"/jobs/{job['id']}/report")
    assert code == 404 and b"root:" not in body, body[:200]

    os.unlink(report)
    os.mkfifo(report)  # a named pipe must not hang the service's event loop
    t0 = time.monotonic()
    code, _, _ = get(env, f"/jobs/{job['id']}/report")
    assert code == 404 and time.monotonic() - t0 < 10
    os.unlink(report)

    os.replace(report + ".kept", report)
    assert get(env, f"/jobs/{job['id']}/report")[2] == real
    # A parent of the recorded output folder replaced by a link (to a copy of it): refused too.
    move_out(os.path.join(env.frames, "nest"), os.path.join(env.elsewhere, "nest"))
    code, _, body = get(env, f"/jobs/{job['id']}/report")
    assert code == 404 and body != real
    assert env.svc.call(f"/api/jobs/{job['id']}")[1]["has_report"] is False


def test_a_sheet_is_made_only_from_the_jobs_own_output_folder(env):
    job = finished_job(env, "sheets", ["cam1", "cam2", "cam3"])
    out = os.path.join(env.frames, "sheets")
    assert_sheets_of_three(env, job, ("cam1/a.mp4", "cam2/b.mp4", "cam3/c.mp4"))
    # The video's own folder replaced by a link to an outside folder (holding its frames).
    assert refused_once_moved_out(env, job, "cam1/a.mp4", os.path.join(out, "cam1", "a.mp4"), "a.mp4")
    # A parent of it replaced by a link.
    assert refused_once_moved_out(env, job, "cam2/b.mp4", os.path.join(out, "cam2"), "cam2")
    # frames.csv naming a file outside the folder: never opened.
    folder = os.path.join(out, "cam3", "c.mp4")
    outside = os.path.join(env.elsewhere, "red.jpg")
    Image.new("RGB", THUMB, "red").save(outside)
    with open(os.path.join(folder, "frames.csv"), "w") as f:
        f.write(f"frame,timestamp,file\n0,0.0,{os.path.relpath(outside, folder)}\n1,0.04,{outside}\n")
    assert sheet(env, job, "cam3/c.mp4")[0] == 404
    # A frames.csv the csv module refuses (a field over its size limit): the folder is listed instead.
    with open(os.path.join(folder, "frames.csv"), "w") as f:
        f.write(f"frame,timestamp,file\n0,0.0,{'x' * 200_000}.jpg\n")
    assert_sheets_of_three(env, job, ("cam3/c.mp4",))


def test_a_packed_sheet_is_read_from_the_tar_by_descriptor(env):
    job = finished_job(env, "packed", ["cam1", "cam2"], pack="tar")
    out = os.path.join(env.frames, "packed")
    assert_sheets_of_three(env, job, ("cam1/a.mp4.tar", "cam2/b.mp4.tar"))
    assert refused_once_moved_out(
        env, job, "cam1/a.mp4.tar", os.path.join(out, "cam1", "a.mp4.tar"), "a.mp4.tar"
    )
    assert refused_once_moved_out(env, job, "cam2/b.mp4.tar", os.path.join(out, "cam2"), "packed-cam2")


def test_static_files_are_opened_beneath_the_static_folder_and_check_the_host(env):
    code, _, page = get(env, "/")
    assert code == 200
    urls = re.findall(rb'(?:href|src)="(/static/[^"]+)"', page)
    assert urls and all(b"?v=" in u for u in urls), urls  # static_url and its cache-busting
    for u in urls:
        code, headers, body = get(env, u.decode().replace("&amp;", "&"), token=False)
        name = u.decode().split("?")[0].rsplit("/", 1)[1]
        with open(os.path.join(env.static, name), "rb") as f:
            assert code == 200 and body == f.read(), u
        assert "max-age" in headers.get("Cache-Control", ""), headers
        kind = "text/css" if name.endswith(".css") else "javascript"
        assert kind in headers["Content-Type"], headers
        etag = headers.get("Etag")
        assert etag and get(env, u.decode(), {"If-None-Match": etag}, token=False)[0] == 304
    assert get(env, "/static/passwd.css", token=False)[0] == 404
    assert get(env, "/static/up/secret.txt", token=False)[0] == 404
    host = {"Host": f"evil.example:{env.svc.port}"}
    assert get(env, "/static/style.css", host, token=False)[0] == 403
    assert get(env, "/static/style.css", token=False)[0] == 200


# -- 2. no 500 on hostile requests -------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/static/common.js%00",
        "/static/%00",
        "/static/%ff",
        "/static/",
        "/static/.",
        "/static/%2e%2e/server.py",
        "/static/..%2fserver.py",
        "/static//etc/passwd",
        "/static/up",
        "/jobs/x%00/report",
        "/jobs/x/sheet?v=%ff",
        "/jobs/x/sheet?v=%00",
    ],
)
def test_odd_paths_get_400_or_404_never_500(env, path):
    code, _, body = get(env, path, token=False)
    assert code in (400, 401, 404), (code, body[:300])  # 401: a job URL asks who is calling first
    code, _, body = get(env, path)
    assert code in (400, 404), (code, body[:300])


@pytest.mark.parametrize("field", ["roots", "out"])
def test_a_nul_character_in_a_path_is_400_naming_the_field(env, field):
    body = {"roots": ["cam1"], "out": "nul-out"}
    body[field] = ["cam\x001"] if field == "roots" else "nul\x00out"
    code, reply = env.svc.call("/api/jobs", "POST", body)
    assert (code, reply.get("field")) == (400, field), reply
    assert field in reply["error"] and "NUL" in reply["error"] and "\n" not in reply["error"], reply
    assert not os.path.exists(os.path.join(env.frames, "nul-out"))


def test_a_huge_picture_is_left_out_of_the_sheet_without_decoding_it(env):
    job = finished_job(env, "huge", ["cam1"])
    folder = os.path.join(env.frames, "huge", "cam1", "a.mp4")
    first, second, third = sorted(n for n in os.listdir(folder) if n.endswith(".jpg"))
    Image.new("L", (16000, 16000), 90).save(os.path.join(folder, first))  # over Pillow's bomb limit
    Image.new("L", (10000, 10000), 160).save(os.path.join(folder, third))  # over its warning limit
    before = _peak_memory(env.svc.proc.pid)
    code, body = sheet(env, job, "cam1/a.mp4")
    assert code == 200, body[:300]
    # the 16000x16000 frame left out, the 10000x10000 one shrunk from a reduced decode
    assert sheet_size(body) == (THUMB[0] + GAP + 128, 128)
    os.replace(os.path.join(folder, first), os.path.join(folder, second))
    shutil.copy(os.path.join(folder, second), os.path.join(folder, third))
    assert sheet(env, job, "cam1/a.mp4")[0] == 404  # only huge pictures left: no sheet
    grown = _peak_memory(env.svc.proc.pid) - before
    assert grown < 150 * 2**20, f"the service's peak memory grew by {grown >> 20} MiB"
    assert env.svc.call("/api/jobs")[0] == 200


def _peak_memory(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1)) * 1024


# -- 3. bodies and the type of roots -----------------------------------------------------------


def test_a_body_over_the_limit_gets_413_with_a_reason(env):
    svc = env.svc
    code, reply = call(svc.url + "/api/jobs", "POST", raw=b"x" * 5_000_000, token=svc.token)
    assert code == 413 and "larger than 1024 KiB" in reply["error"], reply
    form = b"roots=" + b"a" * 5_000_000
    code, reply = call(svc.url + "/submit", "POST", raw=form, ctype="application/x-www-form-urlencoded")
    assert code == 413 and "larger than 1024 KiB" in reply["text"] and "a" * 100 not in reply["text"]
    assert svc.call("/api/jobs")[0] == 200


def test_roots_given_as_one_string_are_refused(env):
    code, reply = env.svc.call("/api/jobs", "POST", {"roots": "cam1", "out": "roots-string"})
    assert (code, reply["field"], reply["error"]) == (400, "roots", "roots must be a list of folder paths")
    assert not os.path.exists(os.path.join(env.frames, "roots-string"))

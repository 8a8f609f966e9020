"""The service's rules without a server: token, Host names, request bounds, folder policy,
store transactions, and the exit status of ``serve`` configuration errors."""

from __future__ import annotations

import os
import socket
import stat
import subprocess

import pytest
from helpers import run_cli

from snhoo_dask.jobs.summary import Summary
from snhoo_dask.model import VideoRecord
from snhoo_dask.web import auth
from snhoo_dask.web.store import JobStore
from snhoo_dask.web.validate import MAX_ROOTS, PathPolicy, RequestError, Submission

pytestmark = pytest.mark.timeout(60)


# -- token ----------------------------------------------------------------------------------


def test_a_generated_token_is_kept_0600_and_reused(tmp_path):
    token, from_file = auth.load_token(str(tmp_path), None)
    path = tmp_path / "token"
    assert from_file and len(token) >= 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text().strip() == token
    assert auth.load_token(str(tmp_path), None) == (token, True)  # the next start
    os.chmod(path, 0o644)  # loosened by hand: tightened again, not trusted as is
    auth.load_token(str(tmp_path), None)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


@pytest.mark.parametrize("existing", [False, True], ids=["new", "made-0644-before"])
def test_the_job_store_and_its_journal_are_readable_by_the_service_only(tmp_path, existing):
    if existing:
        (tmp_path / "jobs.sqlite").touch(0o644)
    JobStore(str(tmp_path)).close()
    again = JobStore(str(tmp_path))  # a second open (the WAL files exist now) keeps them private
    again.close()
    files = [n for n in os.listdir(tmp_path) if n.startswith("jobs.sqlite")]
    assert "jobs.sqlite" in files
    for name in files:
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600, name


def test_a_given_token_wins_and_a_weak_one_is_refused(tmp_path):
    assert auth.load_token(str(tmp_path), "  a-long-enough-secret-token  ") == (
        "a-long-enough-secret-token",
        False,
    )
    assert not (tmp_path / "token").exists()
    for weak in ("short", "", "has a space in the middle ok"):
        with pytest.raises(auth.AuthError, match="at least 16"):
            auth.load_token(str(tmp_path), weak)
    (tmp_path / "token").write_text("\n")
    with pytest.raises(auth.AuthError, match="no usable token"):
        auth.load_token(str(tmp_path), None)


def test_token_header_and_comparison():
    assert auth.header_token("token abc") == "abc"
    assert auth.header_token("Bearer abc") == "abc"
    assert auth.header_token("Basic abc") is None
    assert auth.header_token("token ") is None
    assert auth.token_matches("x" * 20, "x" * 20)
    assert not auth.token_matches("x" * 20, "x" * 19 + "y")
    assert not auth.token_matches("x" * 20, None)
    assert auth.cookie_secret("a" * 20) != auth.cookie_secret("b" * 20)  # a new token logs browsers out


# -- Host names (DNS rebinding) ---------------------------------------------------------------


def test_loopback_service_answers_loopback_names_and_addresses_only():
    hosts = auth.allowed_hosts("127.0.0.1", [])
    for ok in ("localhost:8888", "127.0.0.1:8888", "[::1]:8888", "LOCALHOST", "10.1.2.3:80", "localhost."):
        assert auth.host_allowed(ok, hosts), ok
    for bad in (
        "evil.example:8888",
        "evil.example",
        "",
        None,
        "127.0.0.1.evil.example",
        socket.gethostname(),
    ):
        assert not auth.host_allowed(bad, hosts), bad


def test_allowed_host_adds_names_and_a_wide_bind_adds_the_machine_names():
    hosts = auth.allowed_hosts("127.0.0.1", ["Lab-Server.example.org", " "])
    assert auth.host_allowed("lab-server.example.org:8888", hosts)
    wide = auth.allowed_hosts("0.0.0.0", [])
    assert auth.host_allowed(f"{socket.gethostname()}:8888", wide)
    assert not auth.host_allowed("evil.example", wide)


def test_login_url():
    assert auth.login_url("127.0.0.1", 8888, "t" * 20) == f"http://127.0.0.1:8888/?token={'t' * 20}"
    assert auth.login_url("::1", 80, None) == "http://[::1]:80/"


# -- request bounds -----------------------------------------------------------------------------


def test_list_fields_and_text_fields_are_bounded_and_not_echoed():
    with pytest.raises(RequestError, match=f"at most {MAX_ROOTS}") as e:
        Submission.from_json({"roots": ["a"] * 300})
    assert e.value.status == 400 and e.value.sub.roots == []
    huge = "9," * 100_000
    with pytest.raises(RequestError, match="longer than") as e:
        Submission.from_json({"roots": ["a"], "mode": "frames", "value": huge})
    assert e.value.sub.value == ""  # the form shown again does not carry it back
    with pytest.raises(RequestError, match="not valid UTF-8"):
        Submission.from_json({"roots": ["caf\udce9"]})
    long_message = RequestError(400, "bad " + "x" * 10_000 + "\nsecond line")
    assert len(long_message.message) <= 400 and "second line" not in long_message.message


# -- folders that come and go ---------------------------------------------------------------------


def test_an_unavailable_allowed_folder_is_refused_until_it_appears(tmp_path):
    disk = tmp_path / "disk"
    policy = PathPolicy.make([str(disk)], [])
    assert policy.unavailable() == [str(disk)]
    for path in ("day1", str(disk / "day1")):
        with pytest.raises(RequestError, match="not available now") as e:
            policy.resolve(path, policy.allow_bases, "root", "roots")
        assert e.value.status == 409
    (disk / "day1").mkdir(parents=True)  # the disk is plugged in
    assert policy.unavailable() == []
    assert policy.resolve("day1", policy.allow_bases, "root", "roots") == str(disk / "day1")
    assert policy.status()["allow"] == [{"path": str(disk), "available": True, "state": "available"}]


# -- the job store ----------------------------------------------------------------------------------


def test_a_failed_write_rolls_back_and_the_next_one_works(tmp_path):
    store = JobStore(str(tmp_path))
    store.create("j1", {"roots": ["a"]}, "/out", ["/a"], "all frames")
    with pytest.raises(Exception, match="UNIQUE"):
        store.create("j1", {"roots": ["a"]}, "/out", ["/a"], "all frames")
    # A batch that fails half way leaves nothing behind and no transaction open.
    with pytest.raises(TypeError):
        store.begin_run("j1", "r1", [("a/ok.mp4", "/a", "ok.mp4"), ("a/bad.mp4", "/a", object())])
    assert store.videos("j1") == [] and store.get("j1")["runs"] == 0
    store.create("j2", {"roots": ["b"]}, "/out2", ["/b"], "all frames")
    assert [j["id"] for j in store.list()] == ["j2", "j1"]
    store.close()


def test_names_that_are_not_utf8_are_stored_shown_and_found_again(tmp_path):
    store = JobStore(str(tmp_path))
    name = os.fsdecode(b"day/caf\xe9.mp4")  # as discovery sees it: a surrogate for the bad byte
    store.create("j1", {"roots": ["day"]}, "/out", ["/lab/day"], "all frames")
    store.begin_run("j1", "r1", [(name, "/lab/day", name[4:])])
    rec = VideoRecord(run="r1", root="/lab/day", video=name[4:], out=name, status="failed")
    rec.error = f"cannot read {name}"
    store.record("j1", rec, Summary(total=1, failed=1))
    store.finish("j1", "done_failures", f"1 folder could not be read: /lab/{name}")
    (video,) = store.videos("j1")
    assert video["out_rel"] == "day/caf\\xe9.mp4" and video["status"] == "failed"
    assert video["reason"] == "cannot read day/caf\\xe9.mp4"
    assert store.video_path("j1", video["out_rel"]) == name  # the folder on disk, byte for byte
    assert store.video_path("j1", "day/other.mp4") is None
    store.close()


def test_a_database_from_before_raw_names_is_upgraded_in_place(tmp_path):
    import sqlite3

    old = sqlite3.connect(tmp_path / "jobs.sqlite")
    old.executescript(
        "CREATE TABLE videos (job_id TEXT NOT NULL, out_rel TEXT NOT NULL, root TEXT NOT NULL, "
        "video TEXT NOT NULL, status TEXT NOT NULL, worker TEXT, frames INTEGER, seconds REAL, "
        "reason TEXT, finished REAL, PRIMARY KEY (job_id, out_rel));"
        "INSERT INTO videos VALUES ('j0', 'day/a.mp4', '/lab/day', 'a.mp4', 'ok', 'w0', 5, 1.0, NULL, 1.0);"
    )
    old.commit()
    old.close()
    store = JobStore(str(tmp_path))
    assert store.video_path("j0", "day/a.mp4") == "day/a.mp4"  # rows from before keep working
    store.create("j1", {"roots": ["day"]}, "/out", ["/lab/day"], "all frames")
    store.begin_run("j1", "r1", [("day/b.mp4", "/lab/day", "b.mp4")])
    assert store.video_path("j1", "day/b.mp4") == "day/b.mp4"
    store.close()


# -- configuration errors exit 2 in one line (the systemd unit's RestartPreventExitStatus=2) --------


def _refused(*args: str) -> str:
    res = run_cli("serve", *args, timeout=60)
    assert res.returncode == 2, (res.returncode, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("snhoo-dask: error: "), res.stderr
    return lines[0]


@pytest.mark.slow  # seven starts of the command, a few seconds each
def test_serve_configuration_errors_exit_2_with_one_line(tmp_path):
    lab = tmp_path / "lab"
    lab.mkdir()
    (tmp_path / "file").write_text("x")
    state = str(tmp_path / "state")
    assert "--allow" in _refused("--state-dir", state)
    assert "--port" in _refused("--allow", str(lab), "--port", "http")
    assert "not a folder" in _refused("--allow", str(tmp_path / "file"), "--state-dir", state)
    assert "state folder" in _refused("--allow", str(lab), "--state-dir", str(tmp_path / "file"))
    assert "at least 16" in _refused("--allow", str(lab), "--state-dir", state, "--token", "short")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        assert "cannot listen" in _refused("--allow", str(lab), "--state-dir", state, "--port", port)
    assert "cannot listen" in _refused("--allow", str(lab), "--state-dir", state, "--host", "192.0.2.1")
    assert not subprocess.run(["pgrep", "-f", f"--state-dir {state}"], capture_output=True).stdout

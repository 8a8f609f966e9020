"""Many client addresses, each under its own connection cap, against a real ``snhoo-dask
serve`` whose limit on open files is low (RLIMIT_NOFILE 256, set before it starts): the
service keeps a global cap below that limit, so it answers the connections past it with a
503 instead of running out of descriptors, logs a few lines rather than a traceback per
failed accept, and answers a fresh request once the flood is over.

Linux routes all of 127/8 to the loopback device, so a client socket bound to 127.0.0.2 ..
127.0.0.9 is a client at another address (the per-address cap does not see them as one)."""

from __future__ import annotations

import resource
import socket
import subprocess
import sys
import time

import pytest
from helpers import call, start_embedded_serve
from videos import make_video

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

NOFILE = 256  # the service's limit on open files
ADDRESSES = [f"127.0.0.{i}" for i in range(2, 10)]
PER_ADDRESS = 48  # under the per-address cap (64), 384 in all: far past NOFILE
FLOOD_SECONDS = 4.0  # how long the flood is kept up (the stimulus, not a wait for anything)
STALL = 8.0  # $SNHOO_WEB_TIMEOUT: the flood's idle connections stay open while it lasts
MAX_LOG_LINES = 20


def low_nofile() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


def open_from(address: str, port: int) -> socket.socket:
    """A connection from ``address``, started without waiting (a full backlog does not block)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    s.bind((address, 0))
    s.connect_ex(("127.0.0.1", port))
    return s


def answered_busy(s: socket.socket) -> bool:
    try:
        return s.recv(200).startswith(b"HTTP/1.1 503")
    except OSError:  # nothing (yet), or reset after the answer was thrown away
        return False


def answered_soon(url: str, token: str, within: float = 10.0) -> int:
    """The status of a request to ``url``, asked again while it is 503, up to ``within`` s."""
    end = time.monotonic() + within
    while True:
        code = call(url, token=token)[0]
        if code != 503 or time.monotonic() > end:
            return code
        time.sleep(0.2)


def log_lines(path: str) -> list[str]:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read().splitlines()


@pytest.fixture
def svc(tmp_path):
    lab, frames = tmp_path / "lab", tmp_path / "frames"
    make_video(str(lab / "day1" / "a.mp4"), seconds=1)
    frames.mkdir()
    svc = start_embedded_serve(
        str(tmp_path), [str(lab)], [str(frames)], env={"SNHOO_WEB_TIMEOUT": str(STALL)}, preexec_fn=low_nofile
    )
    try:
        yield svc
    finally:
        svc.stop()


def test_a_flood_from_many_addresses_is_capped_below_the_open_file_limit(svc):
    assert call(svc.url + "/api/jobs", token=svc.token)[0] == 200
    before = len(log_lines(svc.log))
    socks: list[socket.socket] = []
    busy = 0
    try:
        end = time.monotonic() + FLOOD_SECONDS
        while time.monotonic() < end:
            # Each address kept at PER_ADDRESS connections: one the service has closed is
            # opened again, so the service is at its limit for the whole flood.
            kept = []
            for s in socks:
                if answered_busy(s):
                    busy += 1
                    s.close()
                else:
                    kept.append(s)
            socks = kept
            for address in ADDRESSES:
                mine = sum(1 for s in socks if s.getsockname()[0] == address)
                socks += [open_from(address, svc.port) for _ in range(PER_ADDRESS - mine)]
            time.sleep(0.05)  # the flood's own pace
        assert svc.proc.poll() is None, "the service died under the flood"
    finally:
        for s in socks:
            s.close()
    # Once the flood is over, a fresh request is answered (a 503 for at most a moment: the
    # service may still be closing its side of the flood's connections, and accepting the
    # ones that were waiting in its backlog).
    assert answered_soon(svc.url + "/api/jobs", svc.token) == 200
    added = log_lines(svc.log)[before:]
    assert len(added) <= MAX_LOG_LINES, f"{len(added)} log lines, e.g. {added[:5]}"
    assert not any("Traceback" in line for line in added), added[:20]
    # The connections past the cap were told so, not left hanging.
    assert busy > 0
    text = "\n".join(added)
    assert "open files" in text, added


def test_the_global_cap_leaves_room_below_the_open_file_limit():
    from snhoo_dask.web.server import connection_cap

    for soft in (256, 1024, 20000):
        cap = connection_cap(soft)
        assert 0 < cap <= soft - 128 and cap >= soft // 2, (soft, cap)
    assert connection_cap() < resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# The accept() failure itself, reached by a server whose cap is set past its limit (a limit
# lowered under a running service, or files its jobs hold): the same Tornado server, alone.
EMFILE_SERVER = r"""
import asyncio, logging, resource, sys
import tornado.web
from tornado.netutil import bind_sockets
from snhoo_dask.web.connections import CappedServer

class Hello(tornado.web.RequestHandler):
    def get(self):
        self.write("hello")

async def main():
    sockets = bind_sockets(0, "127.0.0.1")
    server = CappedServer(tornado.web.Application([(r"/", Hello)]), total=100000, idle_connection_timeout=30)
    server.add_sockets(sockets)
    print(sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
asyncio.run(main())
"""


def test_at_the_open_file_limit_accept_is_paused_and_logged_once(tmp_path):
    log = tmp_path / "server.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", EMFILE_SERVER], stdout=subprocess.PIPE, stderr=err, text=True
        )
    try:
        port = int(proc.stdout.readline())
        socks = [open_from(ADDRESSES[i % len(ADDRESSES)], port) for i in range(150)]
        end = time.monotonic() + 2.0
        while time.monotonic() < end:  # the flood kept up: the server is at its limit throughout
            socks.append(open_from(ADDRESSES[0], port))
            time.sleep(0.05)
        assert proc.poll() is None
        for s in socks:
            s.close()
        # Once the flood is over, a fresh request is answered.
        with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            s.settimeout(20)
            answer = b""
            while chunk := s.recv(4096):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"hello"), answer[:200]
    finally:
        proc.kill()
        proc.wait()
    lines = log.read_text(errors="replace").splitlines()
    assert not any("Traceback" in line for line in lines), lines[:20]
    emfile = [line for line in lines if "cannot accept connections" in line]
    assert 1 <= len(emfile) <= 2 and "Too many open files" in emfile[0], lines[:20]
    assert len(lines) <= MAX_LOG_LINES, lines[:20]

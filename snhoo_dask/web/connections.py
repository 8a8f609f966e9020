"""The connections the web service holds: at most ``per_client`` per client address and
``total`` in all, below the process's limit on open files, and accept() at that limit
handled without a busy loop or a log line per try.  How long one may stall is Tornado's
(``idle_connection_timeout``, ``body_timeout``); the numbers are ``server.Limits``."""

from __future__ import annotations

import errno
import logging
import resource
import socket
import time
from asyncio import Future

from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, StreamClosedError

DEFAULT_MAX_CONNECTIONS = 64
log = logging.getLogger("snhoo_dask.web")

# Many addresses, each under its own cap, could still take every file descriptor the process
# may open (RLIMIT_NOFILE): accept() then fails with EMFILE while the listening socket stays
# readable, so the loop spins on it, and the files the service itself opens (the job store,
# reports, images, the Dask comms) fail too.  So the service as a whole holds at most
# connection_cap() connections, a quarter of the limit (at least RESERVED_FDS) below it; the
# next ones get a 503 and are closed at once.
RESERVED_FDS = 128
MIN_TOTAL = 16
# Refusals and failed accepts are logged once per LOG_EVERY s with their count: a flood of
# them must not become a flood of log lines.  A failed accept pauses accepting ACCEPT_PAUSE s.
LOG_EVERY = 10.0
ACCEPT_PAUSE = 0.5
OUT_OF_FDS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
# Errors of one pending connection that accept() passes on (accept(2), Linux): that one is gone.
GONE = {
    errno.ECONNABORTED,
    errno.EPROTO,
    errno.ENETDOWN,
    errno.ENOPROTOOPT,
    errno.EHOSTDOWN,
    errno.ENONET,
    errno.EHOSTUNREACH,
    errno.EOPNOTSUPP,
    errno.ENETUNREACH,
    errno.EPERM,
}


def open_file_limit() -> int:
    """The process's soft limit on open files (RLIMIT_NOFILE)."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return 1 << 20 if soft == resource.RLIM_INFINITY else soft


def connection_cap(soft: int | None = None) -> int:
    """How many connections the service holds at once: room left for its own files."""
    soft = open_file_limit() if soft is None else soft
    return max(MIN_TOTAL, soft - max(RESERVED_FDS, soft // 4))


class Rare:
    """One log line per ``every`` s for each kind of event, with the count since the last."""

    def __init__(self, every: float = LOG_EVERY) -> None:
        self.every = every
        self._last: dict[str, float] = {}
        self._count: dict[str, int] = {}

    def warn(self, kind: str, message: str, *args: object) -> None:
        self._count[kind] = self._count.get(kind, 0) + 1
        now = time.monotonic()
        if kind in self._last and now - self._last[kind] < self.every:
            return
        self._last[kind] = now
        n = self._count.pop(kind)
        more = f" ({n} times since the last such line)" if n > 1 else ""
        log.warning(message + more, *args)


class _Acceptor:
    """Tornado's accept handler for one listening socket, but at the open file limit
    (EMFILE) one line per LOG_EVERY s, no traceback, and a pause instead of a busy loop."""

    BATCH = 128  # connections accepted per wakeup, as Tornado does: other work gets its turn

    def __init__(self, server: CappedServer, sock: socket.socket) -> None:
        self.server, self.sock = server, sock
        self.loop = IOLoop.current()
        self.listening = self.closed = False
        self.timer: object | None = None
        self.resume()

    def ready(self, fd: object, events: int) -> None:
        for _ in range(self.BATCH):
            if self.closed or not self.listening:
                return
            try:
                conn, address = self.sock.accept()
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno in GONE:
                    continue
                if e.errno not in OUT_OF_FDS:
                    raise
                self.server.rare.warn(
                    "accept",
                    "cannot accept connections: %s (%d open files at most, %d connections open); "
                    "pausing %g s",
                    e.strerror,
                    open_file_limit(),
                    self.server.total,
                    ACCEPT_PAUSE,
                )
                self.pause()
                return
            self.server.accepted(conn, address)

    def pause(self) -> None:
        self.loop.remove_handler(self.sock)
        self.listening = False
        self.timer = self.loop.call_later(ACCEPT_PAUSE, self.resume)

    def resume(self) -> None:
        self.timer = None
        if not self.closed:
            self.loop.add_handler(self.sock, self.ready, IOLoop.READ)
            self.listening = True

    def remove(self) -> None:
        """What TCPServer.stop() calls: no more accepting."""
        self.closed = True
        if self.timer is not None:
            self.loop.remove_timeout(self.timer)
        if self.listening:
            self.loop.remove_handler(self.sock)
            self.listening = False


class CappedServer(HTTPServer):
    """Tornado's HTTPServer with at most ``per_client`` connections per client address and
    ``total`` in all, and accept() failures at the open file limit logged rarely."""

    BUSY = (
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: 44\r\nConnection: close\r\nRetry-After: 5\r\n\r\n"
        b"503: too many connections from this address\n"
    )
    FULL = (
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: 45\r\nConnection: close\r\nRetry-After: 5\r\n\r\n"
        b"503: the service has too many connections open\n"
    )

    def initialize(
        self,
        *args,
        per_client: int = DEFAULT_MAX_CONNECTIONS,
        total: int | None = None,
        **kwargs,
    ) -> None:
        super().initialize(*args, **kwargs)
        self.per_client = per_client
        self.max_total = connection_cap() if total is None else total
        self.total = 0  # connections open now, refused ones until they are closed
        self.rare = Rare()
        self._open: dict[str, int] = {}  # client address -> its open connections
        self._client_of: dict[IOStream, str] = {}

    def add_sockets(self, sockets) -> None:
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = _Acceptor(self, sock).remove

    def accepted(self, conn: socket.socket, address) -> None:
        if self.total >= self.max_total:
            # Answered and closed at once, without a stream: it costs its descriptor only now.
            try:
                conn.setblocking(False)
                conn.send(self.FULL)
            except OSError:
                pass
            conn.close()
            self.rare.warn(
                "full",
                "refused a connection from %s: the service holds %d connections, its cap "
                "(below its limit of %d open files)",
                _client(address),
                self.max_total,
                open_file_limit(),
            )
            return
        self._handle_connection(conn, address)

    def handle_stream(self, stream: IOStream, address) -> None:
        client = _client(address)
        if self._open.get(client, 0) >= self.per_client:
            self.rare.warn(
                "per_client", "refused a connection from %s: it has %d open already", client, self.per_client
            )
            try:
                done = stream.write(self.BUSY)
            except StreamClosedError:  # gone before its answer: nothing to hold
                stream.close()
                return
            self.total += 1  # until its answer is written
            done.add_done_callback(lambda f: self._refused(stream, f))
            return
        self.total += 1
        self._open[client] = self._open.get(client, 0) + 1
        self._client_of[stream] = client
        super().handle_stream(stream, address)

    def _refused(self, stream: IOStream, written: Future[None]) -> None:
        written.exception()  # retrieved, so a failed write is not logged as never seen
        stream.close()
        self.total -= 1

    def on_close(self, server_conn: object) -> None:
        stream = getattr(server_conn, "stream", None)
        client = self._client_of.pop(stream, None) if stream is not None else None
        if client is not None:
            self.total -= 1
            left = self._open.get(client, 1) - 1
            if left > 0:
                self._open[client] = left
            else:
                self._open.pop(client, None)
        super().on_close(server_conn)


def _client(address) -> str:
    return address[0] if isinstance(address, tuple) and address else str(address)

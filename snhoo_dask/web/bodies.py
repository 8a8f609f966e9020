"""Request bodies kept to MAX_BODY, and request lines and headers bounded, without leaving
the client without an answer.

Tornado keeps a whole body in memory up to the server's ``max_body_size`` and, past it,
drops the connection with a bare "400 Bad Request" (a client still sending sees a reset).
Between the two, this delegate keeps only the first ``limit + 1`` bytes and reads the rest
away, so memory stays bounded while the handler sees a body over ``limit`` and answers 413
with its reason (``Base.guard``) on a connection that is still open.

Headers are alike: Tornado closes the connection without a word past its ``max_header_size``
(the server sets it to HARD_HEADERS), so below that a request line longer than MAX_URL gets
414 and headers longer than MAX_HEADERS get 431, answered here before any handler runs.
"""

from __future__ import annotations

from collections.abc import Awaitable

from tornado import httputil

MAX_URL = 32 * 1024  # a sheet's URL names a video's folder, percent-encoded: up to about 20 KiB
MAX_HEADERS = 64 * 1024  # Tornado's own default bound
HARD_HEADERS = 1024 * 1024  # past this Tornado drops the connection unanswered


class _KeepFirst(httputil.HTTPMessageDelegate):
    """One request: passes everything on, but only the first ``limit + 1`` body bytes."""

    def __init__(
        self, inner: httputil.HTTPMessageDelegate, limit: int, conn: httputil.HTTPConnection | None = None
    ) -> None:
        self.inner = inner
        self.room = limit + 1  # one byte over is enough for the handler to know
        self.conn = conn
        self.refused = False  # answered here: the handler never hears of this request

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        if self.conn is not None and isinstance(start_line, httputil.RequestStartLine):
            if len(start_line.path) > MAX_URL:
                self.refuse(414, "URI Too Long", f"the address is longer than {MAX_URL // 1024} KiB")
                return None
            if sum(len(k) + len(v) + 4 for k, v in headers.get_all()) > MAX_HEADERS:
                self.refuse(
                    431,
                    "Request Header Fields Too Large",
                    f"the request headers are larger than {MAX_HEADERS // 1024} KiB",
                )
                return None
        return self.inner.headers_received(start_line, headers)

    def refuse(self, code: int, reason: str, why: str) -> None:
        """Answer at once and close: the rest of the request is not read."""
        self.refused = True
        body = f"{code} {reason}: {why}\n".encode()
        headers = httputil.HTTPHeaders(
            {
                "Content-Type": "text/plain; charset=utf-8",
                "Content-Length": str(len(body)),
                "Connection": "close",
            }
        )
        if self.conn is None:  # the connection is gone: no one to answer
            return
        self.conn.write_headers(httputil.ResponseStartLine("HTTP/1.1", code, reason), headers, body)
        self.conn.finish()

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self.refused or self.room <= 0:
            return None
        chunk = chunk[: self.room]
        self.room -= len(chunk)
        return self.inner.data_received(chunk)

    def finish(self) -> None:
        if not self.refused:
            self.inner.finish()

    def on_connection_close(self) -> None:
        if not self.refused:
            self.inner.on_connection_close()


class BoundedBodies(httputil.HTTPServerConnectionDelegate):
    """What ``HTTPServer`` is given instead of the application itself."""

    def __init__(self, app: httputil.HTTPServerConnectionDelegate, limit: int) -> None:
        self.app = app
        self.limit = limit

    def start_request(self, server_conn: object, request_conn: httputil.HTTPConnection) -> _KeepFirst:
        return _KeepFirst(self.app.start_request(server_conn, request_conn), self.limit, request_conn)

    def on_close(self, server_conn: object) -> None:
        self.app.on_close(server_conn)

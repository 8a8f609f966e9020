"""Request bodies kept to MAX_BODY without leaving the client without an answer.

Tornado keeps a whole body in memory up to the server's ``max_body_size`` and, past it,
drops the connection with a bare "400 Bad Request" (a client still sending sees a reset).
Between the two, this delegate keeps only the first ``limit + 1`` bytes and reads the rest
away, so memory stays bounded while the handler sees a body over ``limit`` and answers 413
with its reason (``Base.guard``) on a connection that is still open.
"""

from __future__ import annotations

from collections.abc import Awaitable

from tornado import httputil


class _KeepFirst(httputil.HTTPMessageDelegate):
    """One request: passes everything on, but only the first ``limit + 1`` body bytes."""

    def __init__(self, inner: httputil.HTTPMessageDelegate, limit: int) -> None:
        self.inner = inner
        self.room = limit + 1  # one byte over is enough for the handler to know

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        return self.inner.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self.room <= 0:
            return None
        chunk = chunk[: self.room]
        self.room -= len(chunk)
        return self.inner.data_received(chunk)

    def finish(self) -> None:
        self.inner.finish()

    def on_connection_close(self) -> None:
        self.inner.on_connection_close()


class BoundedBodies(httputil.HTTPServerConnectionDelegate):
    """What ``HTTPServer`` is given instead of the application itself."""

    def __init__(self, app: httputil.HTTPServerConnectionDelegate, limit: int) -> None:
        self.app = app
        self.limit = limit

    def start_request(self, server_conn: object, request_conn: httputil.HTTPConnection) -> _KeepFirst:
        return _KeepFirst(self.app.start_request(server_conn, request_conn), self.limit)

    def on_close(self, server_conn: object) -> None:
        self.app.on_close(server_conn)

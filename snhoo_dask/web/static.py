"""The pages' CSS and JavaScript, opened by descriptor beneath the package's static folder.

Tornado's StaticFileHandler opens files by path and follows links (a link planted in the
static folder of a shared install would be served), and a NUL byte in the URL makes it fail
with a 500.  This handler takes its place (``static_handler_class``), so ``static_url`` in the
templates keeps working, with its ``?v=`` content hash for caching.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os

import tornado.web

from ..fs import fsafe
from .handlers import check_host

STATIC = os.path.realpath(os.path.join(os.path.dirname(__file__), "static"))
YEAR = 365 * 24 * 3600


class StaticFile(tornado.web.RequestHandler):
    """GET /static/<rel>: the same Host check as the pages; no token (the login refusal page
    itself has no secrets to style)."""

    _versions: dict[tuple[str, str], str | None] = {}

    def initialize(self, path: str) -> None:
        self.root = path

    def prepare(self) -> None:
        check_host(self, self.settings["service"].hosts)

    def get(self, rel: str) -> None:
        try:
            body = fsafe.read_beneath(self.root, rel)
        except OSError:
            raise tornado.web.HTTPError(404) from None
        self.set_header("Content-Type", mimetypes.guess_type(rel)[0] or "application/octet-stream")
        # A versioned URL names one content for good; an unversioned one is checked each time
        # (Tornado's ETag answers 304 when nothing changed).
        cache = f"public, max-age={10 * YEAR}" if self.get_query_argument("v", None) else "no-cache"
        self.set_header("Cache-Control", cache)
        self.write(body)

    @classmethod
    def make_static_url(cls, settings: dict, path: str, include_version: bool = True) -> str:
        """What ``static_url(path)`` gives a template: ``/static/path?v=<content hash>``."""
        url = settings.get("static_url_prefix", "/static/") + path
        version = cls.get_version(settings, path) if include_version else None
        return f"{url}?v={version}" if version else url

    @classmethod
    def get_version(cls, settings: dict, path: str) -> str | None:
        # Computed once per file, as Tornado does: the package's files do not change while serving.
        key = (settings["static_path"], path)
        if key not in cls._versions:
            try:
                data = fsafe.read_beneath(settings["static_path"], path)
                cls._versions[key] = hashlib.md5(data, usedforsecurity=False).hexdigest()
            except OSError:
                cls._versions[key] = None
        return cls._versions[key]

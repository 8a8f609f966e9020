"""Turn a submitted form or API body into a ready ``Job``, or a reason it cannot start.

Every check the command line makes happens here through the same library calls
(``parse_selection``, ``parse_extensions``, ``Job`` -> ``find_videos``, ``prepare_output``),
plus the one a shared web service needs on top: roots and outputs must lie under the
base folders the service was started with.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ..discover import DiscoveryError, parse_extensions
from ..errors import JobError
from ..job import Job, new_run_id
from ..output import check_apart, prepare_output
from ..planning import find_videos
from ..selection import MODES, SelectionError, parse_selection
from ..settings import Settings
from ..writers import FORMATS


class RequestError(Exception):
    """A request the service refuses; ``status`` is the HTTP code, ``field`` the form field."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def _real(path: str) -> str:
    return os.path.realpath(os.path.abspath(os.path.expanduser(path)))


def _inside(path: str, base: str) -> bool:
    return path == base or os.path.commonpath([path, base]) == base


@dataclass
class PathPolicy:
    """Which folders the service may read videos from and write frames to."""

    allow: list[str]
    out_base: list[str]

    @classmethod
    def make(cls, allow: list[str], out_base: list[str]) -> PathPolicy:
        allow_real = [_real(a) for a in allow]
        return cls(allow_real, [_real(o) for o in out_base] or allow_real)

    def resolve(self, path: str, bases: list[str], what: str, field: str) -> str:
        """An absolute, symlink-free path inside one of ``bases``; relative paths are taken
        from the first base where they exist (so users can type just ``160811/test``)."""
        path = path.strip()
        if not path:
            raise RequestError(400, f"give the {what}", field)
        if not bases:
            raise RequestError(
                403,
                f"this service was started without any allowed folder for the {what} "
                "(start it with --allow DIR)",
                field,
            )
        if os.path.isabs(path) or path.startswith("~"):
            real = _real(path)
        else:
            candidates = [_real(os.path.join(b, path)) for b in bases]
            real = next((c for c in candidates if os.path.exists(c)), candidates[0])
        if not any(_inside(real, b) for b in bases):
            raise RequestError(
                403,
                f"{what} {path!r} is outside the folders this service may use ({', '.join(bases)})",
                field,
            )
        return real


@dataclass
class Submission:
    """What the form and the API both send (all text, as typed)."""

    roots: list[str]
    out: str = ""
    mode: str = "all"
    value: str = ""
    fmt: str = "jpg"
    quality: int = 90
    ext: str = ""
    overwrite: bool = False

    @classmethod
    def from_json(cls, body) -> Submission:
        if not isinstance(body, dict):
            raise RequestError(400, "the request body must be a JSON object")
        unknown = set(body) - {"roots", "out", "mode", "value", "format", "quality", "ext", "overwrite"}
        if unknown:
            raise RequestError(400, f"unknown field(s): {', '.join(sorted(unknown))}")
        roots = body.get("roots", [])
        if isinstance(roots, str):
            roots = roots.splitlines()
        if not isinstance(roots, list) or not all(isinstance(r, str) for r in roots):
            raise RequestError(400, "roots must be a list of folder paths", "roots")
        for key in ("out", "mode", "value", "format", "ext"):
            if key in body and not isinstance(body[key], str):
                raise RequestError(400, f"{key} must be a string", key)
        quality = body.get("quality", 90)
        if isinstance(quality, bool) or not isinstance(quality, int):
            raise RequestError(400, "quality must be a whole number from 1 to 100", "quality")
        if not isinstance(body.get("overwrite", False), bool):
            raise RequestError(400, "overwrite must be true or false", "overwrite")
        return cls(
            roots=roots,
            out=body.get("out", ""),
            mode=body.get("mode", "all"),
            value=body.get("value", ""),
            fmt=body.get("format", "jpg"),
            quality=quality,
            ext=body.get("ext", ""),
            overwrite=body.get("overwrite", False),
        )

    @classmethod
    def from_form(cls, get) -> Submission:
        """``get(name, default)`` reads one form field."""
        try:
            quality = int(get("quality", "90") or 90)
        except ValueError:
            raise RequestError(400, "quality must be a whole number from 1 to 100", "quality") from None
        return cls(
            roots=get("roots", "").splitlines(),
            out=get("out", ""),
            mode=get("mode", "all"),
            value=get("value", ""),
            fmt=get("format", "jpg"),
            quality=quality,
            ext=get("ext", ""),
            overwrite=get("overwrite", "") in ("on", "1", "true"),
        )

    def spec(self) -> dict:
        """The JSON-able form kept with the job, to resume it later with the same options."""
        return {
            "roots": self.roots,
            "out": self.out,
            "mode": self.mode,
            "value": self.value,
            "format": self.fmt,
            "quality": self.quality,
            "ext": self.ext,
            "overwrite": self.overwrite,
        }


def _selection(mode: str, value: str):
    """The CLI's ``parse_selection``, fed from a mode and one value."""
    if mode not in MODES:
        raise RequestError(400, f"unknown frame selection {mode!r}; choose one of {', '.join(MODES)}", "mode")
    value = value.strip()
    if mode in ("all", "keyframes"):
        return parse_selection(keyframes=mode == "keyframes")
    if not value:
        raise RequestError(400, f"frame selection {mode!r} needs a value", "value")
    try:
        if mode == "every":
            if not re.fullmatch(r"\d+", value):
                raise RequestError(400, f"every wants a whole number of frames, not {value!r}", "value")
            return parse_selection(every=int(value))
        return parse_selection(**{mode: value})
    except SelectionError as e:
        # The library words its errors for the command line (--frames ...); the form has no dashes.
        raise RequestError(
            400, re.sub(r"--(every|fps|frames|times|keyframes)\b", r"\1", str(e)), "value"
        ) from None


def build_job(sub: Submission, policy: PathPolicy, busy_outs: set[str]) -> Job:
    """Validate everything, create the output folder last, and return a Job ready to run."""
    roots = [r.strip() for r in sub.roots if r.strip()]
    if not roots:
        raise RequestError(400, "give at least one root folder", "roots")
    real_roots = [policy.resolve(r, policy.allow, "root", "roots") for r in roots]
    out_text = sub.out.strip() or f"{os.path.basename(real_roots[0])}-frames"
    out = policy.resolve(out_text, policy.out_base, "output folder", "out")
    try:
        check_apart(out, real_roots)
    except JobError as e:
        raise RequestError(400, str(e), "out") from None
    if sub.fmt not in FORMATS:
        raise RequestError(400, f"unknown format {sub.fmt!r}; choose one of {', '.join(FORMATS)}", "format")
    if not 1 <= sub.quality <= 100:
        raise RequestError(400, "quality must be a whole number from 1 to 100", "quality")
    selection = _selection(sub.mode, sub.value)
    try:
        extensions = parse_extensions(sub.ext or None)
    except DiscoveryError as e:
        raise RequestError(400, str(e).replace("--ext", "extensions"), "ext") from None
    if out in busy_outs:
        raise RequestError(
            409,
            f"another job of this service is writing to {out}; wait for it or choose another output folder",
            "out",
        )
    settings = Settings(out=out, selection=selection, fmt=sub.fmt, quality=sub.quality, run_id=new_run_id())
    try:
        job = Job(find_videos(real_roots, out, extensions), settings, overwrite=sub.overwrite)
    except JobError as e:
        raise RequestError(400, str(e), "roots") from None
    try:
        prepare_output(out, real_roots)
    except JobError as e:
        raise RequestError(400, str(e), "out") from None
    return job

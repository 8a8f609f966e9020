"""Turn a ``Submission`` into a ready ``Job``, or a reason it cannot start.

The job itself is built the one way the command line builds it too, from a ``JobSpec``
(``jobs/spec.py``): every check it makes is made here.  On top, what a shared web service
needs: roots and outputs inside the base folders the service was started with (the
``PathPolicy``), and every refusal found at once for the form (``other_problems``).  The
bounds on the request itself are ``submission.py``'s.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from ..errors import UsageError
from ..fs.bounded import Stuck, bounded, bounded_all
from ..jobs.discover import check_root, inside
from ..jobs.job import Job
from ..jobs.spec import JobSpec, check_options
from ..jobs.spec import build_job as build_spec
from ..options import DEFAULTS
from .submission import (
    MAX_PATH,
    MAX_ROOTS,
    RequestError,
    Submission,
    refused,
    selection_fields,
    short,
    web_name,
)


def _real(path: str) -> str:
    return os.path.realpath(os.path.abspath(os.path.expanduser(path)))


def _inside(path: str, base: str) -> bool:
    return inside(path, [base])


# A folder check (a base's state, a requested path resolved) is waited for at most this long:
# a disk that hangs (its FUSE daemon stopped, its USB link gone) blocks every call on it.
LOOK_SECONDS = 1.0
RESOLVE_SECONDS = 5.0
AVAILABLE, MISSING, NOT_RESPONDING = "available", "missing", "not responding"
_last_path: dict[str, str] = {}  # a base as given -> where it led when it last answered


@dataclass(frozen=True)
class Base:
    """One --allow or --out-base folder as given, and whether it can be used right now."""

    given: str

    def look(self, wait: float = LOOK_SECONDS) -> tuple[str, str]:
        """(the folder's real path, AVAILABLE, MISSING or NOT_RESPONDING), read afresh (a
        disk mounted after the start, or a link re-pointed, counts) within ``wait`` s."""
        try:
            path, is_dir = bounded(("base", self.given), lambda: _look(self.given), wait)
        except Stuck:
            return _last_path.get(self.given, os.path.abspath(self.given)), NOT_RESPONDING
        _last_path[self.given] = path
        return path, AVAILABLE if is_dir else MISSING

    @property
    def path(self) -> str:
        return self.look()[0]

    @property
    def available(self) -> bool:
        return self.look()[1] == AVAILABLE


def _look(given: str) -> tuple[str, bool]:
    path = _real(given)
    return path, os.path.isdir(path)


@dataclass(frozen=True)
class Folders:
    """What the pages show of the bases: each one's path and state, read once."""

    allow: list[tuple[str, str]]
    out_base: list[tuple[str, str]]

    def unavailable(self) -> list[str]:
        return list(dict.fromkeys(p for p, state in [*self.allow, *self.out_base] if state != AVAILABLE))

    def to_json(self) -> dict:
        def shown(looks):
            return [{"path": p, "available": s == AVAILABLE, "state": s} for p, s in looks]

        return {"allow": shown(self.allow), "out_base": shown(self.out_base)}


@dataclass
class PathPolicy:
    """Which folders the service may read videos from and write frames to.

    A folder missing at start (an unplugged disk) is kept: it is shown as unavailable and
    refused in requests until it appears, without a restart.  A folder whose disk does not
    answer is shown ``not responding`` and refused the same way: no request waits on it.
    """

    allow_bases: list[Base]
    out_bases: list[Base]

    @classmethod
    def make(cls, allow: list[str], out_base: list[str]) -> PathPolicy:
        allow_bases = [Base(a) for a in allow]
        return cls(allow_bases, [Base(o) for o in out_base] or allow_bases)

    def folders(self, wait: float = LOOK_SECONDS) -> Folders:
        """Every base looked at together, within about ``wait`` s in all (it may block:
        call it off the event loop)."""
        bases = list(dict.fromkeys([*self.allow_bases, *self.out_bases]))
        found = bounded_all({("base", b.given): partial(_look, b.given) for b in bases}, wait)
        looks = {}
        for b in bases:
            got = found[("base", b.given)]
            if isinstance(got, Stuck):
                looks[b] = (_last_path.get(b.given, os.path.abspath(b.given)), NOT_RESPONDING)
            elif isinstance(got, BaseException):
                looks[b] = (os.path.abspath(b.given), MISSING)
            else:
                _last_path[b.given] = got[0]
                looks[b] = (got[0], AVAILABLE if got[1] else MISSING)
        return Folders([looks[b] for b in self.allow_bases], [looks[b] for b in self.out_bases])

    @property
    def allow(self) -> list[str]:
        return [p for p, _ in self.folders().allow]

    @property
    def out_base(self) -> list[str]:
        return [p for p, _ in self.folders().out_base]

    def unavailable(self) -> list[str]:
        return self.folders().unavailable()

    def status(self) -> dict:
        return self.folders().to_json()

    def resolve(self, path: str, bases: list[Base], what: str, field: str) -> str:
        """An absolute, symlink-free path inside one of ``bases``; relative paths are taken
        from the first base where they exist (so users can type just ``160811/test``)."""
        path = path.strip()
        if not path:
            raise RequestError(400, f"give the {what}", field)
        if len(path) > MAX_PATH:
            raise RequestError(400, f"the {what} path is longer than {MAX_PATH} characters", field)
        if not bases:
            raise RequestError(
                403,
                f"this service was started without any allowed folder for the {what} "
                "(start it with --allow DIR)",
                field,
            )
        looks = [(b, *b.look()) for b in bases]
        ready = [p for _, p, state in looks if state == AVAILABLE]
        hung = [p for _, p, state in looks if state == NOT_RESPONDING]
        if os.path.isabs(path) or path.startswith("~"):
            typed = os.path.abspath(os.path.expanduser(path))
            stuck = [h for h in hung if _inside(typed, h)]
            if stuck:
                raise _not_responding(stuck[0], what, path, field)
            real = _bounded_real(path, what, field)
            missing = [p for _, p, state in looks if state == MISSING and _inside(real, p)]
        else:
            candidates = [_bounded_real(os.path.join(b, path), what, field) for b in ready]
            real = next((c for c in candidates if _bounded(os.path.exists, c, what, field)), "")
            # Not in any folder there now: it may well be on one that is missing or hung.
            if not real and hung:
                raise _not_responding(hung[0], what, path, field)
            missing = [] if real else [p for _, p, state in looks if state == MISSING]
            real = real or (candidates[0] if candidates else "")
        if missing:
            raise RequestError(
                409,
                f"the folder {missing[0]} is not available now (an unplugged disk?); "
                f"the {what} {short(path)} cannot be used until it is back",
                field,
            )
        if not any(_inside(real, b) for b in ready):
            raise RequestError(
                403,
                f"{what} {short(path)} is outside the folders this service may use ({', '.join(ready)})",
                field,
            )
        return real


def _not_responding(base: str, what: str, path: str, field: str) -> RequestError:
    return RequestError(
        409,
        f"the folder {base} is not available now: its disk is not responding; "
        f"the {what} {short(path)} cannot be used until it answers",
        field,
    )


def _bounded(fn, path: str, what: str, field: str):
    """``fn(path)`` within RESOLVE_SECONDS, or a 409 (a disk that hangs below a base)."""
    try:
        return bounded(("resolve", fn.__name__, path), lambda: fn(path), RESOLVE_SECONDS)
    except Stuck:
        raise RequestError(
            409, f"the {what} {short(path)} did not answer within {RESOLVE_SECONDS:g} s (a hung disk?)", field
        ) from None


def _bounded_real(path: str, what: str, field: str) -> str:
    return _bounded(_real, path, what, field)


def build_job(sub: Submission, policy: PathPolicy, claim: Callable[[str], None]) -> Job:
    """Resolve the folders inside the service's allowed ones, then build the job the one way
    (``jobs.spec.build_job``): every option checked, the output folder created last.

    ``claim(out)`` takes the output folder for this job or raises RequestError(409); it is
    called as soon as the folder is known, so two requests for one folder cannot both pass.
    """
    roots = [r.strip() for r in sub.roots if r.strip()]
    if not roots:
        raise RequestError(400, "give at least one root folder", "roots")
    real_roots = list(dict.fromkeys(policy.resolve(r, policy.allow_bases, "root", "roots") for r in roots))
    out_text = sub.out.strip() or f"{os.path.basename(real_roots[0])}-frames"
    out = policy.resolve(out_text, policy.out_bases, "output folder", "out")
    spec = JobSpec(
        roots=tuple(real_roots),
        out=out,
        **selection_fields(sub.mode, sub.value),
        **(sub.options() | {"ext": sub.ext or None}),
    )
    try:
        # Discovery follows links; under the service it must not leave the allowed folders.
        allowed = [p for p, state in policy.folders().allow if state == AVAILABLE]
        return build_spec(spec, confine=allowed, claim=claim, new_or_ours=True)
    except RequestError:
        raise
    except UsageError as e:
        raise refused(e) from None


MAX_PROBLEMS = 12  # at most this many refusals are looked for in one submission


def other_problems(sub: Submission, policy: PathPolicy, known: set[str | None]) -> list[RequestError]:
    """Every other refusal of ``sub``, about a field not in ``known``, so that the form can
    show them all at once rather than one per try.  Nothing is created, claimed or searched:
    each root and the output folder are resolved on their own, the selection parsed, and the
    options checked one at a time (an option at fault is set back to its default and the
    rest checked again).  What only the job itself finds (a root without videos) still comes
    on its own."""
    found: list[RequestError] = []

    def note(e: RequestError) -> None:
        if e.field not in known and len(found) < MAX_PROBLEMS:
            known.add(e.field)
            found.append(e)

    roots = [r.strip() for r in sub.roots if r.strip()]
    if not roots:
        note(RequestError(400, "give at least one root folder", "roots"))
    for root in roots[:MAX_ROOTS]:
        try:
            check_root(policy.resolve(root, policy.allow_bases, "root", "roots"))
        except RequestError as e:
            note(e)
        except UsageError as e:
            note(RequestError(400, str(e), "roots"))
    if sub.out.strip():
        try:
            policy.resolve(sub.out, policy.out_bases, "output folder", "out")
        except RequestError as e:
            note(e)
    try:
        selection = selection_fields(sub.mode, sub.value)
    except RequestError as e:
        note(e)
        selection = {}
    options = sub.options()
    defaults = DEFAULTS.options()
    for _ in range(MAX_PROBLEMS):
        try:
            check_options(
                JobSpec(roots=(), out="", **selection, **(options | {"ext": options["ext"] or None}))
            )
            break
        except UsageError as e:
            note(refused(e))
            if e.field in options and options[e.field] != defaults[e.field]:
                options[e.field] = defaults[e.field]
            elif selection and web_name(e.field or "") == "value":
                selection = {}
            else:
                break
    return found

"""What one request carries: the ``Submission`` read from a form or a JSON body, held to
bounds (far above any real job, far below a memory problem), and ``RequestError``, how the
service refuses a request: an HTTP status, the form field at fault and one short line.

Every option is taken as ``options.py`` declares it; what is checked against the disks (the
folders, the job itself) is ``validate.py``'s.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError
from ..frames.selection import MODE_BY_NAME, MODES, SelectionError
from ..options import Declared, Options, Selected, declared, type_words


class RequestError(UsageError):
    """A request the service refuses; ``status`` is the HTTP code, ``field`` the form field."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        # Library messages may quote what was sent; an answer never carries all of a long input.
        message = message.splitlines()[0] if message else ""
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 3] + "..."
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.sub: Submission | None = None  # what to show again in the form, when not the input
        self.others: list[RequestError] = []  # more refusals of the same request (the form shows all)


# Bounds on what one request may carry: far above any real job, far below a memory problem.
MAX_BODY = 1024 * 1024
MAX_ROOTS = 64
MAX_PATH = 4096
MAX_VALUE = 65536  # a long list of frame numbers or times
MAX_SHORT = 256  # mode, format, extensions
SHOWN = 120  # how much of a user's text a message quotes
MAX_MESSAGE = 400


def short(text: str, limit: int = SHOWN) -> str:
    """A user's text for a message: never the whole of a long input."""
    text = repr(text)
    return text if len(text) <= limit else text[: limit - 5] + "...'"


# No file name holds a NUL; os functions would raise ValueError (a 500) on it.
_NUL = "{} holds a NUL character, which no path can contain"


def _not_text(value: str) -> bool:
    """True for text with lone surrogates (JSON ``\\udcxx`` escapes): no real path typed."""
    try:
        value.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


@dataclass(kw_only=True)
class Submission(Options):
    """What the form and the API both send, as typed: the job's ``Options`` as they are,
    the roots and output folder as text, and the frame selection as a mode and one value
    (for mode "scenes", the value is the threshold).  No scratch: SCRATCH_REFUSED."""

    roots: list[str]
    out: str = ""
    mode: str = "all"
    value: str = ""

    @classmethod
    def from_json(cls, body) -> Submission:
        if not isinstance(body, dict):
            raise RequestError(400, "the request body must be a JSON object")
        if "scratch" in body:
            raise RequestError(400, SCRATCH_REFUSED, "scratch")
        taken = {d.web_name: d for d in WEB_OPTIONS}
        unknown = set(body) - {"roots", "out", "mode", "value"} - set(taken)
        if unknown:
            raise RequestError(400, f"unknown field(s): {', '.join(sorted(unknown))}")
        roots = body.get("roots", [])
        # A list, always: a string split into lines would take "a,b" or a path with a newline
        # as something else than what the script meant (the form's textarea is split instead).
        if not isinstance(roots, list) or not all(isinstance(r, str) for r in roots):
            raise RequestError(400, "roots must be a list of folder paths", "roots")
        for key in ("out", "mode", "value"):
            if key in body and not isinstance(body[key], str):
                raise RequestError(400, f"{key} must be a string", key)
        values = {}
        for key, d in taken.items():
            value = body.get(key, d.default)
            if not _typed(d, value):
                raise RequestError(400, f"{key} must be {type_words(d)}", key)
            values[d.name] = value
        return cls.checked(
            roots=roots,
            out=body.get("out", ""),
            mode=body.get("mode", "all"),
            value=body.get("value", ""),
            **values,
        )

    @classmethod
    def from_form(cls, get) -> Submission:
        """``get(name, default)`` reads one form field.  Every field that does not parse is
        found: the first one's RequestError is raised with the others in ``others`` and the
        submission (those fields at their defaults) in ``sub``, for the rest to be checked."""
        errors: list[RequestError] = []
        values = {}
        for d in WEB_OPTIONS:
            try:
                values[d.name] = _from_text(d, get(d.web_name, ""))
            except RequestError as e:
                errors.append(e)
                values[d.name] = d.default
        sub = cls.checked(
            roots=get("roots", "").splitlines(),
            out=get("out", ""),
            mode=get("mode", "all"),
            value=get("value", ""),
            **values,
        )
        if errors:
            errors[0].sub = sub
            errors[0].others = errors[1:]
            raise errors[0]
        return sub

    @classmethod
    def checked(cls, **fields) -> Submission:
        """A submission within the bounds; past them a RequestError whose ``sub`` holds the
        fields with the offending one emptied (a form shown again never echoes a huge input)."""
        sub = cls(**fields)
        limits = {"out": MAX_PATH, "value": MAX_VALUE, "mode": MAX_SHORT}
        limits.update((d.name, MAX_SHORT) for d in WEB_OPTIONS if d.kind is str)
        problem = None
        if len(sub.roots) > MAX_ROOTS:
            problem = ("roots", f"give at most {MAX_ROOTS} root folders (got {len(sub.roots)})")
        elif any(len(r) > MAX_PATH for r in sub.roots):
            problem = ("roots", f"a root path is longer than {MAX_PATH} characters")
        elif any(_not_text(r) for r in sub.roots):
            problem = ("roots", "a root path is not valid UTF-8 text")
        elif any("\0" in r for r in sub.roots):
            problem = ("roots", _NUL.format("roots"))
        elif "\0" in sub.out:
            problem = ("out", _NUL.format("out"))
        for name, limit in limits.items():
            if problem:
                break
            value = getattr(sub, name) or ""
            if len(value) > limit:
                problem = (name, f"{web_name(name)} is longer than {limit} characters")
            elif _not_text(value):
                problem = (name, f"{web_name(name)} is not valid UTF-8 text")
        if problem:
            field, message = problem
            setattr(sub, field, [] if field == "roots" else "")
            error = RequestError(400, message, web_name(field))
            error.sub = sub
            raise error
        return sub

    def spec(self) -> dict:
        """The JSON-able form kept with the job, to resume it later with the same options."""
        sent = {"roots": self.roots, "out": self.out, "mode": self.mode, "value": self.value}
        return sent | {d.web_name: getattr(self, d.name) for d in WEB_OPTIONS}


def _typed(d: Declared, value: object) -> bool:
    """Whether a JSON value has the option's type (its bounds: ``options.check``)."""
    if value is None:
        return d.optional
    if d.kind is bool or isinstance(value, bool):
        return d.kind is bool and isinstance(value, bool)
    if d.kind is int:
        return isinstance(value, int)
    if d.kind is float:
        return isinstance(value, int | float)
    return isinstance(value, str)


_TRUE = ("on", "1", "true")


def _from_text(d: Declared, text: str) -> object:
    """An option's value from a form field, typed as text; an empty box is the default.
    Never an int() or float() of thousands of digits: a number that long is refused by its
    length (past 1e308 float() gives inf, which ``options.check`` refuses with the range)."""
    if d.kind is bool:
        return text in _TRUE
    text = text.strip()
    if d.kind is str:
        return text or d.default
    if not text:
        return d.default
    try:
        if len(text) > MAX_NUMBER:
            raise ValueError(text)
        return int(text) if d.kind is int else float(text)
    except ValueError:
        raise RequestError(400, f"{_label(d.name)} must be {type_words(d)}", d.web_name) from None


# Every option the web takes: the selection is a mode and one value instead.
WEB_OPTIONS = tuple(d for d in declared(Options) if d.meta.web)
MAX_NUMBER = 40  # digits and signs of a number typed in a form box

# A web field for each JobSpec field it does not call the same (the selection is a mode and
# one value), and the words a message uses for an option (the command line says --max-side).
_SELECTION_FIELDS = {d.name for d in declared(Selected)}


def web_name(name: str) -> str:
    """The web's field for a JobSpec field: the selection's are all the one value box."""
    if name in _SELECTION_FIELDS:
        return "value"
    return next((d.web_name for d in WEB_OPTIONS if d.name == name), name)


def _label(name: str) -> str:
    """How a web message names an option: its JSON key, in words (``max side``)."""
    if name in _SELECTION_FIELDS:
        return name.replace("_", " ")
    return "extensions" if name == "ext" else web_name(name).replace("_", " ")


def refused(e: UsageError, status: int = 400) -> RequestError:
    """A job spec's refusal as the web says it: its option names, its field names."""
    return RequestError(status, e.worded(_label), web_name(e.field) if e.field else None)


def selection_fields(mode: str, value: str) -> dict:
    """The JobSpec's selection fields from a mode and one value (typed text)."""
    if mode not in MODES:
        raise RequestError(
            400, f"unknown frame selection {short(mode)}; choose one of {', '.join(MODES)}", "mode"
        )
    try:
        return MODE_BY_NAME[mode].arguments(value)
    except SelectionError as e:
        raise RequestError(400, str(e), "value") from None


SCRATCH_REFUSED = (
    "scratch is not taken from the web: it is a folder on every worker, and a web user could "
    "make the workers write copies of videos anywhere; set $SNHOO_SCRATCH where the workers start"
)

"""Calls on a disk that may never return, waited for a bounded time.

A disk whose FUSE daemon is stopped, or whose USB link or NFS server hangs, blocks every
call on it (even ``stat``) in the kernel, uninterruptibly and for as long as it hangs.  Such
a call cannot be cancelled; it can only be kept away from whoever must go on answering.  So
each runs in a daemon thread of its own, and the caller waits at most ``wait`` seconds.
While a call of one key is still running, no second one is started: asking again waits for
the same call, and a call already older than the wait answers ``Stuck`` at once, so a hung
disk costs one thread, not one per request.  A finished call's value may be reused for a
while (``start``'s ``ttl``: the disks table's free space and video counts).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import SnhooError

T = TypeVar("T")


class Stuck(SnhooError, OSError):
    """The call did not answer within its time bound (its disk hangs); it may still be
    running in its own thread."""


class Call:
    """One call in a daemon thread of its own: waited for, never joined."""

    def __init__(self, key, fn: Callable[[], Any], keep: bool) -> None:
        self.started = time.monotonic()
        self.value: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        threading.Thread(target=self._run, args=(key, fn, keep), daemon=True, name="snhoo-bounded").start()

    def _run(self, key, fn: Callable[[], Any], keep: bool) -> None:
        try:
            self.value = fn()
        except BaseException as e:  # noqa: BLE001 - handed to whoever waits
            self.error = e
        finally:
            self.done.set()
            if not keep:  # its value is never reused: no need to hold it
                with _lock:
                    if _calls.get(key) is self:
                        del _calls[key]

    def fresh(self, ttl: float) -> bool:
        """Still running, or finished less than ``ttl`` s after it started."""
        return not self.done.is_set() or time.monotonic() - self.started < ttl

    def wait(self, until: float) -> bool:
        """Whether it finished by ``until`` (a ``time.monotonic()`` time)."""
        return self.done.wait(max(0.0, until - time.monotonic()))


_calls: dict[Any, Call] = {}
_lock = threading.Lock()


def start(key, fn: Callable[[], Any], ttl: float = 0.0) -> Call:
    """The call of ``key`` still running, or one that finished within ``ttl`` s of its
    start; else ``fn`` started now.  A finished call is never reused with no ``ttl``, even
    in the moment before it leaves the table (a second look must read again)."""
    with _lock:
        call = _calls.get(key)
        if call is None or not call.fresh(ttl):
            call = _calls[key] = Call(key, fn, keep=ttl > 0)
        return call


def _result(call: Call, key, until: float):
    if not call.done.wait(max(0.0, until - time.monotonic())):
        raise Stuck(f"no answer within {until - call.started:.1f} s: {key!r}")
    if call.error is not None:
        raise call.error
    return call.value


def bounded(key, fn: Callable[[], T], wait: float) -> T:
    """``fn()``'s value (or its exception) if it comes within ``wait`` s of the call's start;
    Stuck otherwise.  ``key`` names what is read: one call per key runs at a time."""
    call = start(key, fn)
    return _result(call, key, call.started + wait)


def bounded_all(calls: dict[Any, Callable[[], T]], wait: float) -> dict[Any, T | BaseException]:
    """Every call started at once and waited for together (within ``wait`` s in all): key ->
    its value, or the exception it raised, or Stuck."""
    started = {key: start(key, fn) for key, fn in calls.items()}
    until = time.monotonic() + wait
    out: dict[Any, T | BaseException] = {}
    for key, call in started.items():
        try:
            out[key] = _result(call, key, min(until, call.started + wait))
        except BaseException as e:  # noqa: BLE001 - the caller decides
            out[key] = e
    return out


# -- a long walk that must not hang ----------------------------------------------------------


class Stalled(SnhooError, OSError):
    """A watched call made no progress for its stall bound; ``where`` is what it was
    reading then (as ``beat`` last said)."""

    def __init__(self, where: str, seconds: float) -> None:
        super().__init__(f"{where} does not answer: no reply in {seconds:g} s (a disk that hangs?)")
        self.where = where


class _Watch:
    def __init__(self) -> None:
        self.last = time.monotonic()
        self.where = "a folder"


_watching = threading.local()


def beat(what: str, path: str) -> None:
    """Say that the watched call on this thread (if any) is about to read ``path`` (``what``
    names it for a message: "the root", "the folder"); a no-op outside ``watched``."""
    watch = getattr(_watching, "watch", None)
    if watch is not None:
        watch.last = time.monotonic()
        watch.where = f"{what} {path}"


def watched(fn: Callable[[], T], stall: float, poll: float = 0.2) -> T:
    """``fn()`` run in a daemon thread of its own, however long it takes as long as it goes on
    calling ``beat``: Stalled once no beat came for ``stall`` s (one read that hangs), the
    thread left to its disk.  The caller waits in short steps, so Ctrl-C in the main thread
    raises KeyboardInterrupt at once instead of waiting for a read that never returns."""
    watch = _Watch()
    result: dict = {}
    done = threading.Event()

    def run() -> None:
        _watching.watch = watch
        try:
            result["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - raised again in the caller
            result["error"] = e
        finally:
            done.set()

    threading.Thread(target=run, daemon=True, name="snhoo-watched").start()
    while not done.wait(poll):
        if time.monotonic() - watch.last > stall:
            raise Stalled(watch.where, stall)
    if "error" in result:
        raise result["error"]
    return result["value"]

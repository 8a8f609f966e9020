"""Progress while a task decodes: images written so far, reported to the job's client.

A task's own result reaches the client only when the whole video (or piece, or batch) is
done; a 2-minute video decoded in one task would say nothing for half a minute.  So each
task tells the scheduler, at most every ``EVERY`` s, how many images it has written, as a
Dask event (``distributed.Worker.log_event``); the client subscribes to the topic
(``distributed.Client.subscribe_topic``, ``jobs/progress.py``).

Why events: they ride the worker's existing batched stream to the scheduler and the
client's existing connection from it, with no state of their own on the scheduler but a
bounded log, no extra connection, and nothing to clean up; a message lost (a client that
went away) costs nothing, as the next one carries the whole count.  A ``distributed.Queue``
would keep every message on the scheduler until read and need a round trip per put;
``Pub``/``Sub`` opens connections between the worker and the client directly.
"""

from __future__ import annotations

import time

TOPIC = "snhoo-progress"
EVERY = 0.5  # seconds between two reports of one task (its last report is always sent)


def _worker():
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):
        return None  # not in a Dask task (a test calling the body directly): nobody to tell


def to_wire(name: str) -> bytes:
    """A video's name as bytes for the event.  Dask's messages are msgpack, which refuses a
    str holding the surrogates that stand for a name's non-UTF-8 bytes; the failure comes
    later, in the worker's batched stream, where it drops the task results riding with it
    and the job never ends."""
    return name.encode("utf-8", "surrogateescape")


def from_wire(name: object) -> object:
    """The name ``to_wire`` sent (anything else unchanged: the caller ignores what it does
    not know)."""
    return name.decode("utf-8", "surrogateescape") if isinstance(name, bytes) else name


class Reporter:
    """One task's reports for one video (or one piece of it): ``run`` and ``video`` say
    whose, ``piece`` which piece (None: the whole video), ``expected`` how many images the
    plan expects (None: unknown, such as scene cuts)."""

    def __init__(
        self, run: str, video: str, piece: int | None = None, expected: int | None = None, pieces: int = 1
    ) -> None:
        self.worker = _worker()
        self.message = {
            "run": run,
            "video": to_wire(video),
            "piece": piece,
            "expected": expected,
            "pieces": pieces,
        }
        self._last = 0.0

    def frames(self, done: int, end: bool = False) -> None:
        """``done`` images written so far (``end``: all this task will write for it)."""
        if self.worker is None:
            return
        now = time.monotonic()
        if not end and now - self._last < EVERY:
            return
        self._last = now
        try:
            self.worker.log_event(TOPIC, {**self.message, "done": done, "end": end})
        except Exception:  # noqa: BLE001 - progress is a courtesy: never fail a video for it
            pass

"""A test hook: hold a task at a named point until a test says go.

Races (a folder swapped for a link between discovery and a task) are tested by making
the window wide and certain instead of sleeping and hoping: with ``SNHOO_PAUSE_DIR`` set
to a folder that holds ``<point>.hold``, a task reaching ``pause_point(point, video)``
writes ``<point>.waiting`` (holding the video's name) there and waits until ``<point>.go``
exists.  A ``.hold`` file that names a video (its path relative to its root) holds only
that video's task; an empty one holds every task that reaches the point.
Unset (every real run), it costs one dictionary lookup.  The wait is bounded, so a test
that dies half way cannot hold a worker for ever.
"""

from __future__ import annotations

import os
import time

ENV = "SNHOO_PAUSE_DIR"
LIMIT = 60.0  # seconds


def pause_point(point: str, video: str) -> None:
    folder = os.environ.get(ENV)
    if not folder:
        return
    waiting = os.path.join(folder, point + ".waiting")
    go = os.path.join(folder, point + ".go")
    try:
        with open(os.path.join(folder, point + ".hold"), encoding="utf-8", errors="surrogateescape") as f:
            only = f.read().strip()
    except FileNotFoundError:
        return  # not a point this test holds
    if os.path.exists(go) or (only and only != video):
        return  # released for good, or another video's hold
    with open(waiting, "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write(video)
    deadline = time.monotonic() + LIMIT
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        os.unlink(waiting)
    except FileNotFoundError:
        pass  # another task held at the same point went first

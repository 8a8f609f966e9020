"""Which picture each image is, told by ffmpeg itself while it decodes.

Every ffmpeg pass starts its filter chain with ``head()``: ``settb=AVTB`` puts every
picture's presentation time in microseconds, and a ``metadata=mode=print`` filter writes
one entry per picture the decoder presents (``seen``).  After the selection and the other
filters, ``kept()`` writes one entry per picture sent to us.  So the k-th image that comes
through the pipe has its time in the k-th ``kept`` entry, and its place among all pictures
presented is where that time stands in ``seen`` (``plans.Naming``).  Nothing is inferred
from a frame rate or from the container's packets: the decoder's own output is counted.

ffmpeg prints an entry before passing the frame on, and both logs are written unbuffered
(``direct=1``), so by the time image k arrives its entries are in the files: ``ref(k)``
reads them as images stream, without a second decode.  ``cand`` counts the pictures offered
to ``mpdecimate`` (``--dedup``), to tell how many it dropped.

The input must be opened with ``-reinit_filter 0`` (``REINIT``): otherwise a picture-size
change mid-stream rebuilds the filter graph, which restarts ``select``'s ``n`` and reopens
(empties) the logs.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from array import array
from collections.abc import Sequence

from ..errors import VideoError

_ENTRY = re.compile(rb"^frame:\s*\d+\s+pts:\s*(-?\d+)")
_SCORE_KEY = b"lavfi.scene_score="
# ffmpeg writes the entry before the frame; this only covers a slow disk.
_WAIT_SECONDS = 10.0
# The input option that keeps one filter graph for the whole stream (see above).
REINIT = {"-reinit_filter": "0"}


class FrameLogError(VideoError, RuntimeError):
    """ffmpeg sent a frame whose entry never appeared in the log (should not happen)."""


def _quoted(path: str) -> str:
    # Filter-graph quoting: inside '...' everything is literal except the quote itself.
    return "'" + path.replace("'", "'\\''") + "'"


class _Entries:
    """One log file read while ffmpeg writes it: (pts in microseconds, scene score) per picture."""

    def __init__(self, path: str, scores: bool = True) -> None:
        # Without scores an entry is whole once its first line is: it is taken at once.
        self._scores = scores
        open(path, "wb").close()
        self._file = open(path, "rb")
        self._pending = b""
        # Two flat arrays, not a tuple per picture: a 10-hour video logs nearly a million.
        self.times = array("q")
        self.scores: list[float | None] = []  # only with ``scores`` (one per image kept)
        self._current: list | None = None

    def read(self) -> None:
        while chunk := self._file.read(1 << 16):
            lines = (self._pending + chunk).split(b"\n")
            self._pending = lines.pop()  # a line ffmpeg is still writing
            for line in lines:
                m = _ENTRY.match(line)
                if m:
                    self._close_entry()
                    self._current = [int(m.group(1)), None]
                    if not self._scores:
                        self._close_entry()
                elif self._current is not None and line.startswith(_SCORE_KEY):
                    try:
                        self._current[1] = round(float(line.split(b"=", 1)[1]), 6)
                    except ValueError:
                        pass

    def _close_entry(self) -> None:
        if self._current is not None:
            self.times.append(self._current[0])
            if self._scores:
                self.scores.append(self._current[1])
            self._current = None

    def __len__(self) -> int:
        return len(self.times)

    def entry(self, k: int) -> tuple[int, float | None]:
        return self.times[k], self.scores[k] if self._scores else None

    def wait_for(self, k: int, complete: bool) -> None:
        """Until entry k is read; ``complete``: the frame after it has arrived too, so k's
        entry is whole even if it is the last one in the file."""
        deadline = time.monotonic() + _WAIT_SECONDS
        while True:
            self.read()
            if len(self.times) > k:
                return
            if complete and self._current is not None and len(self.times) == k:
                self._close_entry()
                return
            if time.monotonic() > deadline:
                raise FrameLogError(f"ffmpeg sent frame {k} but logged only {len(self.times)}")
            time.sleep(0.005)

    def finish(self) -> None:
        self.read()
        self._close_entry()

    def close(self) -> None:
        self._file.close()


class FrameLog:
    """The log files of one ffmpeg pass, and the filters that write them."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="snhoo-framelog-")
        self._seen = _Entries(self._path("seen"), scores=False)
        self._kept = _Entries(self._path("kept"))
        self._matched = -1  # the seen entry the last image was matched to

    def _path(self, name: str) -> str:
        return os.path.join(self.dir, name + ".txt")

    # -- filters ------------------------------------------------------------
    def head(self) -> str:
        """First in the chain: times in microseconds, made strictly increasing (a repeated
        or backward time, in a damaged file, moves 1 us past the one before, so each time
        names one picture), and every presented picture logged.

        ``add`` gives every frame a metadata entry, without which ``print`` skips it."""
        return (
            "settb=AVTB,setpts='if(lte(PTS,PREV_OUTPTS),PREV_OUTPTS+1,PTS)',"
            "metadata=mode=add:key=snhoo:value=1,"
            f"metadata=mode=print:file={_quoted(self._path('seen'))}:direct=1"
        )

    def candidates(self) -> str:
        return f"metadata=mode=print:file={_quoted(self._path('cand'))}"

    def kept(self) -> str:
        return f"metadata=mode=print:file={_quoted(self._path('kept'))}:direct=1"

    # -- reading --------------------------------------------------------------
    def kept_entry(self, k: int) -> tuple[int, float | None]:
        """(pts in microseconds, scene score or None) of the k-th image.  Call it once image
        k has arrived: its entry is then whole, while the next may be half written."""
        self._kept.wait_for(k, complete=True)
        return self._kept.entry(k)

    def first_pts(self) -> int:
        """The time of the first picture the decoder presented (images are timed from it)."""
        self._seen.wait_for(0, complete=True)
        return self._seen.times[0]

    def position(self, pts: int) -> int:
        """Which presented picture (0, 1, ...) the image at ``pts`` is (times are unique:
        ``head``); images come in order, so the search goes on from the last one."""
        k = self._matched + 1
        deadline = time.monotonic() + _WAIT_SECONDS
        while True:
            self._seen.read()
            entries = self._seen.times
            while k < len(entries) and entries[k] != pts:
                k += 1
            if k < len(entries):
                self._matched = k
                return k
            if time.monotonic() > deadline:
                raise FrameLogError(f"ffmpeg sent a frame at {pts} us that it never logged as decoded")
            time.sleep(0.005)

    def seen(self) -> Sequence[int]:
        """Every presented picture's time, once ffmpeg has ended."""
        self._seen.finish()
        return self._seen.times

    def count(self, name: str) -> int:
        """Entries in a log once ffmpeg has ended: ``seen`` or ``cand``."""
        try:
            with open(self._path(name), encoding="utf-8") as f:
                return sum(1 for line in f if line.startswith("frame:"))
        except FileNotFoundError:
            return 0

    def close(self) -> None:
        self._seen.close()
        self._kept.close()
        shutil.rmtree(self.dir, ignore_errors=True)

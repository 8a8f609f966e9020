"""Which source frame each output frame is, told by ffmpeg itself, for scenes and dedup.

With ``--scenes`` or ``--dedup`` ffmpeg decides which frames come out, so their source
indices are not known in advance.  The filter chain then starts with ``setpts=N``: every
decoded frame's timestamp becomes its decode index (0, 1, 2, ...), which ``select``,
``mpdecimate`` and ``scale`` carry through untouched.  ``metadata=mode=print`` filters
write one entry per frame to small files in a private temporary folder:

    seen  every decoded frame          -> how many frames the video really had (truncation)
    cand  frames offered to mpdecimate -> with ``kept``, how many it dropped
    kept  every frame sent to us       -> its index (pts) and ``lavfi.scene_score``

ffmpeg prints a frame's entry before passing the frame on, and ``kept`` is written
unbuffered (``direct=1``), so by the time frame k arrives through the pipe its entry
is in the file: ``ref(k)`` reads it as frames stream, without a second decode.  The
timestamp follows the project's constant-rate convention (index / rate), like every
other mode; the index is exact even where the container's timestamps are not.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from fractions import Fraction

_ENTRY = re.compile(rb"^frame:\s*\d+\s+pts:\s*(-?\d+)")
_SCORE_KEY = b"lavfi.scene_score="
# ffmpeg writes the entry before the frame; this only covers a slow disk.
_WAIT_SECONDS = 10.0


class FrameLogError(RuntimeError):
    """ffmpeg sent a frame whose entry never appeared in the log (should not happen)."""


def _quoted(path: str) -> str:
    # Filter-graph quoting: inside '...' everything is literal except the quote itself.
    return "'" + path.replace("'", "'\\''") + "'"


class FrameLog:
    """The log files of one ffmpeg pass, and the filters that write them."""

    def __init__(self, rate: Fraction) -> None:
        self.rate = rate
        self.dir = tempfile.mkdtemp(prefix="snhoo-framelog-")
        open(self._path("kept"), "wb").close()
        self._kept = open(self._path("kept"), "rb")  # read while ffmpeg writes it
        self._pending = b""
        self._entries: list[tuple[int, float | None]] = []
        self._current: list | None = None

    def _path(self, name: str) -> str:
        return os.path.join(self.dir, name + ".txt")

    # -- filters ------------------------------------------------------------
    def number(self) -> str:
        """First in the chain: timestamps become decode indices, and each frame is logged.

        ``add`` gives every frame a metadata entry, without which ``print`` skips it."""
        return (
            "setpts=N,metadata=mode=add:key=snhoo:value=1,"
            f"metadata=mode=print:file={_quoted(self._path('seen'))}"
        )

    def candidates(self) -> str:
        return f"metadata=mode=print:file={_quoted(self._path('cand'))}"

    def kept(self) -> str:
        return f"metadata=mode=print:file={_quoted(self._path('kept'))}:direct=1"

    # -- reading --------------------------------------------------------------
    def ref(self, k: int) -> tuple[int, float, float | None]:
        """(source index, timestamp, scene score or None) of the k-th output frame.

        Call it once frame k has arrived: all of its entry is then in the file, while
        the entry after it may still be half written."""
        deadline = time.monotonic() + _WAIT_SECONDS
        while True:
            self._read_available()
            if len(self._entries) > k:
                break
            if self._current is not None and len(self._entries) == k:
                self._close_entry()
                break
            if time.monotonic() > deadline:
                raise FrameLogError(f"ffmpeg sent frame {k} but logged only {len(self._entries)}")
            time.sleep(0.005)
        index, score = self._entries[k]
        return index, round(float(index / self.rate), 6), score

    def _read_available(self) -> None:
        while chunk := self._kept.read(1 << 16):
            lines = (self._pending + chunk).split(b"\n")
            self._pending = lines.pop()  # a line ffmpeg is still writing
            for line in lines:
                m = _ENTRY.match(line)
                if m:
                    self._close_entry()
                    self._current = [int(m.group(1)), None]
                elif self._current is not None and line.startswith(_SCORE_KEY):
                    try:
                        self._current[1] = round(float(line.split(b"=", 1)[1]), 6)
                    except ValueError:
                        pass

    def _close_entry(self) -> None:
        if self._current is not None:
            self._entries.append((self._current[0], self._current[1]))
            self._current = None

    def count(self, name: str) -> int:
        """Entries in a log once ffmpeg has ended: ``seen`` or ``cand``."""
        try:
            with open(self._path(name), encoding="utf-8") as f:
                return sum(1 for line in f if line.startswith("frame:"))
        except FileNotFoundError:
            return 0

    def close(self) -> None:
        self._kept.close()
        shutil.rmtree(self.dir, ignore_errors=True)

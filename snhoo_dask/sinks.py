"""Where a video's images go while it is extracted: files in its temporary folder.

A sink receives each encoded image by name, then the frames.csv rows, and leaves a
finished temporary output that ``layout.publish`` moves into place in one rename.
"""

from __future__ import annotations

import csv
import os


class FolderSink:
    """One image file per frame in the video's temporary folder."""

    def __init__(self, tmp: str) -> None:
        self.tmp = tmp

    def add(self, name: str, data: bytes) -> None:
        with open(os.path.join(self.tmp, name), "wb") as f:
            f.write(data)

    def close(self, rows: list[tuple]) -> None:
        """Write frames.csv (frame, timestamp, file), one row per image, in frame order."""
        with open(os.path.join(self.tmp, "frames.csv"), "w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(["frame", "timestamp", "file"])
            out.writerows(sorted(rows))

"""Where a video's images go while it is extracted: files in its temporary folder, or a tar.

A sink receives each encoded image with its row (``add``), then the completion record
(``seal``), and leaves one finished path - a folder (``FolderSink``) or a tar file
(``tar_sink.TarSink``) - that ``layout.publish`` moves into place in one rename.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass

from .fsafe import create_file, disk_errors
from .layout import DONE_FILE, TmpDir


@dataclass(frozen=True)
class FrameRow:
    """What is known about one written image (frames.csv, a tar's .json member)."""

    index: int  # source frame index
    timestamp: float  # seconds (index / rate)
    file: str  # image name, e.g. 000123.jpg
    width: int  # the written image
    height: int
    score: float | None = None  # ffmpeg's scene score (--scenes)


CSV_COLUMNS = ["frame", "timestamp", "file", "width", "height"]


def csv_row(row: FrameRow, scored: bool) -> list:
    cells = [row.index, f"{row.timestamp:.6f}", row.file, row.width, row.height]
    return cells + [f"{row.score:.6f}" if row.score is not None else ""] if scored else cells


class FolderSink:
    """One image file per frame in the video's temporary folder, plus frames.csv."""

    def __init__(self, tmp: TmpDir, scored: bool = False) -> None:
        self.tmp = tmp
        self.scored = scored
        self.rows: list[FrameRow] = []
        self.sizes: dict[str, int] = {}  # each file written, by name: the done record lists them

    def add(self, name: str, data: bytes, row: FrameRow) -> None:
        with disk_errors(self.tmp.out_path), open(create_file(self.tmp.fd, name), "wb") as f:
            f.write(data)
        self.rows.append(row)
        self.sizes[name] = len(data)

    def close(self) -> None:
        """Write frames.csv, one row per image, in frame order."""
        with (
            disk_errors(self.tmp.out_path),
            open(create_file(self.tmp.fd, "frames.csv"), "w", newline="", encoding="utf-8") as f,
        ):
            out = csv.writer(f)
            out.writerow(CSV_COLUMNS + (["scene_score"] if self.scored else []))
            out.writerows(csv_row(r, self.scored) for r in sorted(self.rows, key=lambda r: r.index))
            f.flush()
            self.sizes["frames.csv"] = os.fstat(f.fileno()).st_size

    def seal(self, done: dict) -> tuple[int, str]:
        """Write the completion record last, listing every file with its size (resume checks
        them: ``layout.complete``); return what to publish (the temporary folder, as its
        parent's descriptor and its name)."""
        with disk_errors(self.tmp.out_path):
            return self._seal(done)

    def _seal(self, done: dict) -> tuple[int, str]:
        files = {}
        for name in [r.file for r in self.rows] + ["frames.csv"]:
            size = self.sizes.get(name)
            if size is None:  # moved in, not written here (a split video's pieces)
                size = os.stat(name, dir_fd=self.tmp.fd, follow_symlinks=False).st_size
            files[name] = size
        done = {**done, "files": files}
        with open(create_file(self.tmp.fd, DONE_FILE), "w", encoding="utf-8") as f:
            f.write(json.dumps(done, ensure_ascii=True))  # dumps: the C encoder; dump() is pure Python
        return self.tmp.base, self.tmp.name

    def abort(self) -> None:
        pass  # the caller removes the temporary folder


def make_sink(pack: str, tmp: TmpDir, scored: bool, video: str, root: str):
    """The sink for ``--pack``: ``folder`` or ``tar``."""
    if pack == "tar":
        from .tar_sink import TarSink

        return TarSink(tmp, scored, video, root)
    return FolderSink(tmp, scored)

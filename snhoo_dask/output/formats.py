"""Output formats: where a video's images go while it is extracted.

A sink receives each encoded image with its row (``add``), then the rows' table
(``close``), then the completion record (``seal``), and leaves one finished path that
``folder.publish`` moves into place in one rename:

- ``FolderSink`` (``--pack folder``): one file per image in the temporary folder, plus
  frames.csv and .snhoo-done.json listing every file with its size.
- ``TarSink`` (``--pack tar``): one tar per video in the WebDataset layout::

    OUT/<root>/<video path>.tar
        000000.jpg  000000.json   image, then {"index", "timestamp", "video", "root", ...}
        ...
        __snhoo_done__            the completion record

  An image and its JSON share a key, which is what the ``webdataset`` library groups into
  one sample; the record is the last member, named in the ``__...__`` form WebDataset
  readers skip.  The tar is written inside the temporary folder and renamed into place
  only after the record is in it, so a tar at its final name is always complete.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tarfile
import time
from dataclasses import dataclass
from typing import Protocol

from ..fs.fsafe import create_file, disk_errors
from .folder import DONE_FILE, DONE_MEMBER, TAR_NAME, TmpDir
from .scenes import SCENES_FILE, scenes_csv

# --pack: a folder of images per video, one WebDataset tar per video, or numbered shards of
# the whole job (each video's tar is then a fragment the client copies into them: shards.py).
PACKS = ("folder", "tar", "shards")


@dataclass(frozen=True)
class FrameRow:
    """What is known about one written image (frames.csv, a tar's .json member)."""

    index: int  # source frame index
    timestamp: float  # seconds: its presentation time minus the first picture's (frame_log)
    file: str  # image name, e.g. 000123.jpg
    width: int  # the written image
    height: int
    score: float | None = None  # ffmpeg's scene score (--scenes)


CSV_COLUMNS = ["frame", "timestamp", "file", "width", "height"]


def csv_row(row: FrameRow, scored: bool) -> list:
    cells = [row.index, f"{row.timestamp:.6f}", row.file, row.width, row.height]
    return cells + [f"{row.score:.6f}" if row.score is not None else ""] if scored else cells


# A tar's scene list (--scenes): scenes.csv's bytes, in the ``__...__`` form readers skip.
SCENES_MEMBER = "__scenes__"


def scene_list(rows: list[FrameRow], end: tuple[int, float]) -> bytes:
    """scenes.csv for these rows, each the first frame of a shot (``scenes``)."""
    starts = sorted((r.index, r.timestamp) for r in rows)
    return scenes_csv(starts, *end)


class Sink(Protocol):
    """What the extraction writes through; one per video (or piece)."""

    def add(self, name: str, data: bytes, row: FrameRow) -> None: ...
    def close(self, end: tuple[int, float] | None = None) -> None: ...
    def seal(self, done: dict) -> tuple[int, str]: ...
    def abort(self) -> None: ...


class FolderSink:
    """One image file per frame in the video's temporary folder, plus frames.csv."""

    def __init__(self, tmp: TmpDir, scored: bool = False) -> None:
        self.tmp = tmp
        self.scored = scored
        self.rows: list[FrameRow] = []
        self.sizes: dict[str, int] = {}  # each file written, by name: the done record lists them

    def add(self, name: str, data: bytes, row: FrameRow) -> None:
        self.tmp.check()
        with disk_errors(self.tmp.out_path), open(create_file(self.tmp.fd, name), "wb") as f:
            f.write(data)
        self.rows.append(row)
        self.sizes[name] = len(data)

    def close(self, end: tuple[int, float] | None = None) -> None:
        """Write frames.csv, one row per image, in frame order; with scene scores and
        ``end`` (frames decoded, seconds reached), scenes.csv too."""
        self.tmp.check()
        if self.scored and end is not None:
            data = scene_list(self.rows, end)
            with disk_errors(self.tmp.out_path), open(create_file(self.tmp.fd, SCENES_FILE), "wb") as f:
                f.write(data)
            self.sizes[SCENES_FILE] = len(data)
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
        them: ``folder.complete``); return what to publish (the temporary folder, as its
        parent's descriptor and its name)."""
        with disk_errors(self.tmp.out_path):
            return self._seal(done)

    def _seal(self, done: dict) -> tuple[int, str]:
        files = {}
        extra = [SCENES_FILE] if SCENES_FILE in self.sizes else []
        for name in [r.file for r in self.rows] + ["frames.csv", *extra]:
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


class TarSink:
    def __init__(self, tmp: TmpDir, scored: bool, video: str, root: str) -> None:
        self.tmp = tmp
        self.scored = scored
        self.video = video
        self.root = root
        # Whole seconds: a float mtime would make tarfile add a PAX header to every member.
        self._mtime = int(time.time())
        self._file = open(create_file(tmp.fd, TAR_NAME), "wb")
        self._tar = tarfile.open(fileobj=self._file, mode="w", format=tarfile.PAX_FORMAT)
        self.rows: list[FrameRow] = []

    def _member(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = self._mtime
        info.mode = 0o644
        with disk_errors(self.tmp.out_path):
            self._tar.addfile(info, io.BytesIO(data))

    def add(self, name: str, data: bytes, row: FrameRow) -> None:
        self._member(name, data)
        self.rows.append(row)
        meta = {
            "index": row.index,
            "timestamp": row.timestamp,
            "video": self.video,
            "root": self.root,
            "width": row.width,
            "height": row.height,
        }
        if self.scored:
            meta["scene_score"] = row.score
        key = name.rsplit(".", 1)[0]
        self._member(key + ".json", json.dumps(meta, ensure_ascii=False).encode("utf-8", "surrogateescape"))

    def close(self, end: tuple[int, float] | None = None) -> None:
        # Each frame's row went in with it; the scene list is a member WebDataset readers skip.
        if self.scored and end is not None:
            self._member(SCENES_MEMBER, scene_list(self.rows, end))

    def seal(self, done: dict) -> tuple[int, str]:
        """Append the completion record, finish the archive; return what to publish (its
        folder's descriptor and its name)."""
        self._member(DONE_MEMBER, json.dumps(done, ensure_ascii=True).encode("ascii"))
        with disk_errors(self.tmp.out_path):
            self._tar.close()
            self._file.close()
        return self.tmp.fd, TAR_NAME

    def abort(self) -> None:
        self._tar.close()
        self._file.close()


def make_sink(pack: str, tmp: TmpDir, scored: bool, video: str, root: str) -> Sink:
    """The sink for ``--pack``: ``folder``, or ``tar`` (also a shard's fragment)."""
    if pack in ("tar", "shards"):
        return TarSink(tmp, scored, video, root)
    return FolderSink(tmp, scored)

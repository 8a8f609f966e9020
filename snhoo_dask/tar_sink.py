"""``--pack tar``: one tar per video, in the WebDataset layout, published like a folder.

    OUT/<root>/<video path>.tar
        000000.jpg  000000.json   image, then {"index", "timestamp", "video", "root", ...}
        000025.jpg  000025.json
        ...
        __snhoo_done__            the completion record (what .snhoo-done.json is to a folder)

An image and its JSON share a key and sit side by side, which is what the
``webdataset`` library groups into one sample.  The completion record is the last
member and its name has the ``__...__`` form that WebDataset readers skip as metadata.
The tar is written inside the video's temporary folder and renamed into place only
after the record is in it, so a tar at its final name is always complete; no image is
ever written outside it.
"""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
import time
from typing import TYPE_CHECKING, BinaryIO

from .fsafe import create_file, disk_errors

if TYPE_CHECKING:  # sinks imports layout, which reads tars through this module
    from .layout import TmpDir
    from .sinks import FrameRow

DONE_MEMBER = "__snhoo_done__"
TAR_NAME = "frames.tar"
TAR_SUFFIX = ".tar"
IMAGE_EXTENSIONS = (".jpg", ".png")


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

    def _member(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = self._mtime
        info.mode = 0o644
        with disk_errors(self.tmp.out_path):
            self._tar.addfile(info, io.BytesIO(data))

    def add(self, name: str, data: bytes, row: FrameRow) -> None:
        self._member(name, data)
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

    def close(self) -> None:
        pass  # each frame's row went in with it

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


def is_tar_output(path: str) -> bool:
    """A regular file (never a link) named like a packed video's output."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and path.endswith(TAR_SUFFIX)


def read_tar_done(file: BinaryIO) -> dict | None:
    """The completion record of a published tar (an open file), or None if it has none (not
    ours, or cut)."""
    try:
        with tarfile.open(fileobj=file, mode="r:") as tar:
            done = None
            for member in tar:
                if member.name == DONE_MEMBER and member.isreg():
                    f = tar.extractfile(member)
                    done = json.loads(f.read().decode("utf-8")) if f else None
    except (OSError, tarfile.TarError, ValueError):
        return None
    return done if isinstance(done, dict) else None


def tar_images(path: str) -> list[str]:
    """Names of the images in a packed video's tar, in frame order."""
    try:
        with tarfile.open(path, mode="r:") as tar:
            return sorted(m.name for m in tar if m.isreg() and m.name.endswith(IMAGE_EXTENSIONS))
    except (OSError, tarfile.TarError):
        return []


def read_members(path: str, names: list[str]) -> dict[str, bytes]:
    """The bytes of the named members of a tar (those present)."""
    wanted = set(names)
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(path, mode="r:") as tar:
            for m in tar:
                if m.name in wanted and m.isreg():
                    f = tar.extractfile(m)
                    if f:
                        found[m.name] = f.read()
    except (OSError, tarfile.TarError):
        pass
    return found

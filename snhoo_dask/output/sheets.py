"""Contact sheets: a few frames of one video's output as one small JPEG strip.

Used by report.html (embedded) and by the web service (served per video).  The output
is a folder of images, or a tar (``--pack tar``), read in place without unpacking.

Everything is opened by descriptor from the output folder down (``fsafe``), no link
followed: the output folder's contents can be changed by anyone who can write there, and a
sheet must never show a file from elsewhere.  Pictures too big to decode cheaply are left out.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import tarfile
from dataclasses import dataclass
from typing import IO, BinaryIO, TypeGuard

from PIL import Image

from ..fs import fsafe
from .folder import IMAGE_EXTENSIONS
from .shard_index import is_shard

SHEET_FRAMES = 4
THUMB_WIDTH = 128
# What one thumbnail may decode, after JPEG draft scaling: an 8K frame (33 Mpixel) fits;
# a larger picture is left out rather than costing hundreds of MB per request.
MAX_DECODE_PIXELS = 40_000_000


def _spread(names: list[str], n: int) -> list[str]:
    if len(names) > n:
        step = (len(names) - 1) / (n - 1) if n > 1 else 0
        names = [names[round(i * step)] for i in range(n)]
    return names


def _plain_name(name: str) -> bool:
    """One file name, not a path: frames.csv is read from a folder others may write to."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\0" not in name


def _open_regular(dir_fd: int, name: str) -> BinaryIO:
    """``name`` in ``dir_fd`` opened for reading, if it is a plain file (never a link, a
    folder or a named pipe); OSError otherwise."""
    return os.fdopen(fsafe.open_regular(dir_fd, name), "rb")


def _frame_names(dir_fd: int, n: int) -> list[str]:
    """Names of ``n`` frames spread evenly over a finished video folder (first to last)."""
    names: list[str] = []
    try:
        with io.TextIOWrapper(_open_regular(dir_fd, "frames.csv"), encoding="utf-8", newline="") as f:
            names = [row["file"] for row in csv.DictReader(f)]
    except (OSError, KeyError, ValueError, csv.Error):  # csv.Error: e.g. a field over its size limit
        try:
            names = sorted(e for e in os.listdir(dir_fd) if e.endswith(IMAGE_EXTENSIONS))
        except OSError:
            return []
    return _spread([name for name in names if isinstance(name, str) and _plain_name(name)], n)


def sheet_frames(folder: str, n: int = SHEET_FRAMES) -> list[str]:
    """Paths of ``n`` frames spread evenly over a finished video folder (first to last)."""
    try:
        with fsafe.opened_dir(os.path.realpath(folder)) as fd:
            return [os.path.join(folder, name) for name in _frame_names(fd, n)]
    except OSError:
        return []


def _thumb(source: IO[bytes], width: int) -> Image.Image | None:
    """A thumbnail ``width`` wide at most, or None for a picture that is unreadable or too big."""
    try:
        with Image.open(source) as im:
            # JPEG: decode at the smallest scale still `width` wide (1/8 of 16000 is 2000).
            im.draft("RGB", (width, 1))
            if im.width * im.height > MAX_DECODE_PIXELS:
                return None
            rgb = im.convert("RGB")
            rgb.thumbnail((width, width * 3))
            return rgb.copy()
    except (OSError, ValueError, Image.DecompressionBombError, tarfile.TarError):
        # DecompressionBombError: over twice Image.MAX_IMAGE_PIXELS, refused before decoding.
        return None


def _folder_thumbs(dir_fd: int, n: int, width: int) -> list[Image.Image]:
    thumbs = []
    for name in _frame_names(dir_fd, n):
        try:
            f = _open_regular(dir_fd, name)
        except OSError:
            continue
        with f:
            thumbs.append(_thumb(f, width))
    return [t for t in thumbs if t is not None]


def _tar_thumbs(f: BinaryIO, n: int, width: int) -> list[Image.Image]:
    try:
        with tarfile.open(fileobj=f, mode="r:") as tar:
            members = {m.name: m for m in tar if m.isreg() and m.name.endswith(IMAGE_EXTENSIONS)}
            thumbs = []
            for name in _spread(sorted(members), n):
                member = tar.extractfile(members[name])
                if member is not None:
                    thumbs.append(_thumb(member, width))
    except (OSError, tarfile.TarError):
        return []
    return [t for t in thumbs if t is not None]


def _thumbs(parent_fd: int, name: str, n: int, width: int) -> list[Image.Image]:
    """Thumbnails of the output ``name`` (a folder, or a ``.tar`` file) in ``parent_fd``."""
    # Opened once, without following a link, and then judged by what was opened (fstat).
    fd = fsafe.open_file(parent_fd, name)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            return _folder_thumbs(fd, n, width)
        if not (stat.S_ISREG(mode) and name.endswith(".tar")):
            return []
        f = os.fdopen(fd, "rb")
        fd = -1  # the file object owns it now
        with f:
            return _tar_thumbs(f, n, width)
    finally:
        if fd >= 0:
            os.close(fd)


def video_sheet(out_fd: int, out_rel: str, n: int = SHEET_FRAMES, width: int = THUMB_WIDTH) -> bytes | None:
    """A JPEG strip of a few frames of one video, whose output (folder or tar) is ``out_rel``
    below the open output folder ``out_fd``; None if it has none or is not reached without
    following a link."""
    if is_shard(out_rel):
        return None  # its images are many videos': none of them is shown as this one's
    try:
        parts = fsafe.parts_of(out_rel)
        parent = fsafe.walk(out_fd, parts[:-1])
        try:
            thumbs = _thumbs(parent, parts[-1], n, width)
        finally:
            os.close(parent)
    except OSError:
        return None
    return _strip(thumbs)


def contact_sheet(output: str, n: int = SHEET_FRAMES, width: int = THUMB_WIDTH) -> bytes | None:
    """``video_sheet`` for an output named by a path (its folder is trusted as resolved)."""
    parent, name = os.path.split(os.path.abspath(output))
    try:
        with fsafe.opened_dir(os.path.realpath(parent)) as fd:
            return video_sheet(fd, name, n, width)
    except OSError:
        return None


def _strip(thumbs: list[Image.Image]) -> bytes | None:
    if not thumbs:
        return None
    gap = 2
    height = max(t.height for t in thumbs)
    sheet = Image.new("RGB", (sum(t.width for t in thumbs) + gap * (len(thumbs) - 1), height), "white")
    x = 0
    for t in thumbs:
        sheet.paste(t, (x, 0))
        x += t.width + gap
    buf = io.BytesIO()
    sheet.save(buf, format="JPEG", quality=80)
    return buf.getvalue()


# -- one video's images, a page at a time (the web service's page per video) ---------------

FRAMES_CSV = "frames.csv"
THUMB_PAGE_WIDTH = 320  # a thumbnail on a video's page: sharp at 160 CSS pixels on a 2x screen


@dataclass
class Listed:
    """One image of a video's output, as its page shows it."""

    file: str
    frame: int | None  # the source frame index (None when nothing says)
    time: float | None  # seconds (None when nothing says)


@dataclass
class Listing:
    """A page of a video's images, and how many there are in all."""

    total: int
    items: list[Listed]
    packed: bool  # the output is a tar (``--pack tar``)
    indexed: bool  # frame numbers and times come from frames.csv / the tar's JSON members


def _number(text: object, kind):
    try:
        return kind(text)
    except (TypeError, ValueError):
        return None


def _frame_of(name: str) -> int | None:
    """The frame an image is named by (000025.jpg: 25)."""
    stem = name.rsplit(".", 1)[0]
    return int(stem) if stem.isdigit() and len(stem) < 19 else None


def _image_name(name: object) -> TypeGuard[str]:
    return isinstance(name, str) and _plain_name(name) and name.endswith(IMAGE_EXTENSIONS)


def _folder_listing(dir_fd: int, start: int, count: int) -> Listing:
    # One pass over frames.csv keeping only the page's rows: a 10-hour video's list of a
    # million frames is counted, never held.
    items: list[Listed] = []
    total = 0
    try:
        with io.TextIOWrapper(_open_regular(dir_fd, FRAMES_CSV), encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                name = row.get("file")
                if not _image_name(name):
                    continue
                if start <= total < start + count:
                    items.append(
                        Listed(name, _number(row.get("frame"), int), _number(row.get("timestamp"), float))
                    )
                total += 1
        return Listing(total, items, False, True)
    except (OSError, ValueError, csv.Error):
        pass
    try:
        names = sorted(e for e in os.listdir(dir_fd) if _image_name(e))
    except OSError:
        return Listing(0, [], False, False)
    return Listing(
        len(names), [Listed(n, _frame_of(n), None) for n in names[start : start + count]], False, False
    )


def _tar_listing(f: BinaryIO, start: int, count: int) -> Listing:
    items: list[Listed] = []
    meta: dict[str, tarfile.TarInfo] = {}
    total = 0
    try:
        with tarfile.open(fileobj=f, mode="r:") as tar:
            for m in tar:
                if m.isreg() and _image_name(m.name):
                    if start <= total < start + count:
                        items.append(Listed(m.name, _frame_of(m.name), None))
                    total += 1
                elif (
                    m.isreg()
                    and m.name.endswith(".json")
                    and m.size < 65536
                    and start < total <= start + count
                ):
                    meta[m.name] = m  # an image's JSON follows it: see formats.TarSink
            for item in items:
                info = meta.get(item.file.rsplit(".", 1)[0] + ".json")
                member = tar.extractfile(info) if info is not None else None
                if member is None:
                    continue
                try:
                    data = json.loads(member.read())
                except ValueError:
                    continue
                if isinstance(data, dict):
                    item.time = _number(data.get("timestamp"), float)
                    item.frame = _number(data.get("index"), int) if item.frame is None else item.frame
    except (OSError, tarfile.TarError):
        return Listing(total, items, True, False)
    return Listing(total, items, True, True)


def _output(out_fd: int, out_rel: str) -> tuple[int, bool]:
    """The open output of one video (a folder, or a ``.tar`` file) and whether it is a tar;
    OSError when it is neither, or is not reached without following a link (or is a shard of
    many videos, --pack shards: its images would be shown as this video's)."""
    if is_shard(out_rel):
        raise FileNotFoundError(f"{out_rel} is a shard of many videos")
    parts = fsafe.parts_of(out_rel)
    parent = fsafe.walk(out_fd, parts[:-1])
    try:
        fd = fsafe.open_file(parent, parts[-1])
    finally:
        os.close(parent)
    mode = os.fstat(fd).st_mode
    if stat.S_ISDIR(mode):
        return fd, False
    if stat.S_ISREG(mode) and parts[-1].endswith(".tar"):
        return fd, True
    os.close(fd)
    raise FileNotFoundError(f"{out_rel} is not a video's output")


def frame_listing(out_fd: int, out_rel: str, start: int, count: int) -> Listing | None:
    """Images ``start`` to ``start + count`` of one video's output (in frame order), with
    their frame numbers and times; None when it has no output there."""
    try:
        fd, packed = _output(out_fd, out_rel)
    except OSError:
        return None
    if not packed:
        try:
            return _folder_listing(fd, start, count)
        finally:
            os.close(fd)
    with os.fdopen(fd, "rb") as f:
        return _tar_listing(f, start, count)


def frame_file(out_fd: int, out_rel: str, name: str, limit: int) -> bytes | None:
    """The bytes of one image (or frames.csv) of one video's output, a folder's file or a
    tar's member; None when it is not there, is no plain file, or is larger than ``limit``."""
    if not (_image_name(name) or name == FRAMES_CSV):
        return None
    try:
        fd, packed = _output(out_fd, out_rel)
    except OSError:
        return None
    if not packed:
        try:
            with _open_regular(fd, name) as f:
                data = f.read(limit + 1)
        except OSError:
            return None
        finally:
            os.close(fd)
        return data if len(data) <= limit else None
    with os.fdopen(fd, "rb") as f:
        try:
            with tarfile.open(fileobj=f, mode="r:") as tar:
                for m in tar:
                    if m.name == name and m.isreg():
                        member = tar.extractfile(m) if m.size <= limit else None
                        return member.read() if member is not None else None
        except (OSError, tarfile.TarError):
            return None
    return None


def frame_thumb(out_fd: int, out_rel: str, name: str, width: int = THUMB_PAGE_WIDTH) -> bytes | None:
    """One image of a video's output as a small JPEG, at most ``width`` wide."""
    if not _image_name(name):
        return None
    data = frame_file(out_fd, out_rel, name, MAX_IMAGE_BYTES)
    thumb = _thumb(io.BytesIO(data), width) if data is not None else None
    if thumb is None:
        return None
    buf = io.BytesIO()
    thumb.save(buf, format="JPEG", quality=82)
    return buf.getvalue()


# An image larger than this is not sent (a planted file must not fill the service's memory).
MAX_IMAGE_BYTES = 64 * 1024 * 1024

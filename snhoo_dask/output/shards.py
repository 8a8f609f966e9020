"""--pack shards: numbered WebDataset shards of bounded size, written by the client alone.

    OUT/shards/00000.tar            KEY.jpg (or .png) + KEY.json per sample, KEY unique in the job
    OUT/shards/00000.parquet        one row per sample of that shard (the .json's fields)
    OUT/shards/00000_stats.json     the shard's counts, and each video in it with its record
    OUT/samples.parquet             every sample of every published shard, with its shard

A worker extracts a video exactly as for ``--pack tar`` and publishes the tar as a
*fragment* under OUT/.snhoo-tmp/fragments (``fragment_rel``).  The client, as each
video's record arrives, copies the fragment's members into the one open shard under new
keys (``ShardWriter``), and when the shard reaches ``--shard-size`` it closes it, writes its
parquet and stats beside it and renames the three into OUT/shards (the tar last).  One
writer, so the numbering is one sequence and the size bound holds whatever the number of
workers; the workers need no shared state nor a path the client can read beyond OUT,
which they write already.  A shard is seen whole or not at all: it is built under
.snhoo-tmp and renamed; a video's record goes into the manifest only once the shard that
holds its samples is published, so a run killed mid-shard records none of its videos and
the rerun redoes them (``shard_index.published``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import time
from typing import Any

from ..fs.fsafe import create_file, disk_errors, open_plain, parts_of, walk
from ..model import OK, Video, VideoRecord
from .folder import DONE_MEMBER, FRAGMENTS, TMP_DIR, OutputDir, TmpDir, safe_dirs
from .shard_index import SHARDS_DIR, index_columns, next_number, shard_names, write_index, write_parquet

DEFAULT_SHARD_SIZE = "1GB"
SCENES_PREFIX = "__scenes__/"  # a video's scene list in its shard: WebDataset readers skip __...__/
_UNITS = {"": 1, "B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4}
_UNITS.update({"KIB": 1024, "MIB": 1024**2, "GIB": 1024**3, "TIB": 1024**4, "K": 1000, "M": 1000**2})
_UNITS.update({"G": 1000**3, "T": 1000**4})
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
MIN_SHARD_SIZE = 1000  # below, every sample is a shard of its own anyway
MAX_SHARD_SIZE = 1000**5


def parse_size(text: str) -> int:
    """Bytes in a size as people write it: ``500MB``, ``2GB``, ``1.5GiB``, ``800000``
    (decimal units, as video2dataset's and disks' sizes; ``KiB``/``MiB``/``GiB`` binary).
    ValueError, saying what is accepted, for anything else."""
    m = _SIZE.match(text or "")
    unit = m.group(2).upper() if m else None
    if not m or unit not in _UNITS or len(text) > 40:
        raise ValueError("a size such as 500MB, 2GB or 1.5GiB")
    size = int(float(m.group(1)) * _UNITS[unit])
    if not MIN_SHARD_SIZE <= size <= MAX_SHARD_SIZE:
        raise ValueError(f"a size from {MIN_SHARD_SIZE} bytes to 1PB")
    return size


def fragment_rel(video: Video) -> str:
    """Where a worker publishes a video's tar under --pack shards, relative to OUT: in
    .snhoo-tmp, which no loader reads and every run sweeps at its start and end."""
    return f"{TMP_DIR}/{FRAGMENTS}/{video.out_rel}"


def video_key(root_name: str, rel: str) -> str:
    """The part of a video's sample keys that names it: readable, and unique by its hash.

    WebDataset takes a member's key to be its name up to the first dot, and a slash makes
    it a path: so a key has neither.  The hash is of the video's output path (root name and
    path in it), which is the same on every rerun."""
    path = f"{root_name}/{rel}"
    digest = hashlib.sha1(path.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", rel.rsplit("/", 1)[-1]).strip("_")[:40]
    return f"{stem or 'video'}-{digest}"


def sample_key(root_name: str, rel: str, index: int) -> str:
    return f"{video_key(root_name, rel)}-{index:07d}"


class ShardWriter:
    """The one open shard of a job: videos' fragments go in, finished shards come out.

    ``add`` returns the records of the videos whose shard it published (empty while the
    shard stays open); ``finish`` publishes the last one.  Records carry ``out`` = the
    shard's path relative to OUT.
    """

    def __init__(self, out: OutputDir, limit: int, signature: dict, scored: bool) -> None:
        self.out = out
        self.limit = limit
        self.signature = signature
        self.scored = scored
        self._tmp: TmpDir | None = None
        self._tar: tarfile.TarFile | None = None
        self._file: io.BufferedWriter | None = None
        self._rows: list[dict] = []
        self._videos: list[dict] = []
        self._records: list[VideoRecord] = []
        self._started = 0.0
        self._mtime = int(time.time())
        self.published: list[str] = []  # shard names this writer published

    def _opened(self) -> tuple[TmpDir, io.BufferedWriter, tarfile.TarFile]:
        """The open shard's temporary folder, file and tar (``_open`` made them)."""
        if self._tmp is None or self._file is None or self._tar is None:
            raise RuntimeError("no shard is open")
        return self._tmp, self._file, self._tar

    def add(self, video: Video, record: VideoRecord) -> list[VideoRecord]:
        """Copy ``video``'s fragment into the open shard under its unique keys."""
        with disk_errors(self.out.path):
            members = self._read_fragment(video)
            size = sum(len(data) + 1024 for _, data in members)  # a member's header and padding
            done: list[VideoRecord] = []
            if self._file is not None and self._rows and self._file.tell() + size > self.limit:
                done = self._publish()
            self._open()
            self._copy(video, record, members)
            if self._opened()[1].tell() >= self.limit:
                done += self._publish()
            return done

    def finish(self) -> list[VideoRecord]:
        """Publish the open shard, if it holds anything; the records of its videos."""
        if self._tar is None:
            return []
        with disk_errors(self.out.path):
            if not self._records:
                self._discard()
                return []
            return self._publish()

    def abort(self) -> None:
        """Drop the open shard (its videos get no record: a rerun does them)."""
        if self._tar is not None:
            self._discard()

    def _read_fragment(self, video: Video) -> list[tuple[str, bytes]]:
        parts = parts_of(fragment_rel(video))
        parent = walk(self.out.fd, parts[:-1], where=self.out.path)
        try:
            fd = open_plain(parent, parts[-1])
        finally:
            os.close(parent)
        with open(fd, "rb") as f, tarfile.open(fileobj=f, mode="r:") as tar:
            members = []
            for m in tar:
                data = tar.extractfile(m)
                if m.isreg() and data is not None:
                    members.append((m.name, data.read()))
        # Read into memory, then removed: the fragment is one video's images, and gone
        # once in the shard (a later sweep would take it anyway).
        parent = walk(self.out.fd, parts[:-1], where=self.out.path)
        try:
            os.unlink(parts[-1], dir_fd=parent)
        finally:
            os.close(parent)
        return members

    def _open(self) -> None:
        if self._tar is not None:
            return
        self._tmp = tmp = TmpDir(self.out)
        self._file = file = open(create_file(tmp.fd, "shard.tar"), "wb")
        self._tar = tarfile.open(fileobj=file, mode="w", format=tarfile.PAX_FORMAT)
        self._started = time.time()

    def _member(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = self._mtime
        info.mode = 0o644
        self._opened()[2].addfile(info, io.BytesIO(data))

    def _copy(self, video: Video, record: VideoRecord, members: list[tuple[str, bytes]]) -> None:
        vkey = video_key(video.root_name, video.rel)
        images = {}
        metas = {}
        for name, data in members:
            stem, _, ext = name.partition(".")
            if name == DONE_MEMBER:
                continue
            if name == "__scenes__":
                self._member(f"{SCENES_PREFIX}{vkey}.csv", data)
            elif ext == "json":
                metas[stem] = json.loads(data.decode("utf-8", "surrogateescape"))
            elif ext:
                images[stem] = (ext, data)
        count = 0
        for stem in sorted(images, key=lambda s: metas.get(s, {}).get("index", 0)):
            ext, data = images[stem]
            meta = metas.get(stem, {})
            index = int(meta.get("index", int(stem) if stem.isdigit() else 0))
            key = f"{vkey}-{index:07d}"
            seconds = float(meta.get("timestamp", 0.0))
            row: dict[str, Any] = {
                "key": key,
                "file": f"{key}.{ext}",
                "video": video.rel,
                "root": video.root,
                "frame": index,
                # ffmpeg's presentation time on the 1/1000000 time base the frame log uses,
                # counted from the first picture as ``seconds`` is.
                "pts": round(seconds * 1_000_000),
                "seconds": seconds,
                "width": int(meta.get("width", 0)),
                "height": int(meta.get("height", 0)),
            }
            if self.scored:
                row["scene_score"] = meta.get("scene_score")
            self._member(row["file"], data)
            self._member(
                f"{key}.json", json.dumps(row, ensure_ascii=False).encode("utf-8", "surrogateescape")
            )
            self._rows.append(row)
            count += 1
        self._videos.append(
            {
                "root": video.root,
                "root_name": video.root_name,
                "video": video.rel,
                "key": vkey,
                "samples": count,
                "signature": self.signature,
                "record": record.to_dict(),
            }
        )
        self._records.append(record)

    def _discard(self) -> None:
        tmp, file, tar = self._opened()
        tar.close()
        file.close()
        tmp.remove()
        self._tar = self._file = self._tmp = None
        self._rows, self._videos, self._records = [], [], []

    def _publish(self) -> list[VideoRecord]:
        """Close the shard, write its parquet and stats, rename all three into OUT/shards
        (the tar last: a loader that sees the tar sees a finished shard), and rewrite the
        job's index."""
        tmp, file, tar = self._opened()
        tar.close()
        file.flush()
        os.fsync(file.fileno())
        tar_size = file.tell()
        file.close()
        shards = safe_dirs(self.out, [SHARDS_DIR])
        try:
            number = next_number(shards)
            tar_name, parquet_name, stats_name = shard_names(number)
            write_parquet(tmp.fd, "shard.parquet", self._rows, index_columns(self.scored, shard=False))
            stats = {
                "snhoo_shard": 1,
                "shard": tar_name,
                "count": len(self._rows),
                "successes": len(self._rows),
                "videos_count": len(self._videos),
                "bytes": tar_size,
                "start_time": self._started,
                "end_time": time.time(),
                "duration": round(time.time() - self._started, 3),
                "videos": self._videos,
            }
            with open(create_file(tmp.fd, "stats.json"), "w", encoding="utf-8") as f:
                f.write(json.dumps(stats, ensure_ascii=True))
            for src, dst in (
                ("shard.parquet", parquet_name),
                ("stats.json", stats_name),
                ("shard.tar", tar_name),
            ):
                _rename_new(tmp.fd, src, shards, dst)
        finally:
            os.close(shards)
        tmp.remove()
        records = [r.finish(r.status or OK, out=f"{SHARDS_DIR}/{tar_name}") for r in self._records]
        self.published.append(tar_name)
        self._tar = self._file = self._tmp = None
        self._rows, self._videos, self._records = [], [], []
        write_index(self.out)
        return records


def _rename_new(src_fd: int, src: str, dst_fd: int, dst: str) -> None:
    """Rename, never over an existing name (a file of the user's there stays)."""
    try:
        os.stat(dst, dir_fd=dst_fd, follow_symlinks=False)
    except FileNotFoundError:
        os.rename(src, dst, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
        return
    raise FileExistsError(f"{SHARDS_DIR}/{dst} appeared while its shard was written")

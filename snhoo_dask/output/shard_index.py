"""The published shards of an output folder (--pack shards): reading them, the job's index,
and retiring shards whose samples a rerun replaces.

A shard is published when OUT/shards/NNNNN.tar is there with its NNNNN_stats.json (written
before it) naming it, at the size the stats say.  Anything else under OUT/shards is not a
published shard: a stats file whose tar never arrived (the run was killed between the two
renames) is one this program wrote and may remove; a file it did not write stays.
"""

from __future__ import annotations

import json
import os
import re
import stat
import uuid
from dataclasses import dataclass

from ..errors import JobError
from ..fs.fsafe import create_file, is_dir_at, open_plain, walk
from .folder import SAMPLES, SHARDS_DIR, OutputDir, TmpDir

INDEX = SAMPLES
# In the index's parquet metadata: how a later run tells its own index from a user's file.
_MARK = (b"snhoo-dask", b"samples index")


class ForeignIndex(JobError):
    """OUT/samples.parquet is not an index snhoo-dask wrote: it is never replaced."""


_NUMBERED = re.compile(r"^(\d{5,})(?:\.tar|\.parquet|_stats\.json)$")


def is_shard(out_rel: str) -> bool:
    """Whether a record's ``out`` is a shard (``shards/00003.tar``): many videos' images, not
    one video's output."""
    parts = out_rel.split("/")
    return len(parts) == 2 and parts[0] == SHARDS_DIR and re.match(r"^\d{5,}\.tar$", parts[1]) is not None


def shard_names(number: int) -> tuple[str, str, str]:
    """(tar, parquet, stats) of shard ``number``: 00000.tar, 00000.parquet, 00000_stats.json."""
    stem = f"{number:05d}"
    return f"{stem}.tar", f"{stem}.parquet", f"{stem}_stats.json"


def next_number(shards_fd: int) -> int:
    """One more than any numbered name in OUT/shards: a number is never used twice, also
    not one a retired shard had (a loader's cache of it would be wrong)."""
    used = [int(m.group(1)) for n in os.listdir(shards_fd) if (m := _NUMBERED.match(n))]
    return max(used, default=-1) + 1


def index_columns(scored: bool, shard: bool = True) -> list[str]:
    cols = ["key", "file", "video", "root", "frame", "pts", "seconds", "width", "height"]
    return cols + (["scene_score"] if scored else []) + (["shard"] if shard else [])


def write_parquet(dir_fd: int, name: str, rows: list[dict], columns: list[str]) -> None:
    """``rows`` as a parquet file ``name`` (new) in ``dir_fd``, columns in this order."""
    import pyarrow as pa  # imported here: only a job packing shards needs it
    import pyarrow.parquet as pq

    types = {"frame": pa.int64(), "pts": pa.int64(), "width": pa.int32(), "height": pa.int32()}
    types.update({"seconds": pa.float64(), "scene_score": pa.float64()})
    schema = pa.schema([(c, types.get(c, pa.string())) for c in columns])
    table = pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows], schema=schema)
    with open(create_file(dir_fd, name), "wb") as f:
        pq.write_table(table, f)


@dataclass
class Shard:
    """A published shard: its names and its stats (``videos``: each with its record)."""

    number: int
    stats: dict

    @property
    def names(self) -> tuple[str, str, str]:
        return shard_names(self.number)

    @property
    def videos(self) -> list[dict]:
        return [v for v in self.stats.get("videos", []) if isinstance(v, dict)]


def published(out: OutputDir) -> list[Shard]:
    """The shards published in OUT, in number order (none if OUT/shards is not a folder)."""
    if not is_dir_at(out.fd, SHARDS_DIR):
        return []
    fd = walk(out.fd, [SHARDS_DIR], where=out.path)
    try:
        found = []
        for name in sorted(os.listdir(fd)):
            m = re.match(r"^(\d{5,})_stats\.json$", name)
            if m:
                shard = _read(fd, int(m.group(1)))
                if shard is not None:
                    found.append(shard)
        return found
    finally:
        os.close(fd)


def _read(fd: int, number: int) -> Shard | None:
    tar, parquet, stats_name = shard_names(number)
    try:
        with open(open_plain(fd, stats_name), encoding="utf-8") as f:
            stats = json.load(f)
        st = os.stat(tar, dir_fd=fd, follow_symlinks=False)
        os.stat(parquet, dir_fd=fd, follow_symlinks=False)
    except (OSError, ValueError):
        return None
    if not isinstance(stats, dict) or stats.get("snhoo_shard") != 1 or stats.get("shard") != tar:
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_size != stats.get("bytes"):
        return None
    return Shard(number, stats)


def orphans(out: OutputDir) -> list[str]:
    """Stats and parquet files of shards whose tar never arrived (killed between renames)."""
    if not is_dir_at(out.fd, SHARDS_DIR):
        return []
    fd = walk(out.fd, [SHARDS_DIR], where=out.path)
    try:
        names = set(os.listdir(fd))
        left = []
        for name in sorted(names):
            m = re.match(r"^(\d{5,})_stats\.json$", name)
            if m and shard_names(int(m.group(1)))[0] not in names:
                try:
                    with open(open_plain(fd, name), encoding="utf-8") as f:
                        ours = json.load(f).get("snhoo_shard") == 1
                except (OSError, ValueError, AttributeError):
                    ours = False
                if ours:
                    left += [name] + [p for p in [shard_names(int(m.group(1)))[1]] if p in names]
        return left
    finally:
        os.close(fd)


def retire(out: OutputDir, shards: list[Shard]) -> None:
    """Take these shards out of sight (tar first, so no loader finds one without its
    stats), then delete them; and the leftovers of shards that were never published."""
    names = [n for s in shards for n in s.names] + orphans(out)
    if not names:
        return
    fd = walk(out.fd, [SHARDS_DIR], where=out.path)
    trash = TmpDir(out)
    try:
        for name in names:
            try:
                os.rename(name, f"{uuid.uuid4().hex}-{name}", src_dir_fd=fd, dst_dir_fd=trash.fd)
            except FileNotFoundError:
                pass
    finally:
        os.close(fd)
        trash.remove()
    write_index(out)


def index_is_ours(out: OutputDir) -> bool:
    """Whether OUT/samples.parquet is absent or an index snhoo-dask wrote (a plain file whose
    parquet metadata carries our mark); a user's file, link or folder there is not."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        fd = open_plain(out.fd, INDEX)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    try:
        with open(fd, "rb") as f:
            meta = pq.read_schema(f).metadata or {}
    except (OSError, pa.ArrowException):  # not a parquet file at all: a user's
        return False
    return meta.get(_MARK[0]) == _MARK[1]


def check_index(out: OutputDir) -> None:
    """ForeignIndex (one line) when OUT/samples.parquet is a user's file the job would replace."""
    if not index_is_ours(out):
        raise ForeignIndex(
            f"{os.path.join(out.path, INDEX)} is not an index snhoo-dask wrote and --pack shards "
            "would replace it; move it away or choose another output folder"
        )


def write_index(out: OutputDir) -> None:
    """OUT/samples.parquet: every sample of every published shard with its shard, rewritten
    whole (made aside, renamed over the last one).  A file there that is not an index of
    ours (one put there during the run) is left as it is."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not index_is_ours(out):
        return
    shards = published(out)
    tables = []
    if shards:
        fd = walk(out.fd, [SHARDS_DIR], where=out.path)
        try:
            for s in shards:
                with open(open_plain(fd, s.names[1]), "rb") as f:
                    t = pq.read_table(f)
                tables.append(t.append_column("shard", pa.array([s.names[0]] * t.num_rows, pa.string())))
        finally:
            os.close(fd)
    scored = any("scene_score" in t.column_names for t in tables)
    if tables:
        table = pa.concat_tables(tables, promote_options="default")
    else:
        cols = index_columns(scored)
        table = pa.table({c: pa.array([], pa.string()) for c in cols})
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), _MARK[0]: _MARK[1]})
    tmp = TmpDir(out)
    try:
        with open(create_file(tmp.fd, INDEX), "wb") as f:
            pq.write_table(table, f)
        try:
            mode = os.stat(INDEX, dir_fd=out.fd, follow_symlinks=False).st_mode
        except FileNotFoundError:
            mode = None
        if mode is None or stat.S_ISREG(mode):  # never over a link or folder of someone else's
            os.rename(INDEX, INDEX, src_dir_fd=tmp.fd, dst_dir_fd=out.fd)
    finally:
        tmp.remove()

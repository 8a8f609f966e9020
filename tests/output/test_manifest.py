"""A manifest line and back: what every reader of manifest.jsonl (rerun, report, web) relies on."""

from __future__ import annotations

import json
import os

import pytest

from snhoo_dask.model import VideoRecord
from snhoo_dask.output.folder import OutputDir
from snhoo_dask.output.manifest import (
    ManifestWriter,
    latest_records,
    load_latest,
    load_manifest,
    read_manifest,
)


def finished(**changes) -> VideoRecord:
    rec = VideoRecord(
        run="20261125T150102-ab12cd",
        root="/media/disk1/videos",
        video="day1/cam 1.mp4",
        out="videos/day1/cam 1.mp4",
    )
    return rec.finish(
        "ok", frames=8, missing=["frame 100 (video has 100 frames)"], worker="w0", size=1234, **changes
    )


def test_every_field_survives_the_round_trip():
    rec = finished(
        codec="h264", width=64, height=48, fps=29.97003, duration=10.01, selection="every 7th frame"
    )
    back = VideoRecord.from_json(rec.to_json())
    assert back == rec
    assert "\n" not in rec.to_json()  # one record, one line


def test_a_chinese_name_stays_readable_in_the_file():
    rec = finished(video="160811张三测试/test/a.mp4")
    line = rec.to_json()
    assert "160811张三测试" in line
    assert VideoRecord.from_json(line).video == rec.video


def test_a_name_that_is_not_utf8_is_kept_as_its_bytes(tmp_path):
    name = os.fsdecode(b"not-utf8-\xff\xfe.mp4")  # what os.listdir gives for such a file
    rec = finished(video=name)
    with OutputDir(str(tmp_path)) as out, ManifestWriter(out) as writer:
        writer.write(rec)
    raw = (tmp_path / "manifest.jsonl").read_bytes()
    raw.decode("utf-8")  # the file stays valid UTF-8 for every other reader
    assert b"\\udcff\\udcfe" in raw
    (back,) = read_manifest(str(tmp_path))
    assert os.fsencode(back.video) == b"not-utf8-\xff\xfe.mp4"


def test_keys_from_other_versions_are_ignored():
    data = json.loads(finished().to_json())
    data["added_by_a_newer_version"] = [1, 2]
    del data["dropped"]  # a key an older version never wrote: its default
    back = VideoRecord.from_json(json.dumps(data))
    assert back.frames == 8 and back.dropped == 0
    assert not hasattr(back, "added_by_a_newer_version")


@pytest.mark.parametrize(
    "line, words",
    [
        ('{"run": "r", "root": "/a", "frames": 3}', "no video, out"),
        ("[1, 2]", "not a JSON object"),
        ('{"run": "r", "root": "/a", "video": "v.mp4", "out": "a/v.mp4", "status": "ok"', None),
    ],
)
def test_a_line_that_is_not_a_record_is_rejected(line, words):
    with pytest.raises(ValueError) as caught:
        VideoRecord.from_json(line)
    if words:
        assert words in str(caught.value)


def test_the_manifest_reader_skips_torn_and_foreign_lines(tmp_path):
    good = finished()
    (tmp_path / "manifest.jsonl").write_text(
        good.to_json() + "\n" + '{"hello": 1}\n' + good.to_json()[:40] + "\n", encoding="utf-8"
    )
    assert list(read_manifest(str(tmp_path))) == [good]


def test_only_final_statuses_are_recorded():
    with pytest.raises(ValueError, match="unknown status 'done'"):
        finished().finish("done")


def _run_records(run: str, names: list[str]) -> list[VideoRecord]:
    return [finished(run=run, video=n, out=f"videos/{n}") for n in names]


def test_the_latest_run_is_read_from_the_end_and_is_what_a_whole_read_finds(tmp_path):
    out = str(tmp_path)
    path = tmp_path / "manifest.jsonl"
    runs = [("r1", ["a", "b", "c"]), ("r2", ["a", "b"]), ("r3", ["c", "a", "c"])]
    with open(path, "wb") as f:
        for run, names in runs:
            for i, rec in enumerate(_run_records(run, names)):
                f.write(rec.to_json().encode() + b"\n")
                if i == 0:
                    f.write(b"not a record\n\n")  # a bad line and an empty one inside each run
    whole = load_manifest(out)
    latest = load_latest(out)
    assert latest.records == whole.latest_run()
    assert [r.video for r in latest.records] == ["c", "a", "c"]
    # Only the latest run's bad line is named, by its number in the whole file.
    assert whole.bad_lines == [2, 7, 11] and latest.bad_lines == [11]
    # One record per video, the last one written.
    assert [(r.video, r.run) for r in latest_records(out)] == [("a", "r3"), ("c", "r3")]


def test_the_latest_run_costs_that_run_not_the_history(tmp_path, monkeypatch):
    out = str(tmp_path)
    with open(tmp_path / "manifest.jsonl", "wb") as f:
        for run in range(10):
            for rec in _run_records(f"r{run}", [f"v{i}.mp4" for i in range(300)]):
                f.write(rec.to_json().encode() + b"\n")
    size = os.path.getsize(tmp_path / "manifest.jsonl")
    read = []
    real = os.pread
    monkeypatch.setattr(os, "pread", lambda fd, n, at: read.append(n) or real(fd, n, at))
    got = load_latest(out)
    assert len(got.records) == 300 and {r.run for r in got.records} == {"r9"}
    assert sum(read) < size / 5  # the last run and one block before it, not the ten runs


def test_no_manifest_is_no_latest_records(tmp_path):
    assert latest_records(str(tmp_path)) == [] and load_latest(str(tmp_path)).records == []

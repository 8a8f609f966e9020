"""A manifest line and back: what every reader of manifest.jsonl (rerun, report, web) relies on."""

from __future__ import annotations

import json
import os

import pytest

from snhoo_dask.model import VideoRecord
from snhoo_dask.output.layout import OutputDir
from snhoo_dask.output.manifest import ManifestWriter, read_manifest


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

"""The manifest and the report when the disk or the file is not what a run left: a torn last
line, a full disk (a size-limited tmpfs, mounted for the test), lines that are not records,
and a folder that holds no manifest at all."""

from __future__ import annotations

import os

import pytest
from helpers import fill_disk, run_cli, small_fs_fixture

from snhoo_dask.model import VideoRecord
from snhoo_dask.output.folder import OutputDir
from snhoo_dask.output.manifest import ManifestWriter, latest_run, load_manifest

pytestmark = pytest.mark.timeout(120)


def record(name: str, run: str = "r1", **changes) -> VideoRecord:
    rec = VideoRecord(run=run, root="/lab/day", video=name, out=f"day/{name}", worker="w0")
    return rec.finish("ok", frames=3, seconds=0.5, **changes)


def write_lines(out, *lines: bytes) -> str:
    path = os.path.join(out, "manifest.jsonl")
    with open(path, "wb") as f:
        f.write(b"".join(lines))
    return path


@pytest.fixture
def small_fs(tmp_path):
    """A 1 MiB tmpfs, unmounted at the end whatever the test did."""
    yield from small_fs_fixture(str(tmp_path / "small"), "1m")


def test_a_torn_last_line_is_ended_before_the_next_record(tmp_path):
    out = str(tmp_path)
    first = record("a.mp4", run="r0").to_json().encode()
    write_lines(out, first + b"\n", first[:40])  # a run killed mid-write, or a full disk
    with OutputDir(out) as d, ManifestWriter(d) as m:
        m.write(record("b.mp4"))
    got = load_manifest(out)
    assert [r.video for r in got.records] == ["a.mp4", "b.mp4"]  # the new record is not lost
    assert got.bad_lines == [2]
    assert [r.video for r in latest_run(out)] == ["b.mp4"]


def test_a_full_disk_while_appending_or_closing_raises_no_traceback_from_close(small_fs):
    with OutputDir(small_fs) as d:
        m = ManifestWriter(d)
        m.write(record("a.mp4"))
        fill_disk(small_fs)
        with pytest.raises(OSError):  # the job turns this into its manifest_error line
            for i in range(200):
                m.write(record(f"v{i}.mp4", error="x" * 2000))
        m.close()  # nothing left in a buffer to fail again
        os.remove(os.path.join(small_fs, "filler"))
        with ManifestWriter(d) as again:
            again.write(record("c.mp4"))
    got = load_manifest(small_fs)
    assert got.records[0].video == "a.mp4" and got.records[-1].video == "c.mp4"
    assert len(got.bad_lines) <= 1  # at most the one line the disk cut short


def test_report_on_a_full_disk_is_one_error_line(small_fs):
    write_lines(small_fs, record("a.mp4").to_json().encode() + b"\n")
    fill_disk(small_fs)
    done = run_cli("report", small_fs, timeout=60)
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("snhoo-dask: error: could not write ") and "No space left on device" in line
    assert sorted(os.listdir(small_fs)) == ["filler", "manifest.jsonl"]  # no half report, no .tmp


def test_lines_that_are_not_records_are_skipped_counted_and_named(tmp_path):
    out = str(tmp_path)
    good = record("a.mp4").to_json().encode() + b"\n"
    bad_type = record("b.mp4").to_json().replace('"seconds": 0.5', '"seconds": "x"').encode() + b"\n"
    assert b'"seconds": "x"' in bad_type
    write_lines(
        out,
        good,
        b"[" * 100000 + b"\n",  # RecursionError in json.loads
        bad_type,  # TypeError in the report's arithmetic
        b'{"run": "r1", "root": "/l", "video": "\xff", "out": "x"}\n',  # not UTF-8
        b'{"run": "r1", "root": "/l", "video": "c.mp4", "out": "day/c.mp4", "finished_at": 1e999}\n',
        b"\n",  # an empty line is nothing, not a problem
        record("d.mp4").to_json().encode() + b"\n",
    )
    got = load_manifest(out)
    assert [r.video for r in got.records] == ["a.mp4", "d.mp4"]
    assert got.bad_lines == [2, 3, 4, 5]
    assert got.problem == "manifest.jsonl: 4 unreadable lines skipped (lines 2, 3, 4, 5)"
    done = run_cli("report", out, timeout=60)
    assert done.returncode == 0, done
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == "warning: manifest.jsonl: 4 unreadable lines skipped (lines 2, 3, 4, 5)"
    page = open(os.path.join(out, "report.html"), encoding="utf-8").read()
    assert "day/a.mp4" in page and "day/d.mp4" in page and "4 unreadable lines skipped" in page


def test_report_of_a_folder_without_a_manifest_is_refused_and_writes_nothing(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"not ours")
    done = run_cli("report", str(folder), timeout=60)
    assert done.returncode == 2, done
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("snhoo-dask: error: ") and "manifest.jsonl" in line
    assert os.listdir(folder) == ["holiday.jpg"]

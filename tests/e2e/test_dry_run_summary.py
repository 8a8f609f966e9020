"""What the terminal says of a big job stays readable: ``--dry-run`` is a summary with a
verdict (new / skip / redo, and why) for the first videos, ``--list`` lists them all, the
closing failure table shows 20 rows and a count by reason, a warning repeated for many
folders is one line.  Real CLI, real files, a real Dask cluster for the runs."""

from __future__ import annotations

import json
import os
import re

import pytest
from helpers import run_cli, run_on
from videos import make_video

pytestmark = pytest.mark.slow


def verdicts(stdout: str) -> dict[str, str]:
    """Video file name -> its dry-run line."""
    found = {}
    for line in stdout.splitlines():
        m = re.match(r"(new|skip|redo) +(\S+)\t-> ", line)
        assert m, line
        found[os.path.basename(m[2])] = line
    return found


def test_dry_run_gives_each_video_its_verdict_and_why(shared_cluster, tmp_path):
    root, out = tmp_path / "cam", tmp_path / "out"
    for name in ("done.mp4", "sel.mp4"):
        make_video(root / name, seconds=1)
    (root / "empty.mp4").write_bytes(b"")
    (root / "junk.mp4").write_bytes(b"not a video at all" * 10)
    first = run_on(shared_cluster, str(root), "--out", str(out), "--every", "10")
    assert first.returncode == 1, first.stderr  # the empty and the junk file failed
    # sel.mp4 alone, with another selection: the latest run knows only it.
    again = run_on(shared_cluster, str(root / "sel.mp4"), "--out", str(out), "--every", "5")
    assert again.returncode == 0, again.stderr
    make_video(root / "fresh.mp4", seconds=1)

    dry = run_cli("run", str(root), "--out", str(out), "--every", "10", "--dry-run", timeout=60)
    assert dry.returncode == 0, dry.stderr
    lines = verdicts(dry.stdout)
    assert sorted(lines) == ["done.mp4", "empty.mp4", "fresh.mp4", "junk.mp4", "sel.mp4"]
    assert lines["done.mp4"].startswith("skip  ") and "why" not in lines["done.mp4"]
    assert lines["fresh.mp4"].startswith("new   ") and "why" not in lines["fresh.mp4"]
    assert lines["sel.mp4"].startswith("redo  ")
    assert "(why: made with other settings (the frame selection))" in lines["sel.mp4"]
    assert lines["empty.mp4"].startswith("redo  ")
    assert "(why: failed before: the file is empty (0 bytes))" in lines["empty.mp4"]
    assert "[empty: 0 bytes, it will fail]" in lines["empty.mp4"]
    assert "(why: failed before: not a readable video" in lines["junk.mp4"]
    assert lines["junk.mp4"].endswith("[unreadable when last tried]")
    err = dry.stderr
    assert "5 videos, " in err and " under 1 root; every 10th frame;" in err
    assert "by extension: .mp4 5" in err
    assert (
        "would do: 1 new, 1 skip (already done with these settings), 3 redo "
        "(2 failed before; 1 made with other settings (the frame selection))" in err
    )
    assert f"known to fail: 1 empty file (0 bytes): {root / 'empty.mp4'}" in err
    assert f"known to fail: 1 file unreadable when last tried: {root / 'junk.mp4'}" in err

    # Output gone from a video the manifest says is done: redone, and said why.
    os.remove(out / "cam" / "done.mp4" / "frames.csv")
    dry = run_cli("run", str(root), "--out", str(out), "--every", "10", "--dry-run", timeout=60)
    assert "(why: with images changed or deleted since)" in verdicts(dry.stdout)["done.mp4"]


def test_150_videos_print_a_summary_and_list_prints_all(tmp_path):
    root = tmp_path / "videos"
    for i in range(150):
        folder = root / ("day1" if i % 2 else "day2")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"v{i:03d}.{'mp4' if i % 3 else 'mkv'}").write_bytes(b"x" * 1000)
    out = str(tmp_path / "out")
    dry = run_cli("run", str(root), "--out", out, "--dry-run", timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert len(dry.stdout.splitlines()) + len(dry.stderr.splitlines()) < 100
    assert len(dry.stdout.splitlines()) == 20
    assert "150 videos, 150.0 kB under 1 root" in dry.stderr
    assert "by extension: .mp4 100, .mkv 50" in dry.stderr
    assert "would do: 150 new, 0 skip" in dry.stderr
    assert "... and 130 more videos: --list lists every one" in dry.stderr
    listed = run_cli("run", str(root), "--out", out, "--list", timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == 150
    assert len(set(verdicts(listed.stdout))) == 150
    assert not os.path.exists(out)  # --list is a dry run: nothing made


def test_25_failures_show_20_rows_and_a_count_by_reason_and_warnings_are_grouped(shared_cluster, tmp_path):
    root, out = tmp_path / "cam", tmp_path / "out"
    root.mkdir()
    for i in range(15):
        (root / f"empty{i:02d}.mp4").write_bytes(b"")
    for i in range(10):
        (root / f"junk{i:02d}.mp4").write_bytes(b"not a video at all" * 10)
    # Links into sysfs: discovery does not follow them, one warning each, said as one line.
    links = sorted(os.listdir("/sys/class"))[:12]
    for name in links:
        os.symlink(f"/sys/class/{name}", root / f"link-{name}")
    res = run_on(shared_cluster, str(root), "--out", str(out), "--json")
    assert res.returncode == 1, res.stderr
    err = res.stderr.splitlines()
    (warning,) = [line for line in err if line.startswith("warning: skipped")]
    assert warning.startswith(
        f"warning: skipped 12 paths: leads into the kernel's sysfs filesystem; not followed ({root}/link-"
    )
    assert warning.endswith(" and 9 more)")
    head = err.index(next(line for line in err if line.startswith("FAILED VIDEO")))
    rows = err[head + 1 : head + 21]
    assert all(line.startswith(str(root)) for line in rows)
    assert err[head + 21] == "... and 5 more failed videos: all in manifest.jsonl and report.html"
    assert err[head + 22] == "25 failed videos by reason:"
    assert err[head + 23] == "  15  the file is empty (0 bytes)"
    assert re.fullmatch(r"  10  not a readable video: .*", err[head + 24])
    assert len(err) < 60
    summary = json.loads(res.stdout)
    assert len(summary["failures"]) == 25  # the full list stays for scripts
    assert summary["failure_reasons"]["the file is empty (0 bytes)"] == 15
    assert sum(summary["failure_reasons"].values()) == 25


def test_dry_run_with_shards_takes_the_shards_verdict_and_writes_nothing(shared_cluster, tmp_path):
    root, out = tmp_path / "cam", tmp_path / "out"
    for name in ("a.mp4", "b.mp4"):
        make_video(root / name, seconds=1)
    first = run_on(shared_cluster, str(root), "--out", str(out), "--every", "10", "--pack", "shards")
    assert first.returncode == 0, first.stderr
    make_video(root / "c.mp4", seconds=1)
    before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    same = run_cli("run", str(root), "--out", str(out), "--every", "10", "--pack", "shards", "--dry-run")
    assert same.returncode == 0, same.stderr
    lines = verdicts(same.stdout)
    assert lines["a.mp4"].startswith("skip") and lines["b.mp4"].startswith("skip"), same.stdout
    assert lines["c.mp4"].startswith("new"), same.stdout
    assert f"\t-> {out}/shards/" in lines["c.mp4"]
    other = run_cli("run", str(root), "--out", str(out), "--every", "5", "--pack", "shards", "--dry-run")
    assert "(why: made with other settings)" in verdicts(other.stdout)["a.mp4"], other.stdout
    # The run would retire the shard and rewrite the index; its dry run touched nothing.
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == before

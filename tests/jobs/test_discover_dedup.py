"""Discovery takes each video once over all roots, and under ``confine`` never leaves it."""

import json
import os

import pytest
from helpers import run_cli, touch
from videos import make_video

from snhoo_dask.jobs.discover import OUTSIDE, discover
from snhoo_dask.jobs.planning import find_videos


def corpus(tmp_path):
    root = tmp_path / "lab" / "day1"
    for rel in ["a.mp4", "cam/b.mp4", "cam/deep/c.mov"]:
        touch(root / rel)
    return root


def rels(found) -> list[str]:
    return sorted(v.out_rel for v in found.videos)


def test_the_same_root_many_times_gives_each_video_once(tmp_path):
    root = str(corpus(tmp_path))
    found = discover([root] * 300 + [root + "/", os.path.join(root, "cam", "..")])
    assert rels(found) == ["day1/a.mp4", "day1/cam/b.mp4", "day1/cam/deep/c.mov"]
    assert found.problems == []


def test_a_root_and_its_subfolder_keep_the_first_root_that_reaches_a_video(tmp_path):
    root = corpus(tmp_path)
    assert rels(discover([str(root), str(root / "cam")])) == [
        "day1/a.mp4",
        "day1/cam/b.mp4",
        "day1/cam/deep/c.mov",
    ]
    assert rels(discover([str(root / "cam"), str(root)])) == ["cam/b.mp4", "cam/deep/c.mov", "day1/a.mp4"]


def test_two_links_to_one_folder_and_a_hard_linked_file_count_once(tmp_path):
    root = corpus(tmp_path)
    os.symlink(root, tmp_path / "link1")
    os.symlink(root, tmp_path / "link2")
    os.link(root / "a.mp4", root / "cam" / "a-again.mp4")
    os.symlink(root / "cam" / "b.mp4", root / "b-link.mp4")
    found = discover([str(tmp_path / "link1"), str(tmp_path / "link2")])
    # The walk lists a folder's files before its subfolders: the link to b.mp4 reaches it first.
    assert rels(found) == ["link1/a.mp4", "link1/b-link.mp4", "link1/cam/deep/c.mov"]
    # Only the hard link is one file under two names: the links to one folder or file are not.
    assert found.merged == [(str(root / "cam" / "a-again.mp4"), str(root / "a.mp4"))]


@pytest.mark.slow
def test_a_run_notes_the_hard_linked_duplicate_it_decoded_once(tmp_path):
    root = tmp_path / "day"
    make_video(str(root / "a.mp4"), seconds=1)
    os.link(root / "a.mp4", root / "same.mp4")
    res = run_cli("run", str(root), "--out", str(tmp_path / "o"), "--every", "10", "--workers", "1", "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["merged"] == [{"path": str(root / "same.mp4"), "same_as": str(root / "a.mp4")}]
    assert "note: 1 video is a hard link" in res.stderr and "same.mp4 is " in res.stderr, res.stderr
    assert os.listdir(tmp_path / "o" / "day") == ["a.mp4"]  # decoded once, under its first name


def test_confined_discovery_does_not_follow_links_out_of_the_allowed_folders(tmp_path):
    root = corpus(tmp_path)
    touch(tmp_path / "secret" / "s.mp4")
    touch(tmp_path / "secret" / "inner" / "t.mp4")
    os.symlink(tmp_path / "secret", root / "out-dir")  # a folder link leading out
    os.symlink(tmp_path / "secret" / "s.mp4", root / "out-file.mp4")  # a file link leading out
    # Unconfined (the command line) links are followed as before.
    assert "day1/out-dir/inner/t.mp4" in rels(discover([str(root)]))
    os.symlink("/", root / "slash")
    allowed = [str(tmp_path / "lab")]
    found = discover([str(root)], confine=allowed)
    assert rels(found) == ["day1/a.mp4", "day1/cam/b.mp4", "day1/cam/deep/c.mov"]
    assert sorted(os.path.basename(p) for p, why in found.problems if why == OUTSIDE) == [
        "out-dir",
        "out-file.mp4",
        "slash",
    ]
    # Through planning (the web service's path) the same confinement applies.
    assert rels(find_videos([str(root)], None, confine=allowed)) == rels(found)


def test_a_root_given_through_a_link_out_of_the_allowed_folders_reads_nothing(tmp_path):
    corpus(tmp_path)
    touch(tmp_path / "secret" / "s.mp4")
    os.symlink(tmp_path / "secret", tmp_path / "lab" / "escape")
    found = discover([str(tmp_path / "lab" / "escape")], confine=[str(tmp_path / "lab")])
    assert found.videos == [] and found.problems[0][1] == OUTSIDE

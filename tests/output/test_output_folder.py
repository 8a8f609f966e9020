"""What snhoo-dask may write, replace or delete under OUT, and which output folders it refuses.

Real folders, files and symbolic links in a temporary directory; no run needed."""

from __future__ import annotations

import json
import os

import pytest

from snhoo_dask.errors import JobError
from snhoo_dask.fs.fsafe import create_file
from snhoo_dask.jobs.discover import root_names
from snhoo_dask.output.folder import (
    DONE_FILE,
    TMP_DIR,
    OutputDir,
    OutputFolder,
    TmpDir,
    UnsafePath,
    publish,
    safe_dirs,
    sweep_tmp,
)

SIGNATURE = {"selection": {"mode": "all"}, "format": "jpg", "quality": 90}


def check_apart(out: str, roots: list[str]) -> str:
    folder = OutputFolder(out)
    folder.check_apart(roots)
    return folder.path


def prepare_output(out: str, roots: list[str] | None = None) -> str:
    """The output folder as a job's planning makes it: checked, then created."""
    folder = OutputFolder(out)
    folder.check_apart(roots or [])
    folder.create()
    return folder.path


# -- the output folder and the roots ------------------------------------------------------------


@pytest.fixture
def disk(tmp_path):
    """A root with a video folder, and links a user might type instead of the real paths."""
    root = tmp_path / "disk" / "videos"
    root.mkdir(parents=True)
    os.symlink(root, tmp_path / "videos-link")
    os.symlink(tmp_path / "disk", tmp_path / "disk-link")
    return root


@pytest.mark.parametrize(
    "out, words",
    [
        ("disk/videos", "is the root"),
        ("videos-link", "is the root"),  # the same folder through a link
        ("disk/videos/frames", "lies inside the root"),
        ("videos-link/frames", "lies inside the root"),
        ("disk", "lies inside the output folder"),
        ("disk-link", "lies inside the output folder"),
    ],
)
def test_an_output_folder_that_overlaps_a_root_is_refused(tmp_path, disk, out, words):
    with pytest.raises(JobError, match=words):
        prepare_output(str(tmp_path / out), [str(disk)])
    assert not (disk / "frames").exists()  # refused before anything is created


def test_an_output_folder_beside_the_root_is_fine_even_with_a_similar_name(tmp_path, disk):
    check_apart(str(tmp_path / "disk" / "videos-frames"), [str(disk)])  # a prefix, not a parent
    out = prepare_output(str(tmp_path / "frames" / "job1"), [str(disk)])
    assert out == str(tmp_path / "frames" / "job1") and os.path.isdir(out)


def test_an_output_folder_that_cannot_exist_says_why(tmp_path):
    os.symlink(tmp_path / "gone", tmp_path / "dangling")
    with pytest.raises(JobError, match="is a broken symbolic link"):
        prepare_output(str(tmp_path / "dangling"))
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(JobError, match="cannot create the output folder .*: File exists"):
        prepare_output(str(tmp_path / "a-file"))


# -- publish: one rename, and only over its own finished folders ---------------------------------


def finished_tmp(out: OutputDir, frames: int, signature: dict = SIGNATURE, size: int = 1000) -> TmpDir:
    """A video's folder as a task leaves it in OUT/.snhoo-tmp before publishing."""
    tmp = TmpDir(out)
    for i in range(frames):
        with open(create_file(tmp.fd, f"{i:06d}.jpg"), "wb") as f:
            f.write(b"jpeg")
    with open(create_file(tmp.fd, DONE_FILE), "w", encoding="utf-8") as f:
        json.dump({"signature": signature, "record": {"frames": frames, "size": size}}, f)
    return tmp


def put(out: OutputDir, rel: str, frames: int = 1, signature: dict = SIGNATURE, size: int = 1000) -> bool:
    """Publish a finished folder of ``frames`` images at ``rel``, as a task does."""
    tmp = finished_tmp(out, frames, signature, size)
    try:
        return publish(tmp, (tmp.base, tmp.name), out, rel, signature, size)
    finally:
        tmp.remove()


@pytest.fixture
def out(tmp_path):
    with OutputDir(str(tmp_path)) as d:
        yield d


def listing(folder) -> list[str]:
    return sorted(os.listdir(folder))


def test_publish_moves_the_whole_folder_into_place(tmp_path, out):
    assert put(out, "cam/day1/a.mp4", 3) is True
    assert listing(tmp_path / "cam" / "day1" / "a.mp4") == [
        DONE_FILE,
        "000000.jpg",
        "000001.jpg",
        "000002.jpg",
    ]
    assert listing(tmp_path / TMP_DIR) == []


def test_an_equal_finished_folder_is_kept_not_swapped(tmp_path, out):
    put(out, "cam/a.mp4", 2)
    first = os.stat(tmp_path / "cam" / "a.mp4").st_ino
    # The same video again (a task Dask reran after its worker died): the folder stays.
    assert put(out, "cam/a.mp4", 2) is False
    assert os.stat(tmp_path / "cam" / "a.mp4").st_ino == first
    assert listing(tmp_path / TMP_DIR) == []


@pytest.mark.parametrize(
    "signature, size",
    [(dict(SIGNATURE, format="png"), 1000), (SIGNATURE, 2000)],
    ids=["other selection", "other source"],
)
def test_a_finished_folder_for_other_work_is_replaced_whole(tmp_path, out, signature, size):
    put(out, "cam/a.mp4", 5)
    assert put(out, "cam/a.mp4", 2, signature, size) is True
    assert listing(tmp_path / "cam" / "a.mp4") == [DONE_FILE, "000000.jpg", "000001.jpg"]
    assert listing(tmp_path / TMP_DIR) == []  # the old folder is gone, not parked


def test_a_users_folder_or_file_in_the_way_is_never_replaced(tmp_path, out):
    (tmp_path / "cam" / "a.mp4").mkdir(parents=True)
    (tmp_path / "cam" / "a.mp4" / "notes.txt").write_text("mine")
    (tmp_path / "cam" / "b.mp4").write_bytes(b"a real video, say")
    for rel, words in (("cam/a.mp4", "not a finished snhoo-dask output"), ("cam/b.mp4", "not a finished")):
        with pytest.raises(UnsafePath, match=words):
            put(out, rel)
    assert listing(tmp_path / "cam" / "a.mp4") == ["notes.txt"]
    assert (tmp_path / "cam" / "b.mp4").read_bytes() == b"a real video, say"


@pytest.mark.parametrize("where", ["cam", "cam/a.mp4"], ids=["a parent folder", "the video folder"])
def test_a_symbolic_link_inside_out_is_never_followed(tmp_path, where):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    out.mkdir()
    if where == "cam/a.mp4":
        (out / "cam").mkdir()
    os.symlink(elsewhere, out / where)
    with OutputDir(str(out)) as d, pytest.raises(UnsafePath, match="is a symbolic link"):
        put(d, "cam/a.mp4")
    assert listing(elsewhere) == []
    assert os.path.islink(out / where)


def test_a_link_swapped_in_after_the_output_was_opened_is_not_written_through(tmp_path):
    """OUT is held by descriptor: renaming it away and putting a link in its place redirects
    nothing, and a task that opens OUT afterwards refuses the link or the other folder."""
    out, moved, elsewhere = tmp_path / "out", tmp_path / "moved", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    with OutputDir(str(out)) as d:
        os.rename(out, moved)
        os.symlink(elsewhere, out)
        assert put(d, "cam/a.mp4") is True  # into the folder the job opened, wherever it is now
        with pytest.raises(UnsafePath, match="is a symbolic link"):
            OutputDir(str(out), d.ino)
        os.unlink(out)
        out.mkdir()
        with pytest.raises(UnsafePath, match="was replaced since the job started"):
            OutputDir(str(out), d.ino)
    assert listing(elsewhere) == []
    assert listing(moved / "cam" / "a.mp4") == [DONE_FILE, "000000.jpg"]


@pytest.mark.parametrize("part", ["..", ".", ""])
def test_path_components_that_climb_or_vanish_are_refused(tmp_path, part):
    (tmp_path / "out").mkdir()
    with (
        OutputDir(str(tmp_path / "out")) as d,
        pytest.raises(UnsafePath, match="refusing the path component"),
    ):
        safe_dirs(d, ["cam", part, "x"])
    assert not (tmp_path / "x").exists()


# -- sweeping what interrupted runs left ---------------------------------------------------------


def test_sweep_removes_leftovers_but_deletes_nothing_through_a_link(tmp_path):
    out, precious = tmp_path / "out", tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.jpg").write_bytes(b"x")
    out.mkdir()
    with OutputDir(str(out)) as d:
        finished_tmp(d, 2)
        finished_tmp(d, 1)
        os.symlink(precious, out / TMP_DIR / "link")  # not a name snhoo-dask gives: not its own
        assert sweep_tmp(d) == 2
    assert listing(out / TMP_DIR) == ["link"] and os.path.islink(out / TMP_DIR / "link")
    assert listing(precious) == ["keep.jpg"]


def test_sweep_never_lists_through_a_linked_tmp_folder(tmp_path):
    out, precious = tmp_path / "out", tmp_path / "precious"
    out.mkdir()
    precious.mkdir()
    (precious / "keep.jpg").write_bytes(b"x")
    os.symlink(precious, out / TMP_DIR)
    with OutputDir(str(out)) as d:
        assert sweep_tmp(d) == 0
    assert listing(precious) == ["keep.jpg"]


# -- one output folder name per root -------------------------------------------------------------


def test_each_root_gets_its_own_folder_name():
    names = root_names(["/media/disk1/videos", "/media/disk2/videos/", "/srv/cam", "/"])
    assert names["/srv/cam"] == "cam" and names["/"] == "root"
    clashing = [names["/media/disk1/videos"], names["/media/disk2/videos/"]]
    assert len(set(clashing)) == 2
    assert all(n.startswith("videos-") and len(n) == len("videos-") + 8 for n in clashing)
    # Stable across runs, so a rerun finds the folders it wrote before.
    assert root_names(["/media/disk1/videos", "/media/disk2/videos/"])["/media/disk1/videos"] == clashing[0]

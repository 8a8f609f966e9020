"""Finding videos: extensions in any case, nested folders, link loops, clashing root names."""

import os

import pytest
from helpers import touch

from snhoo_dask.jobs.discover import DiscoveryError, discover, parse_extensions


def test_every_video_in_every_subfolder_by_extension_any_case(tmp_path):
    for rel in ["a.mp4", "deep/er/b.MOV", "deep/c.Mkv", "d.M2TS", "notes.txt", "e.mp4.part"]:
        touch(tmp_path / "root" / rel)
    found = discover([str(tmp_path / "root")])
    assert sorted(v.rel for v in found.videos) == ["a.mp4", "d.M2TS", "deep/c.Mkv", "deep/er/b.MOV"]
    only = discover([str(tmp_path / "root")], parse_extensions("mov,.MKV"))
    assert sorted(v.rel for v in only.videos) == ["deep/c.Mkv", "deep/er/b.MOV"]


def test_symlink_loops_do_not_hang_and_linked_folders_are_walked_once(tmp_path):
    root = tmp_path / "root"
    touch(root / "sub" / "a.mp4")
    os.symlink(root, root / "sub" / "loop")  # points back up
    os.symlink(root / "sub", root / "again")  # a second way into the same folder
    found = discover([str(root)])
    (video,) = found.videos
    assert video.rel in ("again/a.mp4", "sub/a.mp4")


def test_roots_with_the_same_name_get_distinct_output_folders(tmp_path):
    touch(tmp_path / "disk1" / "videos" / "a.mp4")
    touch(tmp_path / "disk2" / "videos" / "a.mp4")
    found = discover([str(tmp_path / "disk1" / "videos"), str(tmp_path / "disk2" / "videos")])
    outs = [v.out_rel for v in found.videos]
    assert len(set(outs)) == 2 and all(o.startswith("videos-") and o.endswith("/a.mp4") for o in outs)


def test_output_folder_inside_a_root_is_not_searched(tmp_path):
    touch(tmp_path / "root" / "a.mp4")
    touch(tmp_path / "root" / "out" / "root" / "a.mp4" / "old.mp4")
    found = discover([str(tmp_path / "root")], exclude=str(tmp_path / "root" / "out"))
    assert [v.rel for v in found.videos] == ["a.mp4"]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.write_text("x"), "is neither a folder nor a video file"),
    ],
)
def test_bad_roots_say_why(tmp_path, make, message):
    target = tmp_path / "r"
    make(target)
    with pytest.raises(DiscoveryError, match=message):
        discover([str(target)])


def test_kernel_filesystems_are_not_walked(tmp_path):
    """/proc as a root must not walk the whole machine through every process's cwd link."""
    with pytest.raises(DiscoveryError, match=r"^root '/proc' is on the kernel's proc filesystem"):
        discover(["/proc"])
    root = tmp_path / "root"
    touch(root / "a.mp4")
    os.symlink("/proc/self", root / "self")  # a link into /proc inside a root
    found = discover([str(root)])
    assert [v.rel for v in found.videos] == ["a.mp4"]
    assert found.problems == [(str(root / "self"), "leads into the kernel's proc filesystem; not followed")]


def test_each_video_carries_its_resolved_path_and_identity(tmp_path):
    """What the task will open and check (source.open_video): the file, not the link to it."""
    touch(tmp_path / "elsewhere" / "real.mp4")
    touch(tmp_path / "root" / "b.mp4")
    os.symlink(tmp_path / "elsewhere" / "real.mp4", tmp_path / "alias.mp4")
    os.makedirs(tmp_path / "root" / "sub")
    os.symlink(tmp_path / "alias.mp4", tmp_path / "root" / "sub" / "a.mp4")
    found = discover([str(tmp_path / "root")])
    by_rel = {v.rel: v for v in found.videos}
    st = os.stat(tmp_path / "elsewhere" / "real.mp4")
    assert by_rel["sub/a.mp4"].real == str(tmp_path / "elsewhere" / "real.mp4")
    assert (by_rel["sub/a.mp4"].ident.ino, by_rel["sub/a.mp4"].ident.size) == (st.st_ino, 1)
    assert by_rel["b.mp4"].real == str(tmp_path / "root" / "b.mp4")

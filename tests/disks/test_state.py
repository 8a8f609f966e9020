"""The disks' state files: names made from any label, files read whatever is in the folder,
and written atomically without going through a link."""

from __future__ import annotations

import json
import os
import stat

import pytest

from snhoo_dask.disks.state import (
    MAX_NAME,
    STATE_DIR,
    DiskState,
    disk_of,
    read_states,
    safe_host,
    safe_name,
    write_state,
)
from snhoo_dask.fs.fsafe import UnsafePath

UUID = "5E3A-1B2C"


def one_component(name: str) -> None:
    """What every safe name must be: a single visible path component, short enough."""
    assert name and "/" not in name and "\n" not in name and "\0" not in name
    assert not name.startswith(".") and name not in (".", "..")
    assert len(name.encode("utf-8")) <= MAX_NAME
    assert safe_name(name, UUID) == name  # stable: a safe name is its own safe name


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("SNHOO_rec", "SNHOO_rec"),
        ("a/b", "a_b"),
        ("..", "disk-5e3a1b2c"),
        ("../../etc", "etc"),
        ("my disk 2", "my_disk_2"),
        ("录像 2026", "录像_2026"),
        ("line\nbreak", "line_break"),
        ("\u202eevil", "evil"),  # a right-to-left override is not kept
        ("．．／etc", "etc"),  # full-width dots and slash are dots and a slash
        ("", "disk-5e3a1b2c"),
        (None, "disk-5e3a1b2c"),
        ("-.-", "disk-5e3a1b2c"),
    ],
)
def test_a_label_becomes_one_safe_component(label, expected):
    name = safe_name(label, UUID)
    assert name == expected
    one_component(name)


def test_long_labels_fit_in_bytes_not_only_in_characters():
    name = safe_name("录" * 100, UUID)
    one_component(name)
    assert set(name) == {"录"}
    second = safe_name("录" * 100, UUID, taken={name})
    one_component(second)
    assert second.endswith("-5e3a1b2c") and second != name


def test_two_disks_with_one_label_get_distinct_names():
    first = safe_name("DATA", UUID)
    second = safe_name("DATA", "0000-1111", taken={first})
    assert (first, second) == ("DATA", "DATA-00001111")
    # The same UUID twice (a cloned disk): numbered.
    third = safe_name("DATA", "0000-1111", taken={first, second})
    fourth = safe_name("DATA", "0000-1111", taken={first, second, third})
    assert (third, fourth) == ("DATA-00001111-2", "DATA-00001111-3")
    # No label and no UUID at all.
    assert safe_name(None, None) == "disk"
    assert safe_name(None, None, taken={"disk"}) == "disk-2"


def test_host_names_are_safe_too():
    assert safe_host("store1") == "store1"
    assert safe_host("../x") == "x"
    assert safe_host("..") == "host"


def state(base: str, host: str = "store1", name: str = "DATA", **kw) -> DiskState:
    values = dict(
        host=host,
        address="192.0.2.10",
        name=name,
        label=name,
        uuid=UUID,
        fstype="ext4",
        device="/dev/sdb1",
        mountpoint=os.path.join(base, host, name),
        state="plugged",
        since="2026-12-07T16:00:00Z",
        size_bytes=1000,
    )
    values.update(kw)
    return DiskState(**values)


def test_written_states_read_back(tmp_path):
    base = str(tmp_path)
    plugged = state(base, label="录像 ../x", name=safe_name("录像 ../x", UUID))
    gone = state(base, host="store2", name="OLD", state="unplugged", reason="the device went away")
    listed = state(base, host="store1", name="rec", mountpoint=os.path.join(base, "rec"))
    path = write_state(os.path.join(base, "store1", STATE_DIR), plugged)
    write_state(os.path.join(base, "store2", STATE_DIR), gone)
    write_state(os.path.join(base, STATE_DIR), listed)
    assert path == os.path.join(base, "store1", STATE_DIR, "录像_x.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o755
    data = json.loads(open(path, encoding="utf-8").read())
    assert data["version"] == 1 and data["label"] == "录像 ../x" and data["reason"] is None
    assert sorted(data) == sorted(
        "version host address name label uuid fstype device mountpoint state reason since size_bytes".split()
    )
    assert read_states(base) == [listed, plugged, gone]
    # Overwritten in place: one file per name, no temporary left behind.
    write_state(os.path.join(base, "store1", STATE_DIR), plugged.__class__(**{**data, "state": "ejected"}))
    assert os.listdir(os.path.dirname(path)) == ["录像_x.json"]
    assert [s.state for s in read_states(base)] == ["plugged", "ejected", "unplugged"]


def test_the_environment_names_the_base(tmp_path, monkeypatch):
    s = state(str(tmp_path))
    write_state(os.path.join(str(tmp_path), "store1", STATE_DIR), s)
    monkeypatch.setenv("SNHOO_DISKS_BASE", str(tmp_path))
    assert read_states() == [s]


GARBAGE = {
    "not-json.json": b"{",
    "binary.json": b"\xff\xfe\x00",
    "list.json": b"[1, 2]",
    "deep.json": b"[" * 100000,
    "huge.json": b" " * (65 * 1024) + b"{}",
}


def test_garbage_in_the_state_folder_is_skipped(tmp_path):
    base = str(tmp_path)
    folder = tmp_path / "store1" / STATE_DIR
    good = state(base)
    write_state(str(folder), good)
    valid = json.loads((folder / "DATA.json").read_text())
    for name, content in GARBAGE.items():
        (folder / name).write_bytes(content)
    broken = {
        "version2.json": {**valid, "version": 2},
        "nohost.json": {k: v for k, v in valid.items() if k != "host"},
        "size.json": {**valid, "size_bytes": "big"},
        "negative.json": {**valid, "size_bytes": -1},
        "bool.json": {**valid, "size_bytes": True},
        "weird-state.json": {**valid, "state": "exploded"},
        "label.json": {**valid, "label": 7},
        # A file whose name is not its disk's: a renamed copy claiming another name.
        "OTHER.json": valid,
        # A mount point outside the base would claim paths that are not on any disk.
        "outside.json": {**valid, "name": "outside", "mountpoint": "/"},
        "dotdot.json": {**valid, "name": "dotdot", "mountpoint": base + "/store1/../../etc"},
    }
    for name, content in broken.items():
        (folder / name).write_text(json.dumps(content))
    (folder / "adir.json").mkdir()
    os.mkfifo(folder / "fifo.json")  # a reader must not wait on it
    os.symlink(folder / "DATA.json", folder / "link.json")
    (tmp_path / "a-file-at-the-top").write_text("x")
    assert read_states(base) == [good]


def test_a_state_folder_that_is_a_link_is_not_read(tmp_path):
    base = tmp_path / "base"
    elsewhere = tmp_path / "elsewhere"
    write_state(str(elsewhere / STATE_DIR), state(str(base)))
    (base / "store1").mkdir(parents=True)
    os.symlink(elsewhere / STATE_DIR, base / "store1" / STATE_DIR)
    os.symlink(elsewhere, base / "store2")
    assert read_states(str(base)) == []
    assert read_states(str(tmp_path / "missing")) == []


def test_no_write_through_a_link(tmp_path):
    base = str(tmp_path / "base")
    target = tmp_path / "target.json"
    target.write_text("precious")
    folder = tmp_path / "base" / "store1" / STATE_DIR
    folder.mkdir(parents=True)
    os.symlink(target, folder / "DATA.json")
    with pytest.raises(UnsafePath):
        write_state(str(folder), state(base))
    assert target.read_text() == "precious"
    assert os.path.islink(folder / "DATA.json")
    assert sorted(os.listdir(folder)) == ["DATA.json"]  # no temporary left behind

    # A link on the way to the folder is refused too, and nothing is created beyond it.
    other = tmp_path / "other"
    other.mkdir()
    os.symlink(other, tmp_path / "base" / "store2")
    with pytest.raises(UnsafePath):
        write_state(str(tmp_path / "base" / "store2" / STATE_DIR), state(base, host="store2"))
    assert os.listdir(other) == []


def test_an_unsafe_name_is_never_written(tmp_path):
    base = str(tmp_path)
    for name in ("../escape", "a/b", ".hidden", "x\ny"):
        with pytest.raises(UnsafePath):
            write_state(str(tmp_path / STATE_DIR), state(base, name=name))
    assert not (tmp_path / "escape.json").exists()
    assert not (tmp_path / STATE_DIR).exists()  # refused before anything is made


def test_disk_of_finds_the_disk_a_path_is_on(tmp_path):
    base = str(tmp_path)
    a = state(base, name="A")
    a2 = state(base, name="A2")
    b = state(base, host="store2", name="A", state="unplugged")
    listed = state(base, name="rec", mountpoint=os.path.join(base, "rec"))
    for s in (a, a2):
        write_state(os.path.join(base, "store1", STATE_DIR), s)
    write_state(os.path.join(base, "store2", STATE_DIR), b)
    write_state(os.path.join(base, STATE_DIR), listed)
    assert disk_of(os.path.join(base, "store1", "A", "cam", "x.mp4"), base) == a
    assert disk_of(os.path.join(base, "store1", "A2", "x.mp4"), base) == a2  # not A's prefix
    assert disk_of(os.path.join(base, "store1", "A"), base) == a
    assert disk_of(os.path.join(base, "store2", "A", "x.mp4"), base) == b
    assert disk_of(os.path.join(base, "rec", "x.mp4"), base) == listed
    assert disk_of(os.path.join(base, "store1", "A", "..", "A2", "x.mp4"), base) == a2
    assert disk_of(os.path.join(base, "store1", "other.mp4"), base) is None
    assert disk_of("/elsewhere/x.mp4", base) is None
    states = read_states(base)
    assert disk_of(os.path.join(base, "store1", "A", "x.mp4"), states=states) == a

"""--pack shards' sizes and sample keys: what a user types for --shard-size, and keys that
WebDataset groups as one sample each (no dot, no slash), the same on every rerun."""

from __future__ import annotations

import pytest
from helpers import run_cli

from snhoo_dask.output.shards import parse_size, sample_key


@pytest.mark.parametrize(
    "text, size",
    [("500MB", 500 * 1000**2), ("2GB", 2 * 1000**3), ("1.5GiB", 3 * 1024**3 // 2), ("40KB", 40_000)],
)
def test_sizes_read_as_people_write_them(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "5XB", "-1GB", "10", "2PB"])
def test_sizes_that_are_not_one_are_refused(text):
    with pytest.raises(ValueError):
        parse_size(text)


def test_a_bad_shard_size_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "root").mkdir()
    res = run_cli(
        "run",
        str(tmp_path / "root"),
        "--out",
        str(tmp_path / "out"),
        "--pack",
        "shards",
        "--shard-size",
        "lots",
    )
    assert res.returncode == 2, res.stderr
    assert (
        res.stderr.strip()
        .splitlines()[-1]
        .endswith("--shard-size must be a size such as 500MB, 2GB or 1.5GiB")
    )
    assert "Traceback" not in res.stderr


def test_keys_are_unique_stable_and_safe_for_webdataset():
    keys = {
        sample_key(root, rel, i)
        for root in ("cam", "cam2")
        for rel in ("a.mp4", "x/a.mp4", "a.b.c.mp4", "a b.mp4")
        for i in (0, 7)
    }
    assert len(keys) == 16
    assert all("." not in k and "/" not in k for k in keys)
    assert sample_key("cam", "x/a.mp4", 7) == sample_key("cam", "x/a.mp4", 7)
    assert sample_key("cam", "x/a.mp4", 7) != sample_key("cam", "y/a.mp4", 7)  # same file name, other folder

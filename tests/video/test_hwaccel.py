"""GPU decoding (``video/hwaccel.py``): chosen per worker, and a video the GPU fails is
decoded again on the CPU with the reason in its record.

This machine has no GPU, so what runs here is what matters on one without: ``auto`` never
tries the GPU, and ``--hwaccel cuda`` meets ffmpeg's real failure ("Cannot load
libcuda.so.1") on every video, whole, cut into pieces or thinned, and still gives the CPU's
images.  The GPU's own decode is checked by the last test, which only runs where
``hwaccel.gpu_present()`` finds an NVIDIA driver.
"""

from __future__ import annotations

import os

import pytest
from helpers import records_by_video, run_cli, tree
from videos import X264_GOP_25, encode

from snhoo_dask.video.hwaccel import gpu_present

no_gpu = pytest.mark.skipif(gpu_present(), reason="this machine has a GPU: the CPU-only cases do not apply")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    base = tmp_path_factory.mktemp("hw") / "videos"
    os.makedirs(base)
    for name, seconds in (("long.mp4", 12), ("short.mp4", 2)):
        encode(base / name, *X264_GOP_25, seconds=seconds)
    return str(base)


def run(root: str, out, hwaccel: str, *selection: str) -> tuple[dict, dict]:
    """(the output tree, records by video) of one run; the run must succeed."""
    r = run_cli(
        "run", root, "--out", str(out), "--workers", "2", "-q", "--split-seconds", "2",
        "--hwaccel", hwaccel, *selection,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return tree(out), records_by_video(out)


@no_gpu
def test_auto_decodes_on_the_cpu_where_there_is_no_gpu(root, tmp_path):
    _, records = run(root, tmp_path / "auto", "auto", "--every", "5")
    assert {v: r["decoder"] for v, r in records.items()} == {"long.mp4": "cpu", "short.mp4": "cpu"}


@pytest.mark.slow
@no_gpu
def test_a_failure_that_is_not_the_decoders_is_not_retried(root, tmp_path):
    """No frame asked for exists.  Frames are counted by decoding (the plain path: the
    packets are only a fast path's plan), so here without a GPU the CUDA decode fails first
    and the CPU's answer, that none exist, is the video's: it is not retried again."""
    out = tmp_path / "none-exist"
    r = run_cli(
        "run", root, "--out", str(out), "--workers", "1", "-q", "--hwaccel", "cuda", "--frames", "5000"
    )
    assert r.returncode != 0
    records = records_by_video(out)
    assert {r["status"] for r in records.values()} == {"failed"}
    for rec in records.values():
        assert rec["decoder"].startswith("cpu (cuda failed: "), rec["decoder"]
        assert rec["error"].startswith("none of the requested frames exist"), rec["error"]
        assert rec["path"].startswith("plain (none of the requested frames"), rec["path"]


@pytest.mark.slow
@no_gpu
@pytest.mark.parametrize("selection", [["--every", "5"], ["--frames", "3,40,77"]], ids=["every 5", "frames"])
def test_a_failing_gpu_falls_back_to_the_cpu_with_the_reason(root, tmp_path, selection):
    cpu_tree, cpu_records = run(root, tmp_path / "none", "none", *selection)
    gpu_tree, gpu_records = run(root, tmp_path / "cuda", "cuda", *selection)
    assert gpu_tree == cpu_tree and len(cpu_tree) >= 7  # every image the same bytes
    assert {r["status"] for r in gpu_records.values()} == {"ok"}
    for video, rec in gpu_records.items():
        assert cpu_records[video]["decoder"] == "cpu"
        # ffmpeg's own words for the missing driver, after the fallback's.
        assert rec["decoder"].startswith("cpu (cuda failed: "), rec["decoder"]
        assert "cuda" in rec["decoder"][len("cpu (cuda failed: ") :].lower(), rec["decoder"]
    if selection[0] == "--every":
        assert gpu_records["long.mp4"]["pieces"] > 1  # the pieces fell back, each on its own


@pytest.mark.slow
@pytest.mark.skipif(not gpu_present(), reason="needs an NVIDIA GPU and an ffmpeg built with CUDA")
def test_the_gpu_decodes_the_images_of_the_cpu(root, tmp_path):
    cpu_tree, _ = run(root, tmp_path / "none", "none", "--every", "5")
    gpu_tree, records = run(root, tmp_path / "cuda", "cuda", "--every", "5")
    assert {r["decoder"] for r in records.values()} == {"cuda"}
    assert gpu_tree == cpu_tree

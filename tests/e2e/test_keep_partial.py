"""--keep-partial: a video cut short keeps the frames it decoded, honestly marked ``partial``.

Real cut-off files (a faststart MP4 and a Matroska file cut part-way), the real CLI on real
Dask processes, and plain ffmpeg as the oracle of what those frames are."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import frames_csv, image_names, manifest, records_by_video, run_on
from partial_videos import cut_videos, plain_ffmpeg_frames
from PIL import Image

pytestmark = [pytest.mark.slow, pytest.mark.cluster]


def test_keep_partial_keeps_the_decoded_frames_as_partial(shared_cluster, tmp_path):
    root = tmp_path / "cam"
    cut_videos(root)
    out = tmp_path / "out"
    res = run_on(shared_cluster, str(root), "-o", str(out), "--keep-partial", "--format", "png", "--json")
    # Not a clean success: some videos are not whole.
    assert res.returncode == 1, res.stderr
    summary = json.loads(res.stdout)
    assert summary["videos"] == {"total": 3, "ok": 1, "skipped": 0, "failed": 0, "partial": 2}
    assert "2 of 3 videos partial" in summary["message"]
    recs = records_by_video(out)
    assert recs["whole.mp4"]["status"] == "ok"
    for name in ("cut.mp4", "cut.mkv"):
        rec = recs[name]
        assert rec["status"] == "partial", rec
        assert rec["error"].startswith("truncated: decoded "), rec["error"]
        oracle = plain_ffmpeg_frames(root / name)
        # The frames the file holds, every one, each the picture plain ffmpeg decodes there.
        assert 0 < len(oracle) < 100
        folder = out / "cam" / name
        assert image_names(folder) == [f"{k:06d}.png" for k in range(len(oracle))]
        assert [int(r["frame"]) for r in frames_csv(folder)] == list(range(len(oracle)))
        for k, expected in enumerate(oracle):
            with Image.open(folder / f"{k:06d}.png") as im:
                assert np.array_equal(np.asarray(im.convert("RGB")), expected), (name, k)
        assert rec["frames"] == len(oracle)
        assert rec["reached_frames"] == len(oracle)
        assert rec["reached_seconds"] == pytest.approx(len(oracle) / 25, abs=0.001)
        assert f"decoded {len(oracle)} frames, {len(oracle) / 25:.3f} s of the 4 s" in rec["error"]
    # The report counts them on their own.
    report = (out / "report.html").read_text()
    assert 'id="partial-count"><b>2</b>partial' in report

    # A rerun tries a partial video again (its file may be whole by now), never skips it.
    again = run_on(shared_cluster, str(root), "-o", str(out), "--keep-partial", "--format", "png", "--json")
    assert json.loads(again.stdout)["videos"] == {
        "total": 3,
        "ok": 0,
        "skipped": 1,
        "failed": 0,
        "partial": 2,
    }


def test_without_keep_partial_a_cut_video_fails_and_writes_nothing(shared_cluster, tmp_path):
    root = tmp_path / "cam"
    cut_videos(root)
    out = tmp_path / "out"
    res = run_on(shared_cluster, str(root), "-o", str(out), "--format", "png", "--json")
    assert res.returncode == 1
    assert json.loads(res.stdout)["videos"] == {"total": 3, "ok": 1, "skipped": 0, "failed": 2, "partial": 0}
    for name in ("cut.mp4", "cut.mkv"):
        rec = next(r for r in manifest(out) if r["video"] == name)
        assert rec["status"] == "failed" and rec["error"].startswith("truncated: decoded ")
        assert not (out / "cam" / name).exists()

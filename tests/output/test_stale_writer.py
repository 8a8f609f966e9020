"""A task of an earlier run still writing into its temporary folder in OUT/.snhoo-tmp while a
new run takes OUT: the new run's sweep renames that folder away, and the stale task must stop
at its next image instead of filling the swept folder after the new run has ended (exit 0
with hundreds of images left in .snhoo-tmp).  The stale task is a real process writing
through the same sink a worker uses; the new run is ``snhoo-dask run`` on its embedded
cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import run_cli
from videos import make_video

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

# A worker of an earlier run: its folder made as a task makes it, then one image after another
# until its writes are refused (or MAX_IMAGES).  It tells when it has started.
STALE_TASK = r"""
import json, sys
from snhoo_dask.output.folder import OutputDir, TmpDir
from snhoo_dask.output.formats import FolderSink, FrameRow

out = OutputDir(sys.argv[1])
sink = FolderSink(TmpDir(out))
written, error = 0, None
print("started", flush=True)
try:
    while written < int(sys.argv[2]):
        name = f"{written:06d}.jpg"
        sink.add(name, b"x" * 2048, FrameRow(written, written / 25, name, 8, 8))
        written += 1
except Exception as e:
    error = f"{type(e).__name__}: {e}"
print(json.dumps({"written": written, "error": error}), flush=True)
"""
MAX_IMAGES = 100_000


def test_a_stale_task_stops_writing_once_a_new_run_sweeps_its_folder(tmp_path):
    make_video(str(tmp_path / "v" / "a.mp4"), seconds=2)
    out = tmp_path / "o"
    run = ["run", str(tmp_path / "v"), "--out", str(out), "--every", "10", "--workers", "1"]
    assert run_cli(*run).returncode == 0  # the earlier run, whose task is left behind
    stale = subprocess.Popen(
        [sys.executable, "-c", STALE_TASK, str(out), str(MAX_IMAGES)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert stale.stdout.readline().strip() == "started"
        res = run_cli(*run)
        assert res.returncode == 0, res.stderr
        told = json.loads(stale.communicate(timeout=60)[0])
    finally:
        if stale.poll() is None:
            stale.kill()
            stale.wait()
    # Nothing of it is left once the new run has ended.
    left = os.listdir(out / ".snhoo-tmp") if (out / ".snhoo-tmp").exists() else []
    assert left == [], (left, sum(len(os.listdir(out / ".snhoo-tmp" / d)) for d in left), told)
    # The stale task was stopped by the sweep, not by running out of images to write.
    assert told["written"] < MAX_IMAGES and "swept" in (told["error"] or ""), told
    assert "000000.jpg" in os.listdir(out / "v" / "a.mp4")

"""A skipped video's record is the record of the run that made its output, whole.

A rerun skips a finished video; its manifest line must still say what that output is
(which path made it, what was never decoded, which decoder, what ffmpeg warned about),
not only the dozen fields someone once listed.
"""

from __future__ import annotations

import pytest
from helpers import manifest, run_cli
from videos import make_video

from snhoo_dask.model import THIS_RUN, VideoRecord

pytestmark = pytest.mark.slow


def test_a_skipped_record_keeps_every_field_of_the_run_that_made_the_output(tmp_path):
    make_video(tmp_path / "in" / "a.mp4", seconds=4, fps=25, gop=25)
    out = tmp_path / "out"
    args = ("run", str(tmp_path / "in"), "--out", str(out), "--every", "10", "-q", "--workers", "1")
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    second = run_cli(*args)
    assert second.returncode == 0, second.stderr
    done, skipped = manifest(out)
    assert (done["status"], skipped["status"]) == ("ok", "skipped")
    assert done["undecoded"] > 0 and done["path"] and done["decoder"]  # a thinned run: worth keeping
    assert skipped["run"] != done["run"]
    kept = {k for k in done if k not in THIS_RUN}
    assert {k: skipped.get(k) for k in kept} == {k: done[k] for k in kept}


def test_every_record_field_is_either_this_runs_or_carried_over():
    """A field named in THIS_RUN that the record does not have would silently carry nothing."""
    assert THIS_RUN <= set(VideoRecord.__dataclass_fields__)

"""scikit-video 1.1.11 on current NumPy: broken without our shim, working with it."""

import subprocess
import sys

import numpy as np
import pytest
from videos import make_video

READ = """
import sys
{prelude}
import skvideo.io
n = sum(1 for _ in skvideo.io.vreader(sys.argv[1]))
print(n)
"""


@pytest.mark.skipif(
    tuple(int(x) for x in np.__version__.split(".")[:2]) < (1, 24),
    reason="NumPy before 1.24 still has np.float/np.int",
)
def test_scikit_video_needs_the_shim_on_this_numpy(tmp_path):
    video = make_video(tmp_path / "v.mp4", seconds=1, fps=10)
    bare = subprocess.run(
        [sys.executable, "-c", READ.format(prelude=""), video], capture_output=True, text=True
    )
    assert bare.returncode != 0
    assert "has no attribute 'float'" in bare.stderr or "has no attribute 'int'" in bare.stderr

    shimmed = subprocess.run(
        [sys.executable, "-c", READ.format(prelude="import snhoo_dask.video.skvideo_compat"), video],
        capture_output=True,
        text=True,
    )
    assert shimmed.returncode == 0, shimmed.stderr
    assert shimmed.stdout.strip() == "10"

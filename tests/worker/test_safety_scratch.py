"""The scratch folder of staged videos is shared ground (/tmp): nothing in it decides what is decoded.

Real CLI on its embedded cluster (tasks run in its threads), real ffmpeg, a task held right
after its copy to scratch (``SNHOO_PAUSE_DIR``) while the test swaps the copy's private
folder for a link to a folder holding another video, as another local user racing the
worker would; and scratch bases made by someone else.
"""

from __future__ import annotations

import os
import stat

import pytest
from helpers import cli_popen, image_names, manifest, run_cli, wait_until
from videos import ffmpeg, frame_number, make_video

pytestmark = pytest.mark.slow


def run_staged(tmp_path, scratch, *options: str, env: dict | None = None):
    return cli_popen(
        "run", str(tmp_path / "cam"), "--out", str(tmp_path / "out"), "--workers", "1", "--stage",
        "--scratch", str(scratch), "--dashboard-address", "127.0.0.1:0", "-q", *options,
        env=env,
    )  # fmt: skip


@pytest.mark.timeout(180)
def test_a_staged_copy_swapped_for_a_link_after_the_copy_is_not_what_is_decoded(tmp_path):
    make_video(tmp_path / "cam" / "a.mp4", seconds=2)
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    # Another video of the same size and rate, every frame white: a frame of it is unmistakable.
    ffmpeg("-f", "lavfi", "-i", "color=c=white:s=64x48:r=25", "-t", "2", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           str(decoy / "video.mp4"))  # fmt: skip
    scratch, pause = tmp_path / "scratch", tmp_path / "pause"
    pause.mkdir()
    (pause / "staged.hold").touch()
    proc = run_staged(tmp_path, scratch, env=dict(os.environ, SNHOO_PAUSE_DIR=str(pause)))
    try:
        wait_until(
            lambda: (pause / "staged.waiting").exists() or proc.poll() is not None, 90, "the task to be held"
        )
        assert proc.poll() is None, proc.communicate()
        (private,) = os.listdir(scratch)
        os.rename(scratch / private, tmp_path / "moved")
        os.symlink(decoy, scratch / private)
        (pause / "staged.go").touch()
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()  # the run this test started
            proc.communicate()
    (rec,) = manifest(tmp_path / "out")
    assert proc.returncode == 0 and rec["status"] == "ok" and rec["staged"] is True, (err, rec)
    folder = tmp_path / "out" / "cam" / "a.mp4"
    names = image_names(folder)
    assert len(names) == 50
    assert [frame_number(folder / n) for n in names] == list(range(50))  # the original's frames
    assert (decoy / "video.mp4").exists() and os.path.islink(scratch / private)  # nothing deleted through it


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    ("owner", "mode", "reason"),
    [
        (65534, 0o1777, "it belongs to uid 65534, not to this worker's user (uid 0)"),
        (0, 0o755, "its mode is 0755, not 0700"),
        ("link", 0, "it is a symbolic link or not a folder"),
    ],
    ids=["another-users", "open-to-others", "a-link"],
)
def test_a_scratch_base_that_is_not_a_private_folder_of_ours_fails_the_video(tmp_path, owner, mode, reason):
    make_video(tmp_path / "cam" / "a.mp4", seconds=1)
    scratch = tmp_path / "scratch"
    if owner == "link":
        (tmp_path / "elsewhere").mkdir()
        os.symlink(tmp_path / "elsewhere", scratch)
    else:
        scratch.mkdir()
        os.chown(scratch, owner, owner)
        os.chmod(scratch, mode)
    result = run_cli(
        "run", str(tmp_path / "cam"), "--out", str(tmp_path / "out"), "--workers", "1", "--stage",
        "--scratch", str(scratch), "--dashboard-address", "127.0.0.1:0", "-q", timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    (rec,) = manifest(tmp_path / "out")
    assert rec["status"] == "failed" and rec["frames"] == 0
    assert rec["error"].startswith(f"could not copy the video to local scratch {scratch}: {reason}"), rec
    assert "remove it, or make it a folder of this user's with mode 0700" in rec["error"]
    assert not (tmp_path / "out" / "cam" / "a.mp4").exists()
    assert os.listdir(tmp_path / "elsewhere" if owner == "link" else scratch) == []


@pytest.mark.timeout(180)
def test_a_missing_scratch_base_is_made_private(tmp_path):
    make_video(tmp_path / "cam" / "a.mp4", seconds=1)
    scratch = tmp_path / "new" / "scratch"
    (tmp_path / "new").mkdir()
    old = os.umask(0o022)
    try:
        result = run_cli(
            "run", str(tmp_path / "cam"), "--out", str(tmp_path / "out"), "--workers", "1", "--stage",
            "--scratch", str(scratch), "--dashboard-address", "127.0.0.1:0", "-q", timeout=120,
        )  # fmt: skip
    finally:
        os.umask(old)
    assert result.returncode == 0, result.stderr
    st = os.stat(scratch)
    assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.geteuid()
    assert os.listdir(scratch) == []

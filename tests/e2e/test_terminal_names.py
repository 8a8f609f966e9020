"""Names from the disk reach the terminal escaped (``ls -b`` style), never as they are.

Real CLI on real files whose names hold an OSC 52 clipboard write, a clear-screen sequence,
``\\r`` and a newline; the dry run lists them, and the failure table names a broken one.
"""

from __future__ import annotations

import pytest
from helpers import run_cli
from videos import make_video

pytestmark = pytest.mark.slow

CLIPBOARD = "a\x1b]52;c;aGk=\x07\r\nb.mp4"
CLEAR = "\x1b[2J\x1b[Hbad.mp4"


def no_controls(text: str) -> None:
    for c in ("\x1b", "\x07", "\r"):
        assert c not in text, repr(text)


def test_dry_run_and_the_failure_table_escape_names(tmp_path):
    root = tmp_path / "cam"
    make_video(root / CLIPBOARD, seconds=1)
    (root / CLEAR).write_bytes(b"")  # empty: failed, so it is in the failure table
    out = str(tmp_path / "out")
    dry = run_cli("run", str(root), "--out", out, "--dry-run", timeout=60)
    assert dry.returncode == 0, dry.stderr
    no_controls(dry.stdout + dry.stderr)
    assert f"{root}/a\\x1b]52;c;aGk=\\x07\\r\\nb.mp4\t-> " in dry.stdout
    assert len(dry.stdout.splitlines()) == 2  # one line per video: the newline did not split one
    run = run_cli("run", str(root), "--out", out, "--workers", "1", "--dashboard-address", "127.0.0.1:0",
                  timeout=120)  # fmt: skip
    assert run.returncode == 1, run.stderr
    no_controls(run.stdout + run.stderr)
    assert f"{root}/\\x1b[2J\\x1b[Hbad.mp4" in run.stderr, run.stderr

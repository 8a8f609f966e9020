"""An integer option of over 4,300 digits (Python's int limit) is one short line, not Click's
error echoing the whole number."""

from __future__ import annotations

import pytest
from helpers import run_cli

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("option", ["--every", "--max-side", "--timeout"])
def test_a_huge_number_is_one_line_that_does_not_echo_it(tmp_path, option):
    proc = run_cli("run", str(tmp_path), "--out", str(tmp_path / "o"), option, "9" * 5000, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr == f"snhoo-dask: error: {option}: a number of 5000 characters is not one it can take\n"

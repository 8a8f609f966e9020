"""The loop-device lab every disk test runs in (``test_hotplug.Lab``): its mounts, loop
devices and processes are undone after each test."""

from __future__ import annotations

import pytest
from test_hotplug import Lab


@pytest.fixture
def lab(tmp_path):
    lab = Lab(tmp_path)
    try:
        yield lab
    finally:
        lab.close()

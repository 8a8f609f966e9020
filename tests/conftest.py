"""Shared fixtures: real Dask scheduler/worker processes for a test or a module."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from helpers import DaskProcesses, start_dask  # noqa: E402


def pytest_collection_modifyitems(items):
    # Starting Dask processes or containers takes seconds, so a `cluster` test is a slow one
    # wherever it lives: `pytest -m "not slow"` stays the quick loop without every module
    # having to say so twice.
    for item in items:
        if item.get_closest_marker("cluster") and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def dask_cluster(tmp_path) -> Iterator[DaskProcesses]:
    procs = start_dask(str(tmp_path))
    try:
        yield procs
    finally:
        procs.stop()


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory) -> Iterator[DaskProcesses]:
    """One scheduler + two workers for a whole test module (starting them costs seconds)."""
    procs = start_dask(str(tmp_path_factory.mktemp("dask")))
    try:
        yield procs
    finally:
        procs.stop()

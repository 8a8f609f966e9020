"""Shared fixtures: real Dask scheduler/worker processes for a test or a module."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from helpers import DaskProcesses, start_dask  # noqa: E402


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

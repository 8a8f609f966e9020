"""Markers and paths for the Ansible tests."""

from __future__ import annotations

import os

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ANSIBLE_DIR = os.path.join(REPO, "ansible")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "cluster: starts real Dask scheduler/worker processes or containers",
    )

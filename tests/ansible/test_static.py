"""ansible-lint (production profile) and --syntax-check on every playbook."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from ansible_paths import ANSIBLE_DIR, REPO

PLAYBOOKS = ["site.yml", "detach-disk.yml"]


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: pip install -r ansible/requirements.txt")
    return path


def test_ansible_lint_production_profile():
    proc = subprocess.run(
        [_tool("ansible-lint"), "--profile", "production", "--nocolor"],
        cwd=ANSIBLE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_syntax_check(playbook):
    proc = subprocess.run(
        [_tool("ansible-playbook"), "--syntax-check", playbook, "-e", "disk=x"],
        cwd=ANSIBLE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_example_inventory_has_the_three_groups():
    proc = subprocess.run(
        [_tool("ansible-inventory"), "-i", os.path.join(REPO, "inventory.ini"), "--list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    for group in ("storage", "scheduler", "workers"):
        assert f'"{group}"' in proc.stdout


def test_only_the_test_inventory_turns_nfs_simulation_on():
    """snhoo_nfs_simulate must never be on in anything a lab would run."""
    offenders = []
    for root, _dirs, files in os.walk(ANSIBLE_DIR):
        for name in files:
            with open(os.path.join(root, name), encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    if (
                        "snhoo_nfs_simulate" in line
                        and "true" in line.lower()
                        and not line.lstrip().startswith("#")
                    ):
                        offenders.append(os.path.join(root, name))
    with open(os.path.join(REPO, "inventory.ini"), encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("snhoo_nfs_simulate") and "true" in line.lower():
                offenders.append("inventory.ini")
    assert not offenders

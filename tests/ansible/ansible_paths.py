"""Paths the Ansible tests share (a plain module: two conftest.py files cannot both be imported)."""

import os

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ANSIBLE_DIR = os.path.join(REPO, "ansible")

#!/usr/bin/env bash
# One command from a fresh machine: install everything the tests need, then run them all.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export PATH="$(pwd)/.venv/bin:$PATH"
# Docker engine for the Ansible container test (starts dockerd if it is not running).
bash tests/ansible/setup_host.sh
# Lint gate first: a style or lint error fails the run before the slow tests start.
ruff check .
ruff format --check .
# Types: a wrong field on a record or a value used before its None check ([tool.mypy]).
mypy
exec python -m pytest tests "$@"

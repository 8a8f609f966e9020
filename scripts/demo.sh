#!/usr/bin/env bash
# One command from a fresh machine: install, make a sample corpus, run the job on the
# embedded local cluster (dashboard on http://127.0.0.1:8787 while it runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/snhoo-dask samples sample-videos
.venv/bin/snhoo-dask run sample-videos --out snhoo-output --fps 2 "$@"
echo "frames are in $(pwd)/snhoo-output, the record of each video in snhoo-output/manifest.jsonl"

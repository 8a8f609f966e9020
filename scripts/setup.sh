#!/usr/bin/env bash
# Install what snhoo-dask needs on a Debian/Ubuntu machine into ./.venv.
#   bash scripts/setup.sh          ffmpeg + the package
#   bash scripts/setup.sh --test   also the test tools (chromium, docker, debootstrap, ...)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=false
[ "${1:-}" = "--test" ] && want_test=true

packages=(ffmpeg)
# fonts-wqy-microhei: the browser tests' screenshots show Chinese folder names as text, not boxes.
$want_test && packages+=(chromium fonts-wqy-microhei docker.io debootstrap ntfs-3g e2fsprogs util-linux)

missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: please install these Debian packages first: ${missing[*]}" >&2
        exit 1
    fi
    echo "setup: installing ${missing[*]}" >&2
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
if $want_test; then
    .venv/bin/python -m pip install -q -e ".[test]"
else
    .venv/bin/python -m pip install -q -e .
fi
echo "setup: ready ($(.venv/bin/snhoo-dask --version))" >&2

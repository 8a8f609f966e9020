#!/bin/bash
# Prepare a Debian bookworm host (as root) for the Ansible tests: the tools
# the container cluster test needs, and a running Docker daemon.  Idempotent:
# CI calls it before every pytest run.
set -euo pipefail

PACKAGES=(docker.io debootstrap ntfs-3g e2fsprogs ffmpeg util-linux psmisc)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The playbooks' tools, pinned (see ansible/requirements.txt).
here=$(cd "$(dirname "$0")" && pwd)
python3 -m pip install --quiet -r "$here/../../ansible/requirements.txt"

if ! docker info >/dev/null 2>&1; then
    # No init system to ask in a CI container: start the daemon ourselves.
    nohup dockerd >/var/log/snhoo-dockerd.log 2>&1 &
    for _ in $(seq 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
fi
docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/snhoo-dockerd.log" >&2; exit 1; }
echo "host ready: docker $(docker version --format '{{.Server.Version}}')"

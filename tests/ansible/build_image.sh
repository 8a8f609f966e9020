#!/bin/bash
# Build (once) the Debian bookworm image with systemd as PID 1 used by the
# container cluster test.  No image registry is reachable here, so the root
# filesystem is made with debootstrap and imported; both the tarball and the
# image tag are cached so a rerun costs nothing.
#
# The Debian mirror is read at run time from the host's apt sources: no mirror
# host name is written in this repository.
set -euo pipefail

CACHE="${SNHOO_CACHE:-$HOME/.cache/snhoo-dask}"
# Bump when the package list changes so a stale cached image is not reused.
IMAGE_VERSION=3
IMAGE="${SNHOO_TEST_IMAGE:-snhoo-dask/bookworm-systemd:$IMAGE_VERSION}"
# Only what Ansible itself needs on a fresh node; everything the roles install
# (ffmpeg, ntfs-3g, nfs packages, ...) is deliberately left out so that the
# test proves the roles install it.
PACKAGES=systemd,systemd-sysv,dbus,python3,python3-venv,python3-apt,sudo,ca-certificates,procps,iproute2

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "image $IMAGE already built"
    exit 0
fi

mirror() {
    local f
    # deb822 sources first (bookworm default), then one-line sources.
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -e "$f" ] || continue
        awk '
            /^[[:space:]]*$/ { if (uri != "" && suite) { print uri; exit } uri=""; suite=0; next }
            /^URIs:/ { uri=$2 }
            /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm") suite=1 }
            END { if (uri != "" && suite) print uri }
        ' "$f" | head -n1
    done | head -n1
}
MIRROR="${SNHOO_DEBIAN_MIRROR:-$(mirror)}"
if [ -z "$MIRROR" ]; then
    MIRROR=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
fi
[ -n "$MIRROR" ] || { echo "no bookworm mirror found in apt sources" >&2; exit 1; }

mkdir -p "$CACHE"
TARBALL="$CACHE/bookworm-systemd-$IMAGE_VERSION.tar"
if [ ! -s "$TARBALL" ]; then
    ROOTFS=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    trap 'rm -rf "$ROOTFS"' EXIT
    debootstrap --variant=minbase --include="$PACKAGES" bookworm "$ROOTFS" "$MIRROR"
    # Services that make no sense (or hang) in a container.
    for unit in getty.target systemd-udevd.service systemd-udev-trigger.service \
                systemd-remount-fs.service systemd-firstboot.service \
                systemd-resolved.service apt-daily.timer apt-daily-upgrade.timer; do
        ln -sf /dev/null "$ROOTFS/etc/systemd/system/$unit"
    done
    : > "$ROOTFS/etc/machine-id"
    # No package lists and no apt cache: the first apt task on a node updates
    # them (a cached tarball may be older than the mirror's current lists).
    rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/cache/apt/*.bin \
           "$ROOTFS"/var/lib/apt/lists/*_Packages
    # Ansible's apt module judges the lists' age by this folder's mtime.
    touch -d @0 "$ROOTFS"/var/lib/apt/lists
    tar -C "$ROOTFS" -cf "$TARBALL.tmp" .
    mv "$TARBALL.tmp" "$TARBALL"
fi
docker import -c 'ENV container=docker' \
    -c 'CMD ["/sbin/init"]' "$TARBALL" "$IMAGE"
echo "built $IMAGE"

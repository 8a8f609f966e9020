#!/bin/bash
# Build (once) a Debian image with systemd as PID 1 for the container cluster
# test: `build_image.sh [SUITE]`, SUITE bookworm (default) or trixie, so the
# test lab can mix releases (Python 3.11 and 3.13) as a real lab does.  No image registry is reachable here, so the root
# filesystem is made with debootstrap and imported; both the tarball and the
# image tag are cached so a rerun costs nothing.
#
# The Debian mirror is read at run time from the host's apt sources: no mirror
# host name is written in this repository.
set -euo pipefail

SUITE="${1:-bookworm}"
CACHE="${SNHOO_CACHE:-$HOME/.cache/snhoo-dask}"
here=$(cd "$(dirname "$0")" && pwd)
roles="$here/../../ansible/roles"

# What Ansible itself needs on a fresh node ...
BASE_PACKAGES="systemd systemd-sysv dbus python3 python3-apt sudo ca-certificates procps iproute2"
# ... plus every Debian package the roles install, read from the roles' own
# vars so the list cannot drift.  A lab's machines come with a normal Debian
# already; baking these in keeps the test from downloading and unpacking the
# same ~250 packages three times.  The roles still declare them, and their apt
# tasks still run (and must report "ok").
ROLE_PACKAGES=$(python3 - "$roles" <<'PY'
import glob, sys, yaml
names = set()
for path in sorted(glob.glob(sys.argv[1] + "/*/vars/Debian.yml")):
    with open(path, encoding="utf-8") as fh:
        for key, value in (yaml.safe_load(fh) or {}).items():
            if key.endswith("_packages"):
                names.update(value)
print(" ".join(sorted(names)))
PY
)
PACKAGES=$(echo $BASE_PACKAGES $ROLE_PACKAGES | tr ' ' '\n' | sort -u | paste -sd, -)
# The tag names the content: a changed package list or a changed build recipe
# gives a new image, never a stale cached one.
DIGEST=$( { echo "$SUITE $PACKAGES"; cat "$0"; } | sha256sum | cut -c1-12)
IMAGE="snhoo-dask/$SUITE-systemd:$DIGEST"

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "image $IMAGE already built" >&2
    echo "$IMAGE"
    exit 0
fi

mirror() {
    local f
    # The host's Debian mirror (any mirror that serves bookworm serves trixie
    # too).  deb822 sources first (bookworm default), then one-line sources.
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
TARBALL="$CACHE/$SUITE-systemd-$DIGEST.tar"
if [ ! -s "$TARBALL" ]; then
    ROOTFS=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    trap 'rm -rf "$ROOTFS"' EXIT
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS" "$MIRROR" >&2
    # Services that make no sense (or hang) in a container.  The NFS daemons
    # too: this kernel has no NFS, the test inventory's snhoo_nfs_simulate
    # keeps the roles from starting them, and rpcbind would otherwise listen
    # on the host's network (the containers share it).
    for unit in getty.target systemd-udevd.service systemd-udev-trigger.service \
                systemd-remount-fs.service systemd-firstboot.service \
                systemd-resolved.service apt-daily.timer apt-daily-upgrade.timer \
                rpcbind.service rpcbind.socket nfs-server.service nfs-mountd.service \
                nfs-idmapd.service rpc-statd.service rpc-gssd.service \
                rpc-svcgssd.service nfs-blkmap.service; do
        ln -sf /dev/null "$ROOTFS/etc/systemd/system/$unit"
    done
    : > "$ROOTFS/etc/machine-id"
    # No downloaded .debs.  The package lists debootstrap fetched stay, dated
    # now: the roles' apt tasks (cache_valid_time one day) then need no
    # download on a fresh image, and do refresh the lists of an image older
    # than a day, as they would on a lab machine.
    rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/cache/apt/*.bin
    touch "$ROOTFS"/var/lib/apt/lists
    tar -C "$ROOTFS" -cf "$TARBALL.tmp" .
    mv "$TARBALL.tmp" "$TARBALL"
fi
docker import >/dev/null -c 'ENV container=docker' \
    -c 'CMD ["/sbin/init"]' "$TARBALL" "$IMAGE"
echo "built $IMAGE" >&2
echo "$IMAGE"

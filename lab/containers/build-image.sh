#!/usr/bin/env bash
# Build the systemd container image the molecule scenarios run the roles in, from a Debian
# root filesystem made by debootstrap (no container registry is reachable).  Idempotent:
# does nothing when the image exists.  Set TENANTRY_IMAGE_REBUILD=1 to build it again.
#
#   lab/containers/build-image.sh            # builds localhost/tenantry-systemd:bookworm-2
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=lab/containers/podman-env.sh
. "$here/podman-env.sh"

image=${TENANTRY_IMAGE:-localhost/tenantry-systemd:bookworm-2}
suite=bookworm
mirror=${TENANTRY_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What a Debian host of a Director or Transporter has: Python with venv (the roles install the
# services into a virtualenv; ansible.builtin.pip needs python3-packaging), python3-apt (ansible.builtin.apt), systemd as PID 1, nftables,
# openssl and iproute2 (ss) for the checks, sshd and sudo like a real host.
packages=python3,python3-venv,python3-packaging,python3-apt,systemd,systemd-sysv,dbus,nftables,openssh-server,openssl,iproute2,procps,ca-certificates,sudo

# make test builds it from two suites at once (molecule, lab-e2e): one builds, the other waits and finds it.
mkdir -p "$repo/.lab/containers"
exec 8>"$repo/.lab/containers/.image.lock"
flock 8
if [ "${TENANTRY_IMAGE_REBUILD:-0}" != 1 ] && podman image exists "$image"; then
    echo "image $image exists"
    exit 0
fi

work=$(mktemp -d "$repo/.lab/containers/rootfs.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "debootstrap $suite into $work (about a minute)"
debootstrap --variant=minbase --include="$packages" "$suite" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log"; exit 1; }
# A container needs no getty and no udev settling; keep the journal in memory.
rm -f "$work/rootfs/etc/systemd/system/getty.target.wants/"* 2>/dev/null || true
mkdir -p "$work/rootfs/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\n' >"$work/rootfs/etc/systemd/journald.conf.d/volatile.conf"
echo "$image" | cut -d/ -f2 | tr ':' '-' >"$work/rootfs/etc/hostname"
tar -C "$work/rootfs" -c . | podman import \
    --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' - "$image" >/dev/null
echo "built $image"

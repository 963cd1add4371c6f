#!/usr/bin/env bash
# release-mntns.sh DIR: give back the private mount namespace held for a delegated scenario (nfs_export).
# DIR/mntns.pid names the holder (molecule/nfs_export/create.yml starts it). Inside the namespace, unmount
# everything under DIR (deepest first; a loop mount frees its loop device), stop the holder (the namespace
# goes with it), remove the pid file, then detach any loop device still backed by an image under DIR.
# Prints "stopped" when it stopped a holder. Used by the scenario's destroy and by molecule.sh's clean-up.
set -uo pipefail
dir=$1
pid=$(cat "$dir/mntns.pid" 2>/dev/null || true)
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    # shellcheck disable=SC2016  # $0 is expanded by the inner shell: DIR
    nsenter --target "$pid" --mount sh -c '
        findmnt -rn -o TARGET | grep "^$0/" | sort -r | while read -r point; do umount -l "$point"; done' "$dir"
    kill "$pid"
    echo stopped
fi
rm -f "$dir/mntns.pid"
left=""
for _ in $(seq 50); do  # autoclear frees a loop device just after its last unmount
    left=$(losetup -n -O NAME,BACK-FILE | awk -v dir="$dir/" 'index($2, dir) == 1 {print $1}')
    [ -z "$left" ] && exit 0
    sleep 0.1
done
for dev in $left; do losetup -d "$dev"; done

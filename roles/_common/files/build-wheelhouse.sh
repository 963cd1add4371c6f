#!/usr/bin/env bash
# Runs on the controller (never on a managed host): build the wheelhouse the roles install the
# tenantry package from, for one Python version and architecture, from the collection's own source.
#   build-wheelhouse.sh PYTHON COLLECTION_ROOT WHEELHOUSE_ROOT PY_VERSION ARCH MANYLINUX_TAG...
# Prints "unchanged DIR" when DIR already matches the source (a fingerprint of pyproject.toml,
# README.md and src/tenantry), else builds into a temporary directory, swaps it in and prints
# "built DIR".  The wheelhouse also holds the optional PostgreSQL driver (the postgres extra), for
# Directors that share a database, and pyVmomi (the vsphere extra), for Transporters that back up VMs.  DIR.tar holds the same wheels (reproducible: sorted, fixed times and owners), so
# the roles copy one file to each host.  The controller needs a package index only when it builds.
set -euo pipefail
python=$1 root=$2 pyver=$4 arch=$5
wheelhouse=$(mkdir -p "$3" && cd "$3" && pwd)
shift 5
tag="cp${pyver/./}-${arch}"
dest="$wheelhouse/$tag"
# Several plays (parallel molecule scenarios, say) may ask at once: one builds, the others wait and find it.
exec 9>"$wheelhouse/.lock"
flock 9
fingerprint=$(cd "$root" && { echo "$tag"; sha256sum <"$0"; find pyproject.toml README.md src/tenantry -type f -name '*' \
    ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum; } | sha256sum | cut -d' ' -f1)
if [ -f "$dest/.fingerprint" ] && [ "$(cat "$dest/.fingerprint")" = "$fingerprint" ] && [ -f "$dest.tar" ]; then
    echo "unchanged $dest"
    exit 0
fi
mkdir -p "$wheelhouse"
work=$(mktemp -d "$wheelhouse/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
# Build from a copy: an in-tree build would leave build/ and egg-info in the collection.
mkdir -p "$work/src" "$work/wheels"
(cd "$root" && tar -cf - --exclude=__pycache__ --exclude='*.pyc' --exclude='*.egg-info' pyproject.toml README.md src/tenantry) \
    | tar -xf - -C "$work/src"
export PIP_DISABLE_PIP_VERSION_CHECK=1 SOURCE_DATE_EPOCH=315532800
"$python" -m pip wheel -q --no-deps -w "$work/wheels" "$work/src" >"$work/build.log" 2>&1 \
    || { cat "$work/build.log" >&2; exit 1; }
# Pin what the controller's own environment runs (and was tested with) where it has the package.
"$python" -m pip freeze --exclude-editable 2>/dev/null | grep '==' >"$work/constraints.txt" || true
platforms=()
for ml in "$@"; do platforms+=(--platform "${ml}_${arch}"); done
"$python" -m pip download -q --only-binary=:all: --implementation cp --python-version "$pyver" \
    --abi "cp${pyver/./}" --abi abi3 --abi none "${platforms[@]}" --platform any \
    -c "$work/constraints.txt" -d "$work/wheels" "$(echo "$work"/wheels/tenantry-*.whl)[postgres,vsphere]" >"$work/download.log" 2>&1 \
    || { cat "$work/download.log" >&2; exit 1; }
echo "$fingerprint" >"$work/wheels/.fingerprint"
chmod 0644 "$work"/wheels/*
(cd "$work/wheels" && tar --sort=name --mtime=@315532800 --owner=0 --group=0 --numeric-owner \
    -cf "$work/wheels.tar" .fingerprint ./*.whl)
rm -rf "$dest.old"
[ -d "$dest" ] && mv "$dest" "$dest.old"
mv "$work/wheels" "$dest"
mv "$work/wheels.tar" "$dest.tar"
rm -rf "$dest.old"
echo "built $dest"

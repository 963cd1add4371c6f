#!/usr/bin/env bash
# Run the role scenarios under molecule/ (podman driver, systemd containers), as `make molecule` does:
# build the image once (lab/containers/build-image.sh), then `molecule test` for each scenario, or
# for those named:   lab/containers/molecule.sh [SCENARIO...]
# MOLECULE_JOBS=N runs up to N scenarios at once (their containers and networks have distinct names);
# each one's output then goes to tests/output/molecule/<scenario>.log and is printed when it fails.
# Molecule destroys a scenario's containers when one of its steps fails; the trap also removes them
# when this script is interrupted. Prints each scenario's wall time.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"
# shellcheck source=lab/containers/podman-env.sh
. "$here/podman-env.sh"
export PATH="$repo/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="${ANSIBLE_COLLECTIONS_PATH:-$repo/.collections}"
export ANSIBLE_NOCOLOR=1 NO_COLOR=1 PY_COLORS=0 ANSIBLE_FORCE_COLOR=0
"$here/build-image.sh"

scenarios=("$@")
if [ ${#scenarios[@]} -eq 0 ]; then
    for f in molecule/*/molecule.yml; do scenarios+=("$(basename "$(dirname "$f")")"); done
fi

cleanup() {
    # The containers and networks the scenarios create (names from their molecule.yml), nothing else.
    for f in molecule/*/molecule.yml; do
        for name in $(sed -n 's/^  - name: //p' "$f"); do
            podman container exists "$name" && podman rm -f -t 2 "$name" >/dev/null 2>&1 || true
        done
        for net in $(sed -n 's/^    network: //p' "$f" | sort -u); do
            podman network exists "$net" && podman network rm -f "$net" >/dev/null 2>&1 || true
        done
    done
}
trap cleanup EXIT INT TERM

run_one() {
    local s=$1 start result
    start=$(date +%s)
    if molecule test -s "$s"; then result=passed; else result=failed; fi
    echo "molecule scenario $s: $result in $(( $(date +%s) - start )) s"
    [ "$result" = passed ]
}

jobs=${MOLECULE_JOBS:-1}
status=0
if [ "$jobs" -le 1 ]; then
    for s in "${scenarios[@]}"; do run_one "$s" || status=1; done
    exit $status
fi
logs="$repo/tests/output/molecule"
mkdir -p "$logs"
pids=() names=()
for s in "${scenarios[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 2; done
    run_one "$s" >"$logs/$s.log" 2>&1 &
    pids+=("$!") names+=("$s")
done
for i in "${!pids[@]}"; do
    if wait "${pids[$i]}"; then
        tail -n 1 "$logs/${names[$i]}.log"
    else
        status=1
        echo "---- molecule scenario ${names[$i]} failed; the end of $logs/${names[$i]}.log:"
        tail -n 80 "$logs/${names[$i]}.log"
    fi
done
exit $status

#!/usr/bin/env bash
# Run the role scenarios under molecule/, as `make molecule` does: `molecule test` for each scenario (but
# those whose molecule.yml says "# molecule.sh: not in the default run"), or for those named:
#   lab/containers/molecule.sh [SCENARIO...]
# Two kinds of scenario:
# - container scenarios (podman driver, systemd containers): the image is built once first
#   (lab/containers/build-image.sh); MOLECULE_JOBS=N runs up to N of them at once (their containers and
#   networks have distinct names);
# - delegated scenarios (driver "default": simulators of their own lab instance, or network namespaces
#   on this machine; no image): cheap and mostly waiting, they run one after the other in one more lane
#   next to the container scenarios when MOLECULE_JOBS > 1, so they add little to the wall time.
# With MOLECULE_JOBS > 1 each scenario's output goes to tests/output/molecule/<scenario>.log and is
# printed when it fails.  Molecule destroys a scenario's containers (or simulators, namespaces) when one
# of its steps fails; the trap also removes them when this script is interrupted. Prints each
# scenario's wall time.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"
# shellcheck source=lab/containers/podman-env.sh
. "$here/podman-env.sh"
export PATH="$repo/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="${ANSIBLE_COLLECTIONS_PATH:-$repo/.collections}"
export ANSIBLE_NOCOLOR=1 NO_COLOR=1 PY_COLORS=0 ANSIBLE_FORCE_COLOR=0

scenarios=("$@")
if [ ${#scenarios[@]} -eq 0 ]; then
    for f in molecule/*/molecule.yml; do
        # A scenario marked so runs only when named (lab/containers/molecule.sh ha).
        grep -q '^# molecule.sh: not in the default run' "$f" && continue
        scenarios+=("$(basename "$(dirname "$f")")")
    done
fi

# The driver a scenario's molecule.yml names: podman, or default (delegated).
driver_of() {
    sed -n '/^driver:/,/^[^ ]/s/^  name: //p' "molecule/$1/molecule.yml"
}
container_scenarios=() delegated_scenarios=()
for s in "${scenarios[@]}"; do
    if [ "$(driver_of "$s")" = default ]; then delegated_scenarios+=("$s"); else container_scenarios+=("$s"); fi
done
[ ${#container_scenarios[@]} -eq 0 ] || "$here/build-image.sh"

cleanup() {
    # Only what the scenarios of this run create (another run may be using the others'): the simulators of
    # their lab instance (TENANTRY_LAB_INSTANCE in their molecule.yml), the network namespaces (tnmol-*) and
    # mount namespaces (.lab/molecule/<scenario>/mntns.pid) of the delegated ones, the containers and
    # networks of the container ones.
    for s in "${scenarios[@]}"; do
        f=molecule/$s/molecule.yml
        for instance in $(sed -n 's/^    TENANTRY_LAB_INSTANCE: //p' "$f"); do
            [ -d ".lab/instances/$instance" ] || continue
            PYTHONPATH="$repo/src" python -m tenantry.lab --instance "$instance" down >/dev/null 2>&1 || true
            rm -rf ".lab/instances/$instance"
        done
    done
    [ ${#delegated_scenarios[@]} -eq 0 ] || for ns in $(ip netns list 2>/dev/null | sed -n 's/^\(tnmol-[^ ]*\).*/\1/p'); do
        # shellcheck disable=SC2046  # one pid per word
        kill $(ip netns pids "$ns") 2>/dev/null || true  # a DHCP server a failed verify left running
        ip netns delete "$ns" 2>/dev/null || true
    done
    # The mount namespaces held for delegated scenarios (nfs_export): unmount inside, stop the holder.
    for s in ${delegated_scenarios[@]+"${delegated_scenarios[@]}"}; do
        [ -s "$repo/.lab/molecule/$s/mntns.pid" ] && "$here/release-mntns.sh" "$repo/.lab/molecule/$s" >/dev/null || true
    done
    for s in "${scenarios[@]}"; do
        f=molecule/$s/molecule.yml
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
start=$(date +%s)
if [ "$jobs" -le 1 ]; then
    for s in "${scenarios[@]}"; do run_one "$s" || status=1; done
    echo "molecule: all scenarios in $(( $(date +%s) - start )) s"
    exit $status
fi
logs="$repo/tests/output/molecule"
mkdir -p "$logs"
pids=() names=()
# The delegated scenarios: one lane, one after the other, next to the container scenarios.
if [ ${#delegated_scenarios[@]} -gt 0 ]; then
    for s in "${delegated_scenarios[@]}"; do rm -f "$logs/$s.log"; done
    ( for s in "${delegated_scenarios[@]}"; do run_one "$s" >"$logs/$s.log" 2>&1 || true; done ) &
    lane=$!
fi
running() {  # container scenarios still running
    local n=0 p
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && n=$((n + 1)); done
    echo "$n"
}
for s in "${container_scenarios[@]}"; do
    while [ "$(running)" -ge "$jobs" ]; do sleep 2; done
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
if [ -n "${lane:-}" ]; then
    wait "$lane"
    for s in "${delegated_scenarios[@]}"; do
        if tail -n 1 "$logs/$s.log" | grep -q "^molecule scenario $s: passed"; then
            tail -n 1 "$logs/$s.log"
        else
            status=1
            echo "---- molecule scenario $s failed; the end of $logs/$s.log:"
            tail -n 80 "$logs/$s.log"
        fi
    done
fi
echo "molecule: all scenarios in $(( $(date +%s) - start )) s"
exit $status

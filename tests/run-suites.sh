#!/usr/bin/env bash
# Run make targets at the same time (what `make test` does): each one's output goes to
# tests/output/suites/<target>.log; prints each target's result and wall time as it ends, and the end
# of the log of every target that failed.  Exit status: 0 only when every target passed.
#   tests/run-suites.sh TARGET...
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
logs="$repo/tests/output/suites"
mkdir -p "$logs"
start=$(date +%s)
declare -A pids
for target in "$@"; do
    ( t0=$(date +%s); make -C "$repo" --no-print-directory "$target" >"$logs/$target.log" 2>&1; rc=$?
      echo "rc=$rc seconds=$(( $(date +%s) - t0 ))" >"$logs/$target.status"; exit $rc ) &
    pids[$target]=$!
done
status=0
for target in "$@"; do
    if wait "${pids[$target]}"; then result=passed; else result=FAILED; status=1; fi
    echo "suite $target: $result ($(cat "$logs/$target.status" 2>/dev/null))"
done
for target in "$@"; do
    if ! grep -q '^rc=0 ' "$logs/$target.status" 2>/dev/null; then
        echo "---- the end of $logs/$target.log:"
        tail -n 120 "$logs/$target.log"
    fi
done
echo "all suites: $([ $status = 0 ] && echo passed || echo FAILED) in $(( $(date +%s) - start )) s"
exit $status

#!/usr/bin/env bash
# ansible-test sanity on a copy of the collection at <tmp>/ansible_collections/tenantry/msp
# (ansible-test insists on that path, and outside this git checkout or it sees no files).
# Only Ansible content is copied (what git tracks, less the Python services under src/, the
# lab and the tests, which ruff and mypy check); extra arguments go to ansible-test.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/tenantry-sanity.XXXXXX")
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/tenantry/msp"
mkdir -p "$dest"
(cd "$repo" && git ls-files -co --exclude-standard -z | while IFS= read -r -d '' f; do
  case "$f" in src/*|lab/*|docs/*|.ci/*|tests/*) [ "$f" = tests/config.yml ] || continue ;; esac
  [ -e "$f" ] && printf '%s\0' "$f"; done | tar --null -T - -cf -) | tar -xf - -C "$dest"
# Sibling collections the content imports, so the import test resolves them.
for ns in "$repo"/.collections/ansible_collections/*/; do
  [ "$(basename "$ns")" = tenantry ] || ln -s "$ns" "$work/ansible_collections/$(basename "$ns")"
done
# ansible-test keeps its sanity virtualenvs and caches under ~/.ansible/test: give it a home in the project
# (.ansible/home, removed by `make clean`), so that ~/.ansible is left alone.
home="$repo/.ansible/home"
# ansible-test bootstraps pip in its sanity venvs from a host this machine cannot reach;
# give it our stand-in under the name it looks for (the pip version ansible-test pins).
pip_version=$(python -c 'from ansible_test._internal.python_requirements import get_venv_packages as g; print(g(type("P", (), {"version": "3.11"})())["pip"])')
mkdir -p "$home/.ansible/test/cache"
cp "$repo/tests/get_pip_offline.py" "$home/.ansible/test/cache/get_pip_${pip_version//./_}.py"
cd "$dest"
HOME="$home" ansible-test sanity --python 3.11 --color no "$@"

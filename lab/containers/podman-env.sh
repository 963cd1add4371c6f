#!/usr/bin/env bash
# Source me: renders the project-local containers.conf and exports CONTAINERS_CONF.
#   . lab/containers/podman-env.sh
_tenantry_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
mkdir -p "$_tenantry_repo/.lab/containers"
sed "s/@NOFILE@/$(ulimit -Hn)/g" "$_tenantry_repo/lab/containers/containers.conf" \
    > "$_tenantry_repo/.lab/containers/containers.conf.tmp"
mv "$_tenantry_repo/.lab/containers/containers.conf.tmp" "$_tenantry_repo/.lab/containers/containers.conf"
export CONTAINERS_CONF="$_tenantry_repo/.lab/containers/containers.conf"
unset _tenantry_repo

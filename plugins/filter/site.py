# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""From the tenants inventory to each role's input: one place for that mapping.

Playbooks call these with ``hostvars`` and ``groups``; every filter takes tenant names and
reads the allocations the tenants inventory plugin put on the target hosts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError


def _targets(hostvars: Mapping[str, Any], groups: Mapping[str, Sequence[str]], tenants: Sequence[str]) -> list[Any]:
    hosts = []
    for name in tenants:
        group = "tenant_%s" % name
        if group not in groups:
            known = sorted(g[len("tenant_") :] for g in groups if g.startswith("tenant_"))
            raise AnsibleFilterError("unknown tenant %r; the tenant files define: %s" % (name, ", ".join(known)))
        hosts += [hostvars[h] for h in groups[group]]
    return hosts


def tenant_names(groups: Mapping[str, Sequence[str]], only: str | None = None) -> list[str]:
    """Every tenant of the inventory, or just ``only`` (checked)."""
    names = sorted(g[len("tenant_") :] for g in groups if g.startswith("tenant_"))
    if only:
        if only not in names:
            raise AnsibleFilterError("unknown tenant %r; the tenant files define: %s" % (only, ", ".join(names)))
        return [only]
    return names


def tenant_specs(tenants: Sequence[str], hostvars: Mapping[str, Any], groups: Mapping[str, Sequence[str]]) -> list[Any]:
    """The normalised tenant files of ``tenants``."""
    specs = {}
    for target in _targets(hostvars, groups, tenants):
        specs[target["tenantry_tenant"]] = target["tenantry_tenant_spec"]
    return [specs[n] for n in tenants]


def director_tenants(specs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Input of the director role's ``director_tenants`` (the Director's view of a tenant)."""
    return [
        {
            "name": s["name"],
            "kind": s["type"],
            "description": s["description"],
            "contact": s["contact"],
            "workload_quota": s["workload_quota"],
        }
        for s in specs
    ]


def dhcp_reservations_of(
    tenants: Sequence[str], hostvars: Mapping[str, Any], groups: Mapping[str, Sequence[str]]
) -> list[dict[str, str]]:
    """One reservation per target: its management MAC gets its management IP."""
    return [
        {
            "hostname": t["tenantry_target_name"],
            "mac": t["tenantry_target_mgmt_mac"],
            "ip": t["tenantry_target_mgmt_ip"],
        }
        for t in _targets(hostvars, groups, tenants)
    ]


def arp_bindings_of(
    tenants: Sequence[str], hostvars: Mapping[str, Any], groups: Mapping[str, Sequence[str]], switch: str
) -> list[dict[str, Any]]:
    """The ARP-lock bindings of the targets' ports on ``switch``: tenant ports and management ports.

    A target's tenant port binds its tenant MAC to its tenant IP in the tenant network and VLAN; its
    management port binds its management MAC to its DHCP-reserved management IP in the provider
    management network (and its VLAN), so a tenant with root on its target can take neither another
    address of the customer network nor another target's management address.
    """
    bindings = []
    for t in _targets(hostvars, groups, tenants):
        port = t.get("tenantry_target_switch_port") or {}
        spec = t["tenantry_tenant_spec"]
        if port.get("switch") == switch:
            bindings.append(
                {
                    "tenant": t["tenantry_tenant"],
                    "port": port["port"],
                    "mac": t["tenantry_target_tenant_mac"],
                    "ip": t["tenantry_target_tenant_ip"],
                    "network": spec["network"]["cidr"],
                    "vlan": spec["vlan"],
                }
            )
        management = port.get("management") or {}
        if management.get("switch") == switch:
            if not t.get("tenantry_target_mgmt_network") or not t.get("tenantry_target_mgmt_ip"):
                raise AnsibleFilterError(
                    "%s: %s has a management switch port but no management network: set management_network "
                    "(or management_pool as a CIDR) in the tenants inventory"
                    % (spec.get("source", "tenant file"), t["tenantry_target_name"])
                )
            binding = {
                "tenant": t["tenantry_tenant"],
                "port": management["port"],
                "mac": t["tenantry_target_mgmt_mac"],
                "ip": t["tenantry_target_mgmt_ip"],
                "network": t["tenantry_target_mgmt_network"],
            }
            if t.get("tenantry_target_mgmt_vlan") is not None:
                binding["vlan"] = t["tenantry_target_mgmt_vlan"]
            bindings.append(binding)
    return bindings


def nfs_exports_of(
    tenants: Sequence[str],
    hostvars: Mapping[str, Any],
    groups: Mapping[str, Sequence[str]],
    extra_clients: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """One export per tenant, to its targets' management IPs and the production hosts, of the tenant file's
    nfs.size_gb (the nfs_export role gives it a filesystem of that size)."""
    exports: dict[str, dict[str, Any]] = {}
    for t in _targets(hostvars, groups, tenants):
        spec = t["tenantry_tenant_spec"]
        entry = exports.setdefault(
            spec["name"],
            {"tenant": spec["name"], "path": spec["nfs"]["path"], "clients": [], "size_gb": spec["nfs"]["size_gb"]},
        )
        if t.get("tenantry_target_mgmt_ip"):
            entry["clients"].append(t["tenantry_target_mgmt_ip"])
    for entry in exports.values():
        entry["clients"] = sorted(set(entry["clients"])) + [c for c in extra_clients if c not in entry["clients"]]
    return [exports[n] for n in tenants if n in exports]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "tenant_names": tenant_names,
            "tenant_specs": tenant_specs,
            "director_tenants": director_tenants,
            "dhcp_reservations_of": dhcp_reservations_of,
            "arp_bindings_of": arp_bindings_of,
            "nfs_exports_of": nfs_exports_of,
        }

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: tenants
short_description: One group per tenant and one host per nested ESXi target, from tenant files
version_added: 0.1.0
description:
  - Reads every C(*.yml) in O(tenants_dir) (one file per tenant), validates each file and the whole set
    (duplicate names or ids, shared VLANs, overlapping networks or pools, switch ports claimed twice,
    a failover VLAN another tenant owns) and fails the inventory, naming file and field, before any
    playbook touches infrastructure.
  - Yields a group C(tenant_<name>) per tenant (children of C(tenants)) with the normalised tenant as
    C(tenantry_tenant_spec), and a host per nested target (in C(nested_targets)) with its deterministic
    allocation as host variables, so C(--limit tenant_acme) works for every playbook.
  - Allocations depend only on a tenant's id and a target's index, so adding a tenant never moves
    another tenant's addresses.
  - Ansible must not parse the tenant files as inventory itself; set C(ignore_patterns = ^tenants$) in the
    C([inventory]) section of C(ansible.cfg) (this repository's ansible.cfg does).
author:
  - tenantry maintainers (@tenantry)
options:
  plugin:
    description: Marks this file as a C(tenantry.msp.tenants) source.
    type: str
    required: true
    choices: [tenantry.msp.tenants]
  tenants_dir:
    description: Folder of tenant files; a relative path is relative to this configuration file.
    type: str
    default: tenants
  management_pool:
    description:
      - Provider management addresses for the targets' management vNICs (reserved in DHCP),
        as a CIDR or C(first-last) range.
      - Tenant id N owns O(max_targets_per_tenant) addresses starting at offset (N - 1) x O(max_targets_per_tenant).
    type: str
    required: true
  management_network:
    description:
      - The provider management network the targets' management VMkernel NICs (vmk0) are on, in CIDR form.
      - Routes that leave by the management interface must have their gateway on it, and the management switch ports are
        locked to addresses inside it. Defaults to O(management_pool) when that is a CIDR.
    type: str
  management_vlan:
    description:
      - VLAN of the management network, for the lock of the targets' management switch ports on a Cisco IOS switch
        (a Linux bridge does not need it).
    type: int
  mac_pool:
    description: Range for the targets' static MACs, inside VMware's manual range.
    type: str
    default: 00:50:56:00:00:00-00:50:56:3F:FF:FF
  max_targets_per_tenant:
    description:
      - How many targets a tenant may have; fixes the width of each tenant's slot.
      - Changing it moves every allocation.
    type: int
    default: 16
  target_vars:
    description: Extra variables set on every nested target host.
    type: dict
    default: {ansible_connection: local}
requirements:
  - netaddr
"""

EXAMPLES = r"""
# inventories/provider/tenants.tenantry.yaml (.yaml: the yaml inventory plugin then leaves it alone)
plugin: tenantry.msp.tenants
tenants_dir: tenants
management_pool: 10.0.16.0/20

# inventories/provider/tenants/acme.yml
# name: acme
# id: 101
# vlan: 210
# network: {cidr: 10.210.0.0/24, gateway: 10.210.0.1, dns: [10.210.0.53], pool: 10.210.0.100-10.210.0.149}
# default_gateway: 10.210.0.1          # the target's default route: on the customer network (network.gateway)
# routes:                              # tight routes back to the provider, through the management network
#   - {network: 10.0.0.0/24, gateway: 10.0.16.1, interface: management, description: provider vCenter}
# targets: {count: 2, cpus: 4, memory_mb: 8192}
# nfs: {server: 192.168.50.10, path: /exports/tenants/acme, size_gb: 2048}
# production: {account: acme-ops@vsphere.local}
# failover: {destination_vlans: [310]}
"""

from pathlib import Path
from typing import Any

from ansible.errors import AnsibleParserError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.inventory import BaseInventoryPlugin
from ansible.utils.display import Display

from ansible_collections.tenantry.msp.plugins.module_utils._allocation import HAS_NETADDR
from ansible_collections.tenantry.msp.plugins.module_utils._tenant_model import TenantError, load_all

HOST_FIELDS = ("index", "mgmt_mac", "mgmt_ip", "mgmt_network", "mgmt_vlan", "tenant_mac", "tenant_ip", "switch_port")


display = Display()


class InventoryModule(BaseInventoryPlugin):  # type: ignore[misc]  # ansible-core ships no types
    NAME = "tenantry.msp.tenants"

    def verify_file(self, path: str) -> bool:
        return bool(super().verify_file(path)) and path.endswith((".tenantry.yml", ".tenantry.yaml"))

    def parse(self, inventory: Any, loader: Any, path: str, cache: bool = True) -> None:
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        if not HAS_NETADDR:
            raise AnsibleParserError("tenantry.msp.tenants needs the Python library netaddr (pip install netaddr)")
        folder = Path(path).parent / Path(self.get_option("tenants_dir")).expanduser()
        if not folder.is_dir():
            raise AnsibleParserError("%s: tenants_dir %s is not a folder" % (path, folder))
        site = {
            "management_pool": self.get_option("management_pool"),
            "management_network": self.get_option("management_network"),
            "management_vlan": self.get_option("management_vlan"),
            "mac_pool": self.get_option("mac_pool"),
            "max_targets_per_tenant": self.get_option("max_targets_per_tenant"),
        }
        documents = []
        for file in sorted(folder.glob("*.y*ml")):
            try:
                data = loader.load_from_file(str(file))
            except Exception as exc:  # the loader raises several types for unreadable YAML
                raise AnsibleParserError("%s: not valid YAML: %s" % (file, to_native(exc))) from exc
            if isinstance(data, dict) and data.get("name") not in (None, file.stem):
                raise AnsibleParserError(
                    "%s: name %r must match the file name %r" % (file, data.get("name"), file.stem)
                )
            documents.append((str(file), _plain(data)))
        try:
            tenants = load_all(documents, site)
        except TenantError as exc:
            # Each problem once, here; the exception (which Ansible shows twice) only counts them.
            display.error("invalid tenant files:\n  " + "\n  ".join(exc.errors))
            count = len(exc.errors)
            raise AnsibleParserError(
                "%d problem%s in the tenant files (listed above)" % (count, "" if count == 1 else "s")
            ) from None

        self.inventory.add_group("tenants")
        self.inventory.add_group("nested_targets")
        for tenant in tenants:
            group = self.inventory.add_group("tenant_%s" % tenant["name"])
            self.inventory.add_child("tenants", group)
            targets = tenant.pop("targets_allocated")
            self.inventory.set_variable(group, "tenantry_tenant_spec", tenant)
            self.inventory.set_variable(group, "tenantry_tenant", tenant["name"])
            self.inventory.set_variable(group, "tenantry_tenant_id", tenant["id"])
            for target in targets:
                host = self.inventory.add_host(target["name"], group=group)
                self.inventory.add_child("nested_targets", host)
                for key, value in self.get_option("target_vars").items():
                    self.inventory.set_variable(host, key, value)
                self.inventory.set_variable(host, "tenantry_target_name", target["name"])
                for field in HOST_FIELDS:
                    self.inventory.set_variable(host, "tenantry_target_%s" % field, target[field])


def _plain(data: Any) -> Any:
    """Loader output (tagged/unsafe types) as plain Python data."""
    if isinstance(data, dict):
        return {str(k): _plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_plain(v) for v in data]
    if isinstance(data, str):
        return str(data)
    return data

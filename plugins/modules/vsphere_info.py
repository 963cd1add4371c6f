#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: vsphere_info
short_description: Read a provider site's clusters, hosts, datastores, portgroups and VMs
version_added: 0.1.0
description:
  - Reads the provider vCenter in one bulk call per object type, whatever its size, and returns
    plain sorted data that compares from run to run.
  - VMs come with their folder path, power state, host, datastores and every vNIC with its MAC
    address, address type (V(manual) for the static MACs of nested targets) and network.
author:
  - tenantry maintainers (@tenantry)
options:
  gather:
    description:
      - Which kinds of objects to read. Reading fewer kinds is faster on a large vCenter.
    type: list
    elements: str
    choices: [clusters, hosts, datastores, portgroups, vms]
    default: [clusters, hosts, datastores, portgroups, vms]
  folder:
    description:
      - Only VMs in this VM folder or below it.
      - Either a full inventory path such as C(/provider/vm/replication-targets) or a path relative
        to the datacenter's VM folder such as C(replication-targets).
      - An unknown folder fails and lists the folders that exist.
    type: str
extends_documentation_fragment:
  - tenantry.msp.vsphere
  - tenantry.msp.attributes
  - tenantry.msp.attributes.info_module
"""

EXAMPLES = r"""
- name: Read the whole provider site
  tenantry.msp.vsphere_info:
    hostname: vcenter.provider.example
    username: svc-tenantry@vsphere.local
    password: "{{ vault_vcenter_password }}"
    ca_file: /etc/pki/provider-ca.pem
  register: site

- name: Only the nested replication targets and their MACs
  tenantry.msp.vsphere_info:
    gather: [vms]
    folder: replication-targets
  register: targets

- name: Connection options once per play
  hosts: localhost
  module_defaults:
    group/tenantry.msp.vsphere:
      hostname: "{{ vcenter_hostname }}"
      username: "{{ vcenter_username }}"
      password: "{{ vcenter_password }}"
  tasks:
    - name: Clusters and hosts
      tenantry.msp.vsphere_info:
        gather: [clusters, hosts]
"""

RETURN = r"""
clusters:
  description: Clusters with their hosts and datastores.
  returned: when V(clusters) is in O(gather)
  type: list
  elements: dict
  sample: [{name: production, path: /provider/host/production, hosts: [esx-prod-01.lab.local],
            datastores: [prod-ds-01], moid: domain-c7}]
hosts:
  description: ESXi hosts with their cluster, states, datastores and networks.
  returned: when V(hosts) is in O(gather)
  type: list
  elements: dict
  sample: [{name: esx-prod-01.lab.local, cluster: production, connection_state: connected, power_state: poweredOn,
            datastores: [prod-ds-01], networks: [management], moid: host-21}]
datastores:
  description: Datastores with type, URL, capacity and free space in bytes, and the hosts that mount them.
  returned: when V(datastores) is in O(gather)
  type: list
  elements: dict
  sample: [{name: prod-ds-01, type: OTHER, url: "ds:///vmfs/volumes/prod-ds-01/", capacity: 1099511627776,
            free_space: 824633720832, accessible: true, hosts: [esx-prod-01.lab.local], moid: datastore-61}]
portgroups:
  description: Standard portgroups merged across hosts (with VLAN and vSwitch) and distributed portgroups.
  returned: when V(portgroups) is in O(gather)
  type: list
  elements: dict
  sample: [{name: management, type: standard, vlan_id: 0, vswitch: vSwitch0, hosts: [esx-prod-01.lab.local]}]
vms:
  description: VMs (templates included) with folder path, power state, host, datastores and vNICs.
  returned: when V(vms) is in O(gather)
  type: list
  elements: dict
  sample: [{name: nested-esxi-template, folder: /provider/vm, power_state: poweredOff, host: esx-prod-01.lab.local,
            template: true, uuid: 4210a2b5-..., datastores: [prod-ds-01], macs: ["00:50:56:00:00:10"],
            nics: [{label: Network adapter 1, mac: "00:50:56:00:00:10", address_type: manual,
                    network: management, connected: true}], moid: vm-50}]
"""

from ansible_collections.tenantry.msp.plugins.module_utils._diff import exit_result
from ansible_collections.tenantry.msp.plugins.module_utils._vsphere_base import (
    VSPHERE_INFO_ARGUMENT_SPEC,
    run,
    vsphere_module,
)
from ansible_collections.tenantry.msp.plugins.module_utils.clients.vsphere_inventory import gather


def main() -> None:
    module = vsphere_module(argument_spec=VSPHERE_INFO_ARGUMENT_SPEC, supports_check_mode=True)
    kinds = tuple(module.params["gather"])
    result = run(module, lambda client: gather(client, kinds=kinds, folder=module.params["folder"]))
    exit_result(module, {"changed": False, **result})


if __name__ == "__main__":
    main()

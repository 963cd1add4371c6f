#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: nested_target
short_description: Stamp out nested ESXi replication targets on the provider vCenter, many per call
version_added: 0.1.0
description:
  - Makes every target in O(targets) a VM cloned from O(template) into the folder C(<folder>/<tenant>) (created
    when missing) and O(resource_pool), with nested hardware virtualization on, vNIC 0 on
    O(management_portgroup) with the target's static MAC, vNIC 1 on its tenant portgroup with its second static MAC,
    its CPUs, memory and disk, and powered on.
  - Makes the tenant portgroups (C(tenant-<tenant>-vlan<vlan>) unless a target names one) exist with the tenant
    VLAN on O(vswitch) of every connected host of O(cluster).
  - Sets the security policy of the target's provider-side portgroups - the tenant portgroups and (unless
    O(management_portgroup_security=false)) the standard portgroup O(management_portgroup) on every host that has
    it - to reject promiscuous mode, MAC address changes and forged transmits, and puts it back when it drifts.
    The nested ESXi sends only from the static MACs of its vNICs (C(Net.FollowHardwareMac)), so it loses
    nothing; a tenant with root on its target cannot listen to, or send as, anybody else there.
  - One call handles all targets of all tenants. The site is read in a few bulk calls, the desired state is
    built and compared in memory, and only the differences are applied, as concurrent vSphere tasks (at most
    O(max_parallel) at once) waited on together. Each clone carries the hardware, nested virtualization and
    both vNICs in its clone spec, so a new target costs one task where vCenter honours the spec.
  - Every input problem (a VLAN outside 1-4094, a MAC outside VMware's static range or used twice, a template,
    cluster, pool or folder that does not exist, a portgroup that exists with another VLAN) fails the call
    before anything changes, naming the target and the field.
  - With O(state=absent) the targets are powered off and deleted; their tenant portgroups are removed from the
    hosts when no other VM uses them any more, and the tenant folders when they are empty.
author:
  - tenantry maintainers (@tenantry)
options:
  targets:
    description:
      - The nested targets. The role C(tenantry.msp.nested_esxi_target) builds this list from the host variables
        of the tenants inventory.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: VM name of the target, unique below O(folder).
        type: str
        required: true
      tenant:
        description: The tenant that owns the target; names its folder C(<folder>/<tenant>).
        type: str
        required: true
      mgmt_mac:
        description:
          - Static MAC of vNIC 0 (management), reserved in DHCP. Required with O(state=present).
          - Must be in VMware's static range C(00:50:56:00:00:00-00:50:56:3f:ff:ff).
        type: str
      tenant_mac:
        description: Static MAC of vNIC 1 (tenant network). Required with O(state=present).
        type: str
      vlan:
        description: The tenant VLAN (1-4094) of the tenant portgroup. Required with O(state=present).
        type: int
      portgroup:
        description: The tenant portgroup; defaults to C(tenant-<tenant>-vlan<vlan>).
        type: str
      cpus:
        description: Virtual CPUs.
        type: int
        default: 4
      memory_mb:
        description: Memory in MiB (1024 or more).
        type: int
        default: 8192
      disk_gb:
        description:
          - Size of the first disk in GiB. A smaller disk is grown; a bigger one is left as it is (disks never
            shrink).
        type: int
        default: 32
  template:
    description: The nested ESXi template (or VM) to clone, in the cluster's datacenter.
    type: str
    default: nested-esxi-template
  datacenter:
    description: The datacenter; needed only when several datacenters have a cluster called O(cluster).
    type: str
  cluster:
    description: The cluster whose hosts carry the tenant portgroups and run the targets.
    type: str
    default: production
  folder:
    description:
      - Root VM folder of the targets, relative to the datacenter's VM folder (or C(<datacenter>/vm/...)).
        It must exist; each tenant gets a subfolder.
    type: str
    default: replication-targets
  resource_pool:
    description: Resource pool of O(cluster) for the targets; empty for the cluster's root pool.
    type: str
    default: replication-targets
  datastore:
    description: Datastore of new targets; by default the template's.
    type: str
  management_portgroup:
    description: Portgroup of vNIC 0. It must exist; it is never created nor removed.
    type: str
    default: management
  vswitch:
    description: Standard switch on each host that gets the tenant portgroups.
    type: str
    default: vSwitch0
  management_portgroup_security:
    description:
      - Also reject promiscuous mode, MAC address changes and forged transmits on O(management_portgroup) (a
        standard portgroup; every VM on it is then held to its own MAC).
      - The tenant portgroups always get that policy.
    type: bool
    default: true
  power_state:
    description: Power state of the targets with O(state=present).
    type: str
    choices: [poweredon, poweredoff]
    default: poweredon
  state:
    description:
      - V(present) creates and corrects the targets and their portgroups and folders.
      - V(absent) deletes the targets, then each tenant portgroup no VM uses any more and each empty tenant folder.
    type: str
    choices: [present, absent]
    default: present
  max_parallel:
    description: How many vSphere tasks or calls run at once.
    type: int
    default: 16
extends_documentation_fragment:
  - tenantry.msp.vsphere
  - tenantry.msp.attributes
  - tenantry.msp.attributes.check_mode_full
  - tenantry.msp.attributes.diff_full
attributes:
  check_mode:
    details: Reads and validates everything and reports what would change; changes nothing.
  diff_mode:
    details: Before and after state of every target, the tenant portgroups (per host) and the tenant folders.
notes:
  - CPU or memory changes of a powered-on target need CPU/memory hot-add on the template; otherwise power the
    targets off first with O(power_state=poweredoff).
seealso:
  - module: tenantry.msp.nested_host
"""

EXAMPLES = r"""
- name: Stamp out two targets of tenant acme
  tenantry.msp.nested_target:
    hostname: vcenter.provider.example
    username: svc-tenantry@vsphere.local
    password: "{{ vault_vcenter_password }}"
    targets:
      - {name: acme-target-01, tenant: acme, vlan: 210, mgmt_mac: "00:50:56:00:0c:80", tenant_mac: "00:50:56:00:0c:81",
         cpus: 4, memory_mb: 16384, disk_gb: 40}
      - {name: acme-target-02, tenant: acme, vlan: 210, mgmt_mac: "00:50:56:00:0c:82", tenant_mac: "00:50:56:00:0c:83",
         cpus: 4, memory_mb: 16384, disk_gb: 40}

- name: Tear tenant acme's targets down (its portgroup goes when no other VM uses it)
  tenantry.msp.nested_target:
    targets:
      - {name: acme-target-01, tenant: acme, vlan: 210}
      - {name: acme-target-02, tenant: acme, vlan: 210}
    state: absent
"""

RETURN = r"""
targets:
  description: Every target with O(state=present) as it is (or, in check mode, would be) after the call.
  returned: always
  type: list
  elements: dict
  sample: [{name: acme-target-01, tenant: acme, folder: replication-targets/acme, cpus: 4, memory_mb: 16384,
            disk_gb: 40, nested_hv: true, power_state: poweredon,
            nics: [{network: management, mac: "00:50:56:00:0c:80", address_type: manual},
                   {network: tenant-acme-vlan210, mac: "00:50:56:00:0c:81", address_type: manual}]}]
portgroups:
  description: The tenant portgroups concerned and the hosts that have them after the call.
  returned: always
  type: dict
  sample: {tenant-acme-vlan210: [esx-prod-01.lab.local, esx-prod-02.lab.local]}
portgroup_security:
  description:
    - With O(state=present), the security policy of each provider-side portgroup of the targets per host after the
      call (C(false) is reject; C(null) would be inherited from the switch).
  returned: always
  type: dict
  sample: {tenant-acme-vlan210: {esx-prod-01.lab.local: {allow_promiscuous: false, mac_changes: false,
                                                         forged_transmits: false}}}
tenant_folders:
  description: The tenant folders concerned that exist after the call.
  returned: always
  type: list
  elements: str
  sample: [replication-targets/acme]
check_mode:
  description:
    - Whether the call only planned (check mode, also when set by a play's C(check_mode) keyword, which
      C(ansible_check_mode) does not reflect). A target that RV(actions) lists as cloned does not exist then.
  returned: always
  type: bool
  sample: false
actions:
  description: What was (in check mode, would be) done, by kind.
  returned: always
  type: dict
  sample: {cloned: [acme-target-01], reconfigured: [], moved: [], powered_on: [], powered_off: [], destroyed: [],
           portgroups_added: {tenant-acme-vlan210: [esx-prod-01.lab.local]}, portgroups_removed: {},
           folders_created: [acme], folders_removed: []}
"""

from ansible_collections.tenantry.msp.plugins.module_utils._diff import exit_result
from ansible_collections.tenantry.msp.plugins.module_utils._nested_target import (
    ARGUMENT_SPEC,
    NestedTargetError,
    check_input,
    run_nested_target,
)
from ansible_collections.tenantry.msp.plugins.module_utils._vsphere_base import run, vsphere_module


def main() -> None:
    module = vsphere_module(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        check_input(module.params)  # bad input fails before connecting
    except NestedTargetError as exc:
        module.fail_json(msg="nested_target: " + str(exc), errors=exc.errors)
    result = run(module, lambda client: run_nested_target(client, module.params, module.check_mode))
    exit_result(module, result)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: nested_host
short_description: Configure one nested ESXi replication target through its own API
version_added: 0.1.0
description:
  - Connects to the nested ESXi itself (not the provider vCenter) and makes it a tenant's replication target
    - C(Net.FollowHardwareMac) on, so the management VMkernel NIC keeps the static MAC of vNIC 0 that DHCP
      reserves; a VMkernel NIC on the tenant network with a static address (and, given O(vmkernel.mac), the
      static MAC of vNIC 1 that the tenant switch port is locked to); the tenant's NFS datastore mounted; a
      restricted role, a local account and its permissions; the default gateway and static routes, each through
      the VMkernel NIC it names (the management NIC vmk0 or the tenant NIC); SSH and the ESXi Shell stopped and
      off.
  - Reads the host in one round of concurrent calls, compares with the desired state and changes only what
    differs; independent parts are applied concurrently.
  - Every input problem (an address without a prefix, a route or default gateway not reachable on the interface
    it names, a C(Host.*) privilege, a datastore name taken by another export, a missing password for a new
    account) fails before anything changes.
  - With O(state=absent) the permissions, the account, the role, the NFS datastore, the listed routes, a default
    gateway through the tenant NIC, the VMkernel NIC with its portgroup (and its switch when that becomes empty)
    are removed.
    C(Net.FollowHardwareMac) and the services are left as they are (turning SSH back on would weaken the host).
author:
  - tenantry maintainers (@tenantry)
options:
  follow_hardware_mac:
    description: Value of the advanced option C(Net.FollowHardwareMac) (V(true) is 1).
    type: bool
    default: true
  vmkernel:
    description: The VMkernel NIC on the tenant network; not managed when omitted.
    type: dict
    suboptions:
      ip:
        description: Static IPv4 address with prefix length, such as C(10.210.0.100/24).
        type: str
        required: true
      portgroup:
        description: Portgroup of the NIC on the nested host (created when missing).
        type: str
        default: tenant
      vswitch:
        description: Standard switch of the portgroup (created when missing).
        type: str
        default: vSwitch1
      uplinks:
        description: Physical NICs of O(vmkernel.vswitch); on a nested target V(vmnic1) is its vNIC 1.
        type: list
        elements: str
        default: [vmnic1]
      vlan:
        description: VLAN of the portgroup inside the nested host; 0 when the provider portgroup tags the VLAN.
        type: int
        default: 0
      mac:
        description: MAC of the VMkernel NIC; give the target's tenant MAC so the locked switch port accepts it.
        type: str
      mtu:
        description: MTU of the NIC (and of a switch created for it).
        type: int
        default: 1500
  nfs:
    description: The tenant's NFS datastore; not managed when omitted.
    type: dict
    suboptions:
      server:
        description: NFS server (name or address).
        type: str
        required: true
      path:
        description: Absolute export path.
        type: str
        required: true
      datastore:
        description: Datastore name (also the local path of the mount, as vSphere does).
        type: str
        required: true
      read_only:
        description: Mount read-only.
        type: bool
        default: false
  tenant_access:
    description: The tenant's role, local account and permissions; not managed when omitted.
    type: dict
    suboptions:
      user:
        description: Local account of the tenant.
        type: str
        required: true
      password:
        description: Password of O(tenant_access.user); required to create it. Never logged nor shown in a diff.
        type: str
      update_password:
        description:
          - V(on_create) sets the password only when the account is created.
          - V(always) sets it on every run (a password cannot be read back), so the task always reports a change.
        type: str
        choices: [on_create, always]
        default: on_create
      description:
        description: Description of a new account.
        type: str
        default: tenant replication account
      role:
        description: Name of the restricted role.
        type: str
        default: tenantry-tenant
      privileges:
        description:
          - Privileges of the role; no C(Host.*) privilege (no host configuration) is accepted.
          - When omitted, the built-in tenant role, exactly what a replication job needs on its target host
            (derived from Veeam Backup & Replication's documented vSphere permissions) - use the datastore
            (allocate space, browse, upload, delete files), create, register, unregister and delete VMs in the
            resource pool, attach existing disks, create, revert and remove snapshots, power VMs on and off. The
            list, each privilege with the step that needs it, is in the collection's C(docs/nested-targets.md).
          - vSphere adds C(System.Anonymous), C(System.Read) and C(System.View) to every role.
        type: list
        elements: str
      entities:
        description:
          - Where the account gets the role (propagating). V(datastore) is the tenant's NFS datastore (its only
            datastore); ESXi also checks registering on the VM folder and the resource pool, so they are included
            by default.
        type: list
        elements: str
        choices: [datastore, vm_folder, resource_pool]
        default: [datastore, vm_folder, resource_pool]
  management_portgroup:
    description: Portgroup of the management VMkernel NIC (vmk0, DHCP-reserved); routes with C(interface=management)
      leave by that NIC.
    type: str
    default: Management Network
  management_network:
    description:
      - The provider management network (CIDR) the management NIC is on. Route gateways on interface C(management)
        must be host addresses of it (checked before connecting); when the NIC has no address in it (its DHCP
        reservation is not in effect) the module warns.
      - Without it, those gateways are checked against the NIC's current address and subnet.
    type: str
  default_gateway:
    description:
      - The default gateway of the host's default TCP/IP stack and the interface it leaves by; not managed when
        omitted. A tenant's target has it on the customer network (V(tenant)).
    type: dict
    suboptions:
      gateway:
        description: IPv4 address, a host address of the network of O(default_gateway.interface).
        type: str
        required: true
      interface:
        description:
          - V(tenant) is the NIC of O(vmkernel) (required then); V(management) the NIC on O(management_portgroup).
        type: str
        choices: [management, tenant]
        default: tenant
  routes:
    description:
      - Static IPv4 routes, each through the VMkernel NIC of the interface it names.
      - With O(vmkernel) the routes are managed whole, so only these remain ("tight" routes) - any other static
        route through the management or the tenant NIC is removed. Without it the listed routes are only added.
    type: list
    elements: dict
    default: []
    suboptions:
      network:
        description: Destination network in CIDR form (not 0.0.0.0/0; see O(default_gateway)).
        type: str
        required: true
      gateway:
        description: Gateway, a host address of the network of O(routes[].interface).
        type: str
        required: true
      interface:
        description: V(management) leaves by the NIC on O(management_portgroup); V(tenant) by the NIC of O(vmkernel).
        type: str
        choices: [management, tenant]
        default: management
      description:
        description: What the route is for (as in the tenant file); not sent to the host.
        type: str
        default: ""
  disabled_services:
    description: Services stopped and with start policy C(off).
    type: list
    elements: str
    default: [TSM-SSH, TSM]
  state:
    description: V(present) configures; V(absent) removes what V(present) added (see the description).
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - tenantry.msp.vsphere
  - tenantry.msp.attributes
  - tenantry.msp.attributes.check_mode_full
  - tenantry.msp.attributes.diff_full
attributes:
  check_mode:
    details: Reads and validates everything and reports what would change; changes nothing.
  diff_mode:
    details: Before and after state of every managed part; the password is never part of it.
notes:
  - The connection options point at the nested ESXi (in the tenants inventory, the C(tenantry_target_api_*)
    variables), not at the provider vCenter; a vCenter is refused.
seealso:
  - module: tenantry.msp.nested_target
"""

EXAMPLES = r"""
- name: Make acme-target-01 acme's replication target
  tenantry.msp.nested_host:
    hostname: "{{ tenantry_target_api_hostname }}"
    username: "{{ tenantry_target_api_username }}"
    password: "{{ tenantry_target_api_password }}"
    vmkernel:
      ip: 10.210.0.100/24
      mac: "00:50:56:00:0c:81"
    nfs: {server: 192.168.50.10, path: /exports/tenants/acme, datastore: nfs-acme}
    tenant_access:
      user: tenant-acme
      password: "{{ vault_acme_target_password }}"
    management_network: 10.0.16.0/20
    default_gateway: {gateway: 10.210.0.1, interface: tenant}
    routes:
      - {network: 10.0.0.0/24, gateway: 10.0.16.1, interface: management, description: provider vCenter}
"""

RETURN = r"""
host:
  description: Name of the ESXi host.
  returned: always
  type: str
  sample: localhost.localdomain
state:
  description: The managed parts after the call (in check mode, as they would be); no password.
  returned: always
  type: dict
  sample: {follow_hardware_mac: 1, vmkernel: {portgroup: tenant, vswitch: vSwitch1, uplinks: [vmnic1], vlan: 0,
           ip: 10.210.0.100/24, mac: "00:50:56:00:0c:81", mtu: 1500},
           nfs: {datastore: nfs-acme, server: 192.168.50.10, path: /exports/tenants/acme, read_only: false},
           role: {name: tenantry-tenant, privileges: [Datastore.Browse]}, account: {user: tenant-acme},
           permissions: [{entity: datastore, role: tenantry-tenant, propagate: true}],
           default_gateway: {gateway: 10.210.0.1, interface: tenant},
           routes: [{network: 10.0.0.0/24, gateway: 10.0.16.1, interface: management}],
           services: {TSM: {running: false, policy: "off"}, TSM-SSH: {running: false, policy: "off"}}}
vmkernel_device:
  description: The VMkernel NIC on the tenant portgroup (for example C(vmk1)), when there is one.
  returned: when O(vmkernel) is given
  type: str
  sample: vmk1
"""

from ansible_collections.tenantry.msp.plugins.module_utils._diff import exit_result
from ansible_collections.tenantry.msp.plugins.module_utils._nested_host import (
    ARGUMENT_SPEC,
    NestedHostError,
    check_input,
    run_nested_host,
)
from ansible_collections.tenantry.msp.plugins.module_utils._vsphere_base import run, vsphere_module


def main() -> None:
    module = vsphere_module(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        check_input(module.params)  # bad input fails before connecting
    except NestedHostError as exc:
        module.fail_json(msg="nested_host: " + str(exc), errors=exc.errors)
    result = run(module, lambda client: run_nested_host(client, module.params, module.check_mode))
    exit_result(module, result)


if __name__ == "__main__":
    main()

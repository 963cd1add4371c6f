# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # O(config) of the two ARP-lock modules: the options of plugins/module_utils/_switch/runner.py:_config_options().
    # Ansible merges a fragment's options one level deep only (a module's O(config) would replace the fragment's
    # whole), and ansible-test wants each fragment as literal text, so each backend has its whole O(config) here:
    # IOS for tenantry.msp.ios_arp_lock, BRIDGE for tenantry.msp.bridge_arp_lock. O(config.bindings) and
    # O(config.tenants) are the same in both but for the words of the backend (a port's name, what the VLAN does);
    # tests/unit/plugins/doc_fragments/test_arp_lock.py holds them to that.
    IOS = r"""
options:
  config:
    description:
      - The lock. Required for every state but V(parsed), V(gathered) and V(deleted).
    type: dict
    suboptions:
      bindings:
        description:
          - One entry per tenant port.
        type: list
        elements: dict
        default: []
        suboptions:
          tenant:
            description: Tenant name (letters, digits, C(.), C(_), C(-)). Required except with O(state=deleted).
            type: str
          port:
            description: Interface, long or short (C(GigabitEthernet1/0/10), C(Gi1/0/10)).
            type: str
            required: true
          mac:
            description: The one MAC allowed on the port, any notation. Required except with O(state=deleted).
            type: str
          ip:
            description: The one IPv4 address the MAC may use; inside O(config.bindings[].network).
              Required except with O(state=deleted).
            type: str
          network:
            description: The tenant network in CIDR notation. Required except with O(state=deleted).
            type: str
          vlan:
            description: The tenant VLAN (access VLAN of the port). Required except with O(state=deleted).
            type: int
      tenants:
        description:
          - With O(state=deleted), remove every port of these tenants.
        type: list
        elements: str
        default: []
      uplinks:
        description:
          - Trusted ports (DHCP snooping and ARP inspection trust), towards the DHCP server and the router.
          - With O(state=overridden), trusted ports not listed lose their trust; with O(state=deleted) the listed
            ones do.
        type: list
        elements: str
        default: []
      violation:
        description: What port security does on a foreign MAC; V(restrict) drops and counts, V(shutdown) err-disables.
        type: str
        choices: [restrict, shutdown]
        default: restrict
      arp_rate:
        description: ARP packets per second a tenant port may send before ARP inspection err-disables it (1-2048).
        type: int
        default: 15
      source_guard:
        description:
          - Keyword that makes IP source guard filter on MAC as well as IP; V(port-security) on Catalyst IOS 12.2/15,
            V(mac-check) on IOS-XE 16 and later.
        type: str
        choices: [port-security, mac-check]
        default: port-security
attributes:
  platform:
    platforms: ios
    details: Over C(ansible.netcommon.network_cli) with C(ansible_network_os=cisco.ios.ios); V(rendered) and
      V(parsed) need no switch.
"""

    BRIDGE = r"""
options:
  config:
    description:
      - The lock. Required for every state but V(parsed), V(gathered) and V(deleted).
    type: dict
    suboptions:
      bindings:
        description:
          - One entry per tenant port.
        type: list
        elements: dict
        default: []
        suboptions:
          tenant:
            description: Tenant name (letters, digits, C(.), C(_), C(-)). Required except with O(state=deleted).
            type: str
          port:
            description: The bridge port (a Linux interface name, such as the host side of a veth or a tap).
            type: str
            required: true
          mac:
            description: The one MAC allowed on the port, any notation. Required except with O(state=deleted).
            type: str
          ip:
            description: The one IPv4 address the MAC may use; inside O(config.bindings[].network).
              Required except with O(state=deleted).
            type: str
          network:
            description: The tenant network in CIDR notation. Required except with O(state=deleted).
            type: str
          vlan:
            description: The tenant VLAN, recorded with the binding (the bridge's VLAN set-up is not changed).
            type: int
      tenants:
        description:
          - With O(state=deleted), remove every binding of these tenants.
        type: list
        elements: str
        default: []
      arp_rate:
        description: ARP packets per second each locked port may send (1-2048); more are dropped.
        type: int
        default: 15
attributes:
  platform:
    platforms: linux
    details: Runs on the host that owns the bridge, as root, with C(nft) and C(ip).
"""

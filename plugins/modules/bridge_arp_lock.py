#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: bridge_arp_lock
short_description: ARP-lock tenant ports of a Linux bridge with nftables (bridge family)
version_added: 0.1.0
description:
  - Locks each tenant port of a Linux bridge so that only its allocated MAC, and from it only its allocated IP,
    may speak. Runs on the host that owns the bridge, as root.
  - "Frames entering the bridge from a locked port are dropped, and counted, when: the source MAC is not the
    port's (C(drop_mac)); an ARP sender MAC/IP pair is not the port's binding (C(drop_arp)); the port sends more
    ARP than O(config.arp_rate) packets per second (C(drop_arp_rate)); the IPv4 source is not the port's, except
    a DHCP request from C(0.0.0.0) (C(drop_ip)); it is a DHCP server message, UDP source port 67
    (C(drop_dhcp_server)); it is neither IPv4 nor ARP (C(drop_other), IPv6 and VLAN tags included)."
  - The module owns one nftables table, O(table) in the C(bridge) family, and touches no other. Bindings live in
    sets, so re-applying the same bindings changes nothing and removing a tenant removes only its elements; the
    counters survive binding changes. A change of O(config.arp_rate) rebuilds the table in one transaction
    (counters restart from zero).
  - The state is read with C(nft -j) (JSON) and changed with one atomic C(nft -f) transaction.
  - Bindings are checked before anything is applied; an IP outside the tenant network, one MAC or one IP on two
    ports, a port given twice, or (with O(bridge)) a port that is not on the bridge fails with a message naming
    the ports.
author:
  - tenantry maintainers (@tenantry)
options:
  table:
    description: The nftables table (family C(bridge)) the lock owns.
    type: str
    default: tenantry_arp_lock
  netns:
    description:
      - Network namespace (as C(ip netns) names it) that holds the bridge; C(nft) and C(ip) run inside it.
      - For labs and for bridges owned by a container's namespace.
    type: str
  bridge:
    description:
      - When given, every bound port must be a port of this bridge.
    type: str
  running_config:
    description:
      - Output of C(nft -j list table bridge <table>) for O(state=parsed).
    type: str
  state:
    description:
      - V(merged) adds or updates the given bindings (by port); nothing is removed.
      - V(replaced) gives each tenant named in O(config) exactly the given bindings; other tenants are untouched.
      - V(overridden) leaves exactly the given bindings.
      - V(deleted) removes the bindings on the given ports and of O(config.tenants); with no O(config) it removes
        the whole table.
      - V(rendered) returns the C(nft -f) script for O(config) without touching the host; V(parsed) reads
        O(running_config); V(gathered) reads the table and its counters.
    type: str
    choices: [merged, replaced, overridden, deleted, rendered, parsed, gathered]
    default: merged
requirements:
  - netaddr
  - nft (nftables 1.0 or later) and ip (iproute2) on the host
extends_documentation_fragment:
  - tenantry.msp.arp_lock.bridge
  - tenantry.msp.attributes
  - tenantry.msp.attributes.check_mode_full
  - tenantry.msp.attributes.diff_full
attributes:
  check_mode:
    details: Reads the table and returns the C(nft) lines it would run, without running them.
  diff_mode:
    details: Shows the bindings before and after.
"""

EXAMPLES = r"""
- name: Lock the tenant ports of the lab bridge
  become: true
  tenantry.msp.bridge_arp_lock:
    bridge: br-tenants
    config:
      bindings:
        - {tenant: acme, port: vt-acme-1, mac: "00:50:56:00:65:03", ip: 10.210.0.11, network: 10.210.0.0/24, vlan: 210}
        - {tenant: acme, port: vt-acme-2, mac: "00:50:56:00:65:05", ip: 10.210.0.12, network: 10.210.0.0/24, vlan: 210}
    state: replaced

- name: Offboard a tenant (its bindings only)
  become: true
  tenantry.msp.bridge_arp_lock:
    config:
      tenants: [acme]
    state: deleted

- name: Drop counters
  become: true
  tenantry.msp.bridge_arp_lock:
    state: gathered
  register: lock
"""

RETURN = r"""
before:
  description: The bindings found in the table.
  returned: when O(state) is V(merged), V(replaced), V(overridden) or V(deleted)
  type: dict
  sample: {bindings: [], arp_rate: 15}
after:
  description: The bindings after the change (read back from the table; computed in check mode).
  returned: when O(state) is V(merged), V(replaced), V(overridden) or V(deleted)
  type: dict
  sample: {bindings: [{tenant: acme, port: vt-acme-1, mac: "00:50:56:00:65:03", ip: 10.210.0.11,
           network: 10.210.0.0/24, vlan: 210}], arp_rate: 15}
commands:
  description: The C(nft -f) lines run (or, in check mode, that would run), one transaction.
  returned: when O(state) is V(merged), V(replaced), V(overridden) or V(deleted)
  type: list
  elements: str
  sample: ['add element bridge tenantry_arp_lock ports { "vt-acme-1" comment "tenant=acme" }']
added:
  description: Bindings that are new or changed.
  returned: when O(state) is V(merged), V(replaced), V(overridden) or V(deleted)
  type: list
  elements: dict
removed:
  description: Bindings that are gone or changed.
  returned: when O(state) is V(merged), V(replaced), V(overridden) or V(deleted)
  type: list
  elements: dict
counters:
  description: Packets dropped so far, per reason (the table's named counters).
  returned: when O(state) is V(merged), V(replaced), V(overridden), V(deleted) or V(gathered)
  type: dict
  sample: {drop_mac: 0, drop_arp: 1, drop_arp_rate: 285, drop_ip: 1, drop_dhcp_server: 1, drop_other: 6}
rendered:
  description: The C(nft -f) script that creates the table with O(config).
  returned: when O(state=rendered)
  type: list
  elements: str
parsed:
  description: The bindings read from O(running_config).
  returned: when O(state=parsed)
  type: dict
gathered:
  description: The bindings read from the table.
  returned: when O(state=gathered)
  type: dict
errors:
  description: Every problem found in the bindings, each naming its port(s).
  returned: when the bindings are refused
  type: list
  elements: str
  sample: ["ports vt-acme-1 and vt-globex-1 both claim MAC 00:50:56:00:65:03"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tenantry.msp.plugins.module_utils._switch.runner import (
    BRIDGE_ARGUMENT_SPEC,
    REQUIRED_IF,
    run_bridge,
)


def main() -> None:
    module = AnsibleModule(argument_spec=BRIDGE_ARGUMENT_SPEC, required_if=REQUIRED_IF, supports_check_mode=True)
    run_bridge(module)


if __name__ == "__main__":
    main()

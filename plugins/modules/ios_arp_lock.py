#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ios_arp_lock
short_description: ARP-lock tenant ports on a Cisco IOS switch (port security, DHCP snooping, DAI, IP source guard)
version_added: 0.1.0
description:
  - Locks each tenant port so that only its allocated MAC, and from it only its allocated IP, may speak.
  - "Per tenant port: access VLAN, port security (maximum 1, the static MAC, violation C(restrict) or C(shutdown)),
    dynamic ARP inspection rate limit, IP source guard filtering on IP and MAC (C(ip verify source port-security)
    or C(mac-check)) with a static C(ip source binding). The port's description becomes
    C(tenantry tenant=<tenant> network=<network>): that is how the module recognises the ports it owns."
  - "Per tenant VLAN: DHCP snooping (so DHCP server messages from tenant ports are dropped) and dynamic ARP
    inspection with an ARP access list C(TENANTRY-ARP-V<vlan>) of the bindings, applied C(static) so that ARP
    not matching a binding is dropped. Uplinks are trusted for both."
  - A resource module (cisco.ios style). States O(state=rendered) and O(state=parsed) need no switch;
    the others talk to it over C(ansible.netcommon.network_cli) with C(ansible_network_os=cisco.ios.ios).
  - Bindings are checked before anything is pushed; an IP outside the tenant network, one MAC or one IP on two
    ports, a port given twice or a port that is also an uplink fails the task with a message naming the ports.
author:
  - tenantry maintainers (@tenantry)
options:
  running_config:
    description:
      - Configuration text for O(state=parsed), as C(show running-config) prints it, or the commands
        O(state=rendered) returns.
    type: str
  state:
    description:
      - V(merged) adds or updates the given ports and trusts the given uplinks; nothing is removed.
      - V(replaced) gives each tenant named in O(config) exactly the given ports; other tenants are untouched.
      - V(overridden) leaves exactly O(config) on the switch; every other tenant port and trusted port is unlocked.
      - V(deleted) unlocks the given ports and every port of O(config.tenants); with no O(config), every tenant port.
        An unlocked port loses its access VLAN (back to the default VLAN) and its tenantry description.
      - V(rendered) returns the commands for O(config) without a switch; V(parsed) reads O(running_config);
        V(gathered) reads the switch.
    type: str
    choices: [merged, replaced, overridden, deleted, rendered, parsed, gathered]
    default: merged
requirements:
  - netaddr
notes:
  - The commands are ordered so that protection has no hole and legitimate traffic is never blocked on the way
    (uplinks trusted and ARP access lists in place before a VLAN is inspected, and the reverse on removal).
  - IOS prints no line for its defaults (C(maximum 1), C(violation shutdown), C(limit rate 15)); the module
    compares with those defaults, so a second run sends nothing.
extends_documentation_fragment:
  - tenantry.msp.arp_lock.ios
  - tenantry.msp.attributes
  - tenantry.msp.attributes.check_mode_full
  - tenantry.msp.attributes.diff_full
attributes:
  check_mode:
    details: Reads the switch and returns the commands it would send, without sending them.
  diff_mode:
    details: Shows the bindings and settings before and after.
"""

EXAMPLES = r"""
- name: What the lock looks like for one tenant (no switch needed)
  tenantry.msp.ios_arp_lock:
    config:
      uplinks: [GigabitEthernet1/0/48]
      bindings:
        - {tenant: acme, port: Gi1/0/10, mac: "00:50:56:00:65:03", ip: 10.210.0.11, network: 10.210.0.0/24, vlan: 210}
    state: rendered
  register: lock

- name: Lock the tenant's ports on the access switch (ansible_network_os=cisco.ios.ios)
  tenantry.msp.ios_arp_lock:
    config:
      uplinks: [GigabitEthernet1/0/48]
      violation: shutdown
      bindings: "{{ tenant_bindings }}"
    state: replaced

- name: Offboard a tenant
  tenantry.msp.ios_arp_lock:
    config:
      tenants: [globex]
    state: deleted

- name: Read a saved configuration back into bindings
  tenantry.msp.ios_arp_lock:
    running_config: "{{ lookup('ansible.builtin.file', 'backup/sw1.cfg') }}"
    state: parsed
"""

RETURN = r"""
before:
  description: The lock found on the switch.
  returned: when O(state) is V(merged), V(replaced), V(overridden) or V(deleted)
  type: dict
  sample: {bindings: [], uplinks: [GigabitEthernet1/0/48], violation: restrict, arp_rate: 15,
           source_guard: port-security}
after:
  description: The lock after the change (read back from the switch; computed in check mode).
  returned: when O(state) is V(merged), V(replaced), V(overridden) or V(deleted)
  type: dict
  sample: {bindings: [{tenant: acme, port: GigabitEthernet1/0/10, mac: "00:50:56:00:65:03", ip: 10.210.0.11,
            network: 10.210.0.0/24, vlan: 210}], uplinks: [GigabitEthernet1/0/48], violation: restrict,
           arp_rate: 15, source_guard: port-security}
commands:
  description: The commands sent (or, in check mode, that would be sent).
  returned: when O(state) is V(merged), V(replaced), V(overridden) or V(deleted)
  type: list
  elements: str
  sample: ["interface GigabitEthernet1/0/10", "switchport port-security mac-address 0050.5600.6503"]
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
rendered:
  description: The commands that configure O(config) on a switch that has none of it.
  returned: when O(state=rendered)
  type: list
  elements: str
  sample: ["interface GigabitEthernet1/0/48", "ip dhcp snooping trust", "ip arp inspection trust"]
parsed:
  description: The lock read from O(running_config), in the shape of O(config).
  returned: when O(state=parsed)
  type: dict
gathered:
  description: The lock read from the switch, in the shape of O(config).
  returned: when O(state=gathered)
  type: dict
errors:
  description: Every problem found in the bindings, each naming its port(s).
  returned: when the bindings are refused
  type: list
  elements: str
  sample: ["port GigabitEthernet1/0/11: ip 10.9.0.5 is outside the tenant network 10.210.0.0/24"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tenantry.msp.plugins.module_utils._switch.runner import (
    IOS_ARGUMENT_SPEC,
    REQUIRED_IF,
    run_ios,
)


def main() -> None:
    module = AnsibleModule(argument_spec=IOS_ARGUMENT_SPEC, required_if=REQUIRED_IF, supports_check_mode=True)
    run_ios(module)


if __name__ == "__main__":
    main()

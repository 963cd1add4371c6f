# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""ARP lock for tenant switch ports: one binding model, a Cisco IOS and a Linux bridge (nftables) backend.

- ``bindings``  the data every backend takes (port, MAC, IP, tenant network, VLAN), its validation
  and the meaning of the resource-module states at binding level;
- ``ios_templates`` / ``ios``  per-feature parser and template pairs for IOS running-config and the
  command generation for merged / replaced / overridden / deleted;
- ``nftables``  the bridge-family table that enforces the same lock on a Linux bridge;
- ``runner``  binds both backends to an AnsibleModule.
"""

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # The options of plugins/module_utils/argument_spec.py:vsphere_argument_spec().
    DOCUMENTATION = r"""
options:
  hostname:
    description:
      - Host name or IP address of the vCenter (or ESXi) endpoint.
      - Falls back to the environment variable E(VMWARE_HOST).
    type: str
    required: true
  username:
    description:
      - User to log in as. Falls back to E(VMWARE_USER).
    type: str
    required: true
    aliases: [user]
  password:
    description:
      - Password of O(username). Falls back to E(VMWARE_PASSWORD). Never logged.
    type: str
    required: true
    aliases: [pass]
  port:
    description:
      - HTTPS port of the endpoint. Falls back to E(VMWARE_PORT).
    type: int
    default: 443
  validate_certs:
    description:
      - Verify the endpoint's TLS certificate and host name. Falls back to E(VMWARE_VALIDATE_CERTS).
      - Turn off only in a throw-away lab; prefer O(ca_file).
    type: bool
    default: true
  ca_file:
    description:
      - PEM file of the CA that signed the endpoint's certificate, when it is not in the system store.
      - Falls back to E(VMWARE_CA_FILE).
    type: path
  timeout:
    description:
      - Seconds to wait for the connection and for each wait on vSphere tasks.
    type: int
    default: 60
attributes:
  platform:
    platforms: posix
    details: Talks to the vSphere API over HTTPS with pyVmomi, from the controller or any host that has it and
      reaches the endpoint.
requirements:
  - pyVmomi >= 8.0
notes:
  - Give the connection options once per play with C(module_defaults) and the action group
    C(group/tenantry.msp.vsphere).
"""

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: tenant_info
short_description: Read the Director's tenants with their connection status
version_added: 0.1.0
description:
  - Returns every tenant (or the one named) as the Director holds it, with its live connection status
    (online or not, since when, the last heartbeat, the Transporter's address, version and host name).
  - Use it with C(until) to wait for Transporters to come online after enrollment or an uplink port move.
author:
  - tenantry maintainers (@tenantry)
options:
  name:
    description:
      - Only this tenant. An unknown name returns an empty list (it does not fail).
    type: str
extends_documentation_fragment:
  - tenantry.msp.director
  - tenantry.msp.attributes
  - tenantry.msp.attributes.info_module
"""

EXAMPLES = r"""
- name: Wait until both Transporters are online
  tenantry.msp.tenant_info:
    director_url: https://director.example:4443
    admin_token: "{{ vault_director_admin_token }}"
    ca_file: /etc/tenantry/director-ca.crt
  register: tenants
  until: tenants.online | length == 2
  retries: 30
  delay: 2

- name: One tenant
  tenantry.msp.tenant_info:
    name: acme
  register: acme

- name: Report its state
  ansible.builtin.debug:
    msg: "acme is {{ acme.tenants[0].status.state }}"
"""

RETURN = r"""
tenants:
  description: Tenants sorted by name, each with C(status) (C(state) is one of C(online), C(offline),
    C(awaiting_enrollment), C(revoked), C(local)). Secrets are never part of it.
  returned: always
  type: list
  elements: dict
  sample: [{id: 1d3b6b1e-8a43-4f07-9b0b-6a2f6f0f2a11, name: acme, kind: remote, description: "", contact: "",
            workload_quota: 0, revoked_at: null, direct_connect: null,
            status: {online: true, state: online, since: 1795305827.17, last_heartbeat: 1795305828.99,
                     address: "203.0.113.7:46006", version: 0.1.0, hostname: backup01, enrolled: true}}]
online:
  description: Names of the tenants whose Transporter is connected now, sorted.
  returned: always
  type: list
  elements: str
  sample: [acme]
"""

from ansible_collections.tenantry.msp.plugins.module_utils._diff import exit_result
from ansible_collections.tenantry.msp.plugins.module_utils._director_base import (
    TENANT_INFO_ARGUMENT_SPEC,
    director_module,
    run,
    tenants_info,
)


def main() -> None:
    module = director_module(argument_spec=TENANT_INFO_ARGUMENT_SPEC, supports_check_mode=True)
    exit_result(module, run(module, lambda client: tenants_info(client, module.params["name"])))


if __name__ == "__main__":
    main()

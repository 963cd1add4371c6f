#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_restore
short_description: Restore a VM from a tenant's backup, to its site or into production
version_added: 0.1.0
description:
  - O(destination=site) restores the VM back to the tenant's site through its Transporter (disks uploaded to the
    site's datastore, the VM registered).
  - O(destination=production) is disaster recovery from backup, when the replica target is gone - the Director
    restores the VM into the MSP's production vCenter (O(vcenter)) as a new VM.
  - The task follows the restore to its end and fails with its message when it failed.
author:
  - tenantry maintainers (@tenantry)
options:
  tenant:
    description: The tenant's name on the Director.
    type: str
    required: true
  vm:
    description: The backed-up VM.
    type: str
    required: true
  snapshot:
    description: The backup (snapshot id or a unique prefix), or V(latest).
    type: str
    default: latest
  destination:
    description: Where to restore.
    type: str
    choices: [site, production]
    default: site
  name:
    description: The restored VM's name (default the backed-up VM's).
    type: str
  replace:
    description: Remove an existing VM of that name first (the restore of a broken VM in place).
    type: bool
    default: false
  datastore:
    description: The datastore for its files (default the original one when it exists, else the first).
    type: str
  folder:
    description: A VM folder path below the datacenter's VM folder, for example V(tenants/acme).
    type: str
  resource_pool:
    description: A resource pool name (default the first cluster's root pool).
    type: str
  host:
    description: An ESXi host name.
    type: str
  power_on:
    description: Power the VM on once registered.
    type: bool
    default: false
  network_map:
    description: Backed-up network name to the network its NICs join at the destination.
    type: dict
    default: {}
  vcenter:
    description: The production vCenter (O(destination=production)); the password serves this restore only.
    type: dict
    suboptions:
      hostname: {description: Host name or address., type: str, required: true}
      port: {description: HTTPS port., type: int, default: 443}
      username: {description: User., type: str, required: true}
      password: {description: Password., type: str, required: true}
      ca_file:
        description: CA certificate file (on the Director host) that signed the vCenter's certificate.
        type: str
      validate_certs: {description: Verify the vCenter's certificate., type: bool, default: true}
      datacenter: {description: The datacenter (default the first)., type: str}
  wait:
    description: Follow the restore until it ends.
    type: bool
    default: true
  timeout:
    description: Seconds to wait; past it the task fails and the restore goes on.
    type: int
    default: 14400
extends_documentation_fragment:
  - tenantry.msp.director
  - tenantry.msp.attributes
  - tenantry.msp.attributes.check_mode_full
  - tenantry.msp.attributes.diff_none
attributes:
  check_mode:
    details: Checks that a backup of the VM exists and reports a change; nothing is restored.
  diff_mode:
    details: >-
      A restore creates a VM; there is no before and after of a setting to show (the result names the restored
      VM and its disks).
"""

EXAMPLES = r"""
- name: Put acme-app01 back as it was at its last backup
  tenantry.msp.backup_restore:
    tenant: acme
    vm: acme-app01
    replace: true

- name: Disaster recovery from backup into the MSP's production cluster
  tenantry.msp.backup_restore:
    tenant: acme
    vm: acme-sql01
    destination: production
    name: acme-sql01-dr
    datastore: prod-ds-01
    folder: tenants/acme
    power_on: true
    vcenter:
      hostname: vcenter.msp.example
      username: "{{ vault_vcenter_user }}"
      password: "{{ vault_vcenter_password }}"
"""

RETURN = r"""
run:
  description: The restore run as the Director recorded it; C(detail) names the VM, its datastore, disks and
    bytes written.
  returned: always
  type: dict
"""

from ansible_collections.tenantry.msp.plugins.module_utils._backup_base import (
    RESTORE_ARGUMENT_SPEC,
    RestoreRun,
    exit_run,
)
from ansible_collections.tenantry.msp.plugins.module_utils._director_base import director_module, run


def main() -> None:
    module = director_module(
        argument_spec=RESTORE_ARGUMENT_SPEC,
        required_if=[("destination", "production", ["vcenter"])],
        supports_check_mode=True,
    )
    result = run(module, RestoreRun(module.params, module.check_mode))
    exit_run(module, result, "restore")


if __name__ == "__main__":
    main()

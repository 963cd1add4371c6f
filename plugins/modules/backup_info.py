#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_info
short_description: Read tenants' backups, jobs, repository usage and runs from the Director
version_added: 0.1.0
description:
  - With O(tenant) - its repository (settings, usage, last check and copy), jobs, backups and latest runs.
  - Without - one line per tenant with backups (where, usage, quota, latest run), the MSP's dashboard.
  - With O(run_id) - that run, with its live progress while it runs.
author:
  - tenantry maintainers (@tenantry)
options:
  tenant:
    description: A tenant's name.
    type: str
  vm:
    description: Only the backups of this VM.
    type: str
  run_id:
    description: One run.
    type: int
  runs:
    description: How many of the tenant's latest runs.
    type: int
    default: 10
extends_documentation_fragment:
  - tenantry.msp.director
  - tenantry.msp.attributes
  - tenantry.msp.attributes.info_module
"""

EXAMPLES = r"""
- name: Acme's backups of acme-app01
  tenantry.msp.backup_info:
    tenant: acme
    vm: acme-app01
  register: info
"""

RETURN = r"""
repository:
  description: The tenant's repository (with O(tenant)).
  returned: with tenant
  type: dict
jobs:
  description: The tenant's backup jobs.
  returned: with tenant
  type: list
  elements: dict
backups:
  description: The tenant's backups, newest first (C(id), C(vm), C(time), C(total_bytes), C(added_bytes),
    C(uplink_bytes), C(copied)).
  returned: with tenant
  type: list
  elements: dict
runs:
  description: The tenant's latest runs.
  returned: with tenant
  type: list
  elements: dict
overview:
  description: Per tenant with backups - location, usage, quota, latest run.
  returned: without tenant and run_id
  type: list
  elements: dict
run:
  description: The run (with O(run_id)).
  returned: with run_id
  type: dict
"""

from ansible_collections.tenantry.msp.plugins.module_utils._backup_base import INFO_ARGUMENT_SPEC, backup_info
from ansible_collections.tenantry.msp.plugins.module_utils._diff import exit_result
from ansible_collections.tenantry.msp.plugins.module_utils._director_base import director_module, run


def main() -> None:
    module = director_module(argument_spec=INFO_ARGUMENT_SPEC, supports_check_mode=True)
    exit_result(module, run(module, lambda client: backup_info(client, module.params)))


if __name__ == "__main__":
    main()

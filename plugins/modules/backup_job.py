#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_job
short_description: Declare a tenant's backup job on the Director
version_added: 0.1.0
description:
  - A backup job names the tenant's VMs (at its site, reached by its Transporter), when they are backed up and
    how long backups are kept (restic's keep rules, per VM). The Director runs it on schedule or on demand
    (M(tenantry.msp.backup_now)); each VM is one task on the tenant's Transporter, at most the Expert Setting
    C(max_concurrent_tasks) at once.
  - The whole job is declared by each task (options not given take their defaults).
author:
  - tenantry maintainers (@tenantry)
options:
  tenant:
    description: The tenant's name on the Director.
    type: str
    required: true
  name:
    description: The job's name, lower-case letters, digits and dashes.
    type: str
    required: true
  vms:
    description: The VMs, by name in the site's vCenter. Required unless O(state=absent).
    type: list
    elements: str
  schedule:
    description: Five-field cron in UTC (minute hour day month weekday), for example V(0 2 * * *); empty for
      on-demand only.
    type: str
    default: ""
  retention:
    description: restic's C(--keep-*) per VM, applied by the MSP after each run; all zero keeps everything.
    type: dict
    default: {}
    suboptions:
      keep_last: {description: The newest N backups., type: int, default: 0}
      keep_hourly: {description: The newest backup of each of the last N hours., type: int, default: 0}
      keep_daily: {description: The newest backup of each of the last N days., type: int, default: 0}
      keep_weekly: {description: The newest backup of each of the last N weeks., type: int, default: 0}
      keep_monthly: {description: The newest backup of each of the last N months., type: int, default: 0}
      keep_yearly: {description: The newest backup of each of the last N years., type: int, default: 0}
  changed_blocks:
    description: Read only the areas vSphere's changed-block tracking reports since the last backup (the job
      turns tracking on for its VMs).
    type: bool
    default: false
  enabled:
    description: A disabled job keeps its definition and backups but does not run on schedule.
    type: bool
    default: true
  state:
    description: V(absent) removes the job (its backups stay until retention removes them).
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - tenantry.msp.director
  - tenantry.msp.attributes
  - tenantry.msp.attributes.check_mode_full
  - tenantry.msp.attributes.diff_full
attributes:
  check_mode:
    details: Reports what would change and sends nothing.
  diff_mode:
    details: The job's definition before and after.
"""

EXAMPLES = r"""
- name: Acme's VMs every night at 02:00 UTC, a week of dailies and a year of monthlies
  tenantry.msp.backup_job:
    tenant: acme
    name: nightly
    vms: [acme-dc01, acme-sql01, acme-app01]
    schedule: "0 2 * * *"
    retention: {keep_last: 3, keep_daily: 7, keep_weekly: 4, keep_monthly: 12}
    changed_blocks: true
"""

RETURN = r"""
job:
  description: The job as the Director holds it after the run (with C(next_run_at)); empty when absent.
  returned: always
  type: dict
  sample: {name: nightly, tenant: acme, vms: [acme-dc01], schedule: "0 2 * * *", enabled: true,
           retention: {keep_last: 3, keep_daily: 7}, changed_blocks: true, next_run_at: 1796346000.0}
"""

from ansible_collections.tenantry.msp.plugins.module_utils._backup_base import JOB_ARGUMENT_SPEC, JobRun
from ansible_collections.tenantry.msp.plugins.module_utils._diff import exit_result
from ansible_collections.tenantry.msp.plugins.module_utils._director_base import director_module, run


def main() -> None:
    module = director_module(
        argument_spec=JOB_ARGUMENT_SPEC, required_if=[("state", "present", ["vms"])], supports_check_mode=True
    )
    exit_result(module, run(module, JobRun(module.params, module.check_mode)))


if __name__ == "__main__":
    main()

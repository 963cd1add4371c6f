#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_repository
short_description: Declare a tenant's backup repository on the Director
version_added: 0.1.0
description:
  - Declares where a tenant's backups go and the MSP's rules for them (docs/backup.md). With
    O(location=msp) the Director keeps the tenant's restic repository (its own key, append-only for the
    tenant, a quota enforced at write time) and creates it on the first run.
  - O(location=site) is for a tenant with its own standalone instance, which backs up into a repository at
    its site; the Director only sees the status of its jobs and the repository's usage.
  - Only options that are given are managed; the rest keep their current values (or the defaults for a new
    repository). A repository is never removed by this module; its backups leave with the MSP's retention.
author:
  - tenantry maintainers (@tenantry)
options:
  tenant:
    description: The tenant's name on the Director.
    type: str
    required: true
  location:
    description: V(msp) (the repository at the MSP, through the uplink) or V(site) (the tenant's own). Fixed once
      the repository holds backups.
    type: str
    choices: [msp, site]
  quota_gb:
    description: Bytes the repository may hold, in GiB; uploads past it are refused and the job fails with the
      reason. V(0) removes the quota.
    type: float
  secondary:
    description: 3-2-1 - after every backup run copy the snapshots to the secondary repository (another disk or
      host, the Director's C(secondary_repository_root)) and verify the copy.
    type: bool
  check_subset:
    description: The share of data restic reads back in scheduled checks (C(restic check --read-data-subset)),
      for example V(5%) or V(1/10).
    type: str
  check_schedule:
    description: When the MSP checks the repository, five-field cron in UTC; an empty string never.
    type: str
extends_documentation_fragment:
  - tenantry.msp.director
  - tenantry.msp.attributes
  - tenantry.msp.attributes.check_mode_full
  - tenantry.msp.attributes.diff_full
attributes:
  check_mode:
    details: Reports what would change and sends nothing.
  diff_mode:
    details: The repository settings before and after.
"""

EXAMPLES = r"""
- name: Acme's backups at the MSP, 500 GiB, copied to the second disk
  tenantry.msp.backup_repository:
    tenant: acme
    quota_gb: 500
    secondary: true
    check_subset: 5%
"""

RETURN = r"""
repository:
  description: The repository as the Director holds it after the run (settings, usage, last check and copy).
  returned: always
  type: dict
  sample: {tenant: acme, location: msp, quota_bytes: 536870912000, secondary: true, used_bytes: 123456789,
           snapshots: 12, last_check_ok: true, last_copy_ok: true}
"""

from ansible_collections.tenantry.msp.plugins.module_utils._backup_base import REPOSITORY_ARGUMENT_SPEC, RepositoryRun
from ansible_collections.tenantry.msp.plugins.module_utils._diff import exit_result
from ansible_collections.tenantry.msp.plugins.module_utils._director_base import director_module, run


def main() -> None:
    module = director_module(argument_spec=REPOSITORY_ARGUMENT_SPEC, supports_check_mode=True)
    exit_result(module, run(module, RepositoryRun(module.params, module.check_mode)))


if __name__ == "__main__":
    main()

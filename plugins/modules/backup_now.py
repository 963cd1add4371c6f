#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_now
short_description: Run a tenant's backup job now and wait for it
version_added: 0.1.0
description:
  - Starts a run of a backup job on the Director (all its VMs, or some of them) and follows it to the end.
    The task fails with the run's message when a VM failed; the run's details (snapshot, bytes read, added
    and sent over the uplink per VM) come back either way.
author:
  - tenantry maintainers (@tenantry)
options:
  tenant:
    description: The tenant's name on the Director.
    type: str
    required: true
  job:
    description: The backup job.
    type: str
    required: true
  vms:
    description: Some of the job's VMs (default all).
    type: list
    elements: str
  wait:
    description: Follow the run until it ends (else return at once with the run's id).
    type: bool
    default: true
  timeout:
    description: Seconds to wait; past it the task fails and the run goes on.
    type: int
    default: 14400
extends_documentation_fragment:
  - tenantry.msp.director
  - tenantry.msp.attributes
  - tenantry.msp.attributes.check_mode_full
  - tenantry.msp.attributes.diff_none
attributes:
  check_mode:
    details: Checks that the job exists and reports a change; nothing runs.
  diff_mode:
    details: >-
      A run adds a backup to the repository; there is no before and after of a setting to show (the result
      lists what each VM cost).
"""

EXAMPLES = r"""
- name: Back up acme-app01 now
  tenantry.msp.backup_now:
    tenant: acme
    job: nightly
    vms: [acme-app01]
  register: backup
"""

RETURN = r"""
run:
  description: The run as the Director recorded it (C(state) succeeded, failed or cancelled; per-VM C(detail)).
  returned: always
  type: dict
vms:
  description: Per VM, C(snapshot_id), C(mode) (full, incremental, changed-blocks), C(total_bytes) (disk size),
    C(data_added) (new data, before compression), C(uplink_bytes) (what crossed the uplink) and C(seconds).
  returned: always
  type: dict
  sample: {acme-app01: {ok: true, snapshot_id: 3f0a..., mode: incremental, total_bytes: 17179869184,
           data_added: 52428800, uplink_bytes: 30408704, seconds: 41.2}}
"""

from ansible_collections.tenantry.msp.plugins.module_utils._backup_base import (
    BACKUP_NOW_ARGUMENT_SPEC,
    BackupNowRun,
    exit_run,
)
from ansible_collections.tenantry.msp.plugins.module_utils._director_base import director_module, run


def main() -> None:
    module = director_module(argument_spec=BACKUP_NOW_ARGUMENT_SPEC, supports_check_mode=True)
    result = run(module, BackupNowRun(module.params, module.check_mode))
    exit_run(module, result, "backup run")


if __name__ == "__main__":
    main()

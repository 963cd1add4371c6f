#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: failover_info
short_description: Read a tenant's failover run journal, optionally waiting for a step to end
version_added: 0.2.0
description:
  - Reads the journal M(tenantry.msp.failover) keeps for each run on the controller and returns the run's
    state, each step's outcome, the progress lines and, once the run ended, the report's summary.
  - With O(wait_for), waits until the run of O(attempt_id) is journaled (V(started)) or until one of its
    steps ended in this attempt; the role C(tenantry.msp.failover) follows a running failover this way,
    one step per loop item. It stops waiting when the run's process ended or O(job_file) says so.
  - Reads only; changes nothing, except that O(remove_job_file) removes the job file whose result it returned.
    An awaited step that had nothing to do (or was not reached) is reported as
    skipped.
  - With a local connection (the failover role's), an action plugin reads the journal on the controller
    itself, so following a run step by step starts no Python process per step; a journal file is parsed again
    only when it changed.
author:
  - tenantry maintainers (@tenantry)
options:
  tenant:
    description: The tenant's name.
    type: str
    required: true
  journal_dir:
    description: Where M(tenantry.msp.failover) keeps its journals.
    type: path
    default: ~/.local/state/tenantry/failover/journal
  report_dir:
    description: Where M(tenantry.msp.failover) writes its reports.
    type: path
    default: ~/.local/state/tenantry/failover/reports
  run_id:
    description:
      - The run to read.
      - Default is the run of O(attempt_id), else the tenant's unfinished run, else its last.
    type: str
  attempt_id:
    description: The O(tenantry.msp.failover#module:attempt_id) of the invocation to follow.
    type: str
  wait_for:
    description:
      - V(started) waits until the run of O(attempt_id) is journaled (its preflight passed).
      - A step name (for example V(register)) waits until that step ended in the current attempt; for the run's
        last step, also until the run's process ended.
      - V(result) waits until the asynchronous job in O(job_file) ended and returns that job's result as the
        task's result (as M(ansible.builtin.async_status) does).
    type: str
  job_file:
    description: The C(results_file) of the asynchronous failover task; waiting stops when it holds a result.
    type: path
  remove_job_file:
    description:
      - With O(wait_for=result), remove O(job_file) once its result is read and returned (what
        M(ansible.builtin.async_status) does with C(mode=cleanup), without another task). Not in check mode.
      - The role C(tenantry.msp.failover) sets it; a resumed run reads the run's journal, never the job file.
    type: bool
    default: false
  timeout:
    description: Seconds to wait at most.
    type: int
    default: 3600
  list_vms:
    description:
      - Also read the tenant's VMs live, from its replication targets (O(targets)) and its production folder
        (O(production)), for the tenant portal. Returned as RV(vms).
    type: bool
    default: false
  spec:
    description:
      - The tenant spec (C(tenantry_tenant_spec)); needed with O(list_vms) for the tenant's production folder.
    type: dict
  targets:
    description:
      - With O(list_vms), the tenant's replication targets, as O(tenantry.msp.failover#module:targets).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The target's inventory name (for example C(acme-target-01)).
        type: str
        required: true
      hostname:
        description: Host name or IP address of the target's API.
        type: str
        required: true
      port:
        description: HTTPS port of the target's API.
        type: int
        default: 443
      username:
        description: User to log in as.
        type: str
        required: true
      password:
        description: Password of O(targets[].username). Never logged.
        type: str
        required: true
      validate_certs:
        description: Verify the target's TLS certificate.
        type: bool
        default: true
      ca_file:
        description: PEM file of the CA that signed the target's certificate.
        type: path
      timeout:
        description: Seconds to wait for the connection.
        type: int
        default: 60
  production:
    description:
      - With O(list_vms), the production vCenter and datacenter; omitted, only the targets are read.
    type: dict
    suboptions:
      hostname:
        description: Host name or IP address of the vCenter.
        type: str
        required: true
      port:
        description: HTTPS port.
        type: int
        default: 443
      username:
        description: User to log in as.
        type: str
        required: true
      password:
        description: Password of O(production.username). Never logged.
        type: str
        required: true
      validate_certs:
        description: Verify the vCenter's TLS certificate.
        type: bool
        default: true
      ca_file:
        description: PEM file of the CA that signed the vCenter's certificate.
        type: path
      datacenter:
        description: The production datacenter.
        type: str
        required: true
extends_documentation_fragment:
  - tenantry.msp.attributes
  - tenantry.msp.attributes.info_module
  - tenantry.msp.attributes.action
attributes:
  action:
    details: With a local connection the action plugin reads the journal in the controller's worker;
      with O(list_vms) or another connection the module runs.
  platform:
    platforms: posix
    details: Reads the journal on the host it runs on (the controller, with the failover role).
"""

EXAMPLES = r"""
- name: Where is acme's failover at?
  tenantry.msp.failover_info:
    tenant: acme
  register: run

- name: Print its progress
  ansible.builtin.debug:
    msg: "{{ run.progress }}"
"""

RETURN = r"""
found:
  description: Whether a run was found.
  returned: always
  type: bool
run:
  description: The run's id, mode, flow, status, attempts and times.
  returned: when found
  type: dict
steps:
  description:
    - Each step in order with C(index), C(name), C(title), C(state), C(done), C(failed), C(skipped), C(seconds).
  returned: when found
  type: list
  elements: dict
plan_lines:
  description: The plan the run executes, as text.
  returned: when found
  type: list
  elements: str
progress:
  description: The run's progress lines (one per step that ended, and boot-order waits).
  returned: when found
  type: list
  elements: str
line:
  description: The awaited step's progress line.
  returned: when O(wait_for) names a step
  type: str
ended:
  description: Whether the run's process ended (its journal attempt closed, or O(job_file) holds a result).
  returned: always
  type: bool
finished:
  description:
    - With O(wait_for=result), true when O(job_file) held the job's result (which this task returns, and
      O(remove_job_file) then removed the file).
  returned: when O(wait_for=result) found the job's result
  type: bool
summary:
  description: The report's readable summary, once the run has a report.
  returned: when a report exists
  type: list
  elements: str
vms:
  description:
    - With O(list_vms), every VM of the tenant with C(name), C(where) (V(target), V(production) or V(test copy)),
      C(target), C(power_state), C(cpus), C(memory_mb), C(disk_bytes) and C(vmx).
  returned: when O(list_vms)
  type: list
  elements: dict
vm_errors:
  description: With O(list_vms), the targets or the vCenter that could not be read, and why.
  returned: when O(list_vms)
  type: list
  elements: str
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tenantry.msp.plugins.module_utils._diff import exit_result
from ansible_collections.tenantry.msp.plugins.module_utils._failover.journal import JournalError
from ansible_collections.tenantry.msp.plugins.module_utils._failover.options import INFO_ARGUMENT_SPEC, INFO_REQUIRED_IF
from ansible_collections.tenantry.msp.plugins.module_utils._failover.plan import Tenant
from ansible_collections.tenantry.msp.plugins.module_utils._failover.status import FollowError, follow, query_of
from ansible_collections.tenantry.msp.plugins.module_utils._tenant_vms import list_vms


def main() -> None:
    module = AnsibleModule(argument_spec=INFO_ARGUMENT_SPEC, required_if=INFO_REQUIRED_IF, supports_check_mode=True)
    p = module.params
    listing: dict[str, Any] = {}
    if p["list_vms"]:
        try:
            tenant = Tenant.from_spec(p["spec"])
        except ValueError as exc:
            module.fail_json(msg=str(exc))
        found = list_vms(p["targets"], p["production"], tenant.folder, tenant.test_folder)
        listing = {"vms": found["vms"], "vm_errors": found["errors"]}
    try:
        remove = p["remove_job_file"] and not module.check_mode
        result = follow(query_of(p), p["wait_for"], p["job_file"], p["timeout"], remove_job_file=remove)
    except (FollowError, JournalError) as exc:
        module.fail_json(msg=str(exc), **listing)
    exit_result(module, {**result, **listing})


if __name__ == "__main__":
    main()

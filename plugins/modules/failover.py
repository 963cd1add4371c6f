#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: failover
short_description: Fail over, test, fail back or roll back one tenant's VMs (replication targets, production)
version_added: 0.2.0
description:
  - The tenant's VMs live as replicas on the tenant NFS datastore, registered on its nested ESXi replication
    targets. O(mode=failover) registers them in the production vCenter (tenant folder and resource pool),
    unregisters them from the targets, moves their NICs to a destination VLAN portgroup, grants the tenant's
    production account its role on them, powers them on in boot order, storage vMotions them to production
    datastores and unmounts the NFS datastore.
  - O(mode=test) leaves the targets untouched and starts copies on an isolated network with no uplink;
    O(mode=cleanup) removes the copies and the isolated network. O(mode=failback) is the reverse of a failover.
    O(mode=rollback) undoes the tenant's last failover (a failback of its VMs) or test (a cleanup).
  - A plan first. Check mode reads both sides, runs the preflight checks and returns the plan (every step with
    the VMs it acts on and those it skips, and why) without changing anything. A real run refuses, before any
    change, a plan whose preflight fails.
  - Each step acts on all VMs at once (many vSphere tasks, one property-collector wait), with a bounded fan-out.
  - Every step of every VM is journaled under O(journal_dir). Running the same mode again after an interruption
    resumes the run; a VM is always registered on its new side before it is unregistered from its old side, so
    it is never left unregistered everywhere.
  - Each run writes a report (JSON) with per-step and per-VM times, the RTO (time until all VMs are powered on)
    and what was skipped or retried, and returns a readable summary.
  - See C(docs/failover.md) in the collection for the design and the guarantees.
author:
  - tenantry maintainers (@tenantry)
options:
  mode:
    description:
      - What to do. V(rollback) picks the tenant's unfinished (or last) failover or test run.
    type: str
    choices: [failover, test, failback, rollback, cleanup]
    default: failover
  tenant:
    description:
      - The tenant spec as the C(tenantry.msp.tenants) inventory plugin gives it (C(tenantry_tenant_spec)).
      - Uses C(name), C(id), C(nfs), C(production), C(portgroups.destinations) and C(failover).
    type: dict
    required: true
  vms:
    description:
      - The VMs to act on; all VMs on the tenant's replication targets when empty.
      - A name that is not on a target (nor, for a repeated failover, already in production) is refused.
    type: list
    elements: str
    default: []
  destination_vlan:
    description:
      - The production VLAN the NICs move to; one of the tenant's C(failover.destination_vlans).
      - May be omitted when the tenant allows exactly one.
    type: int
  production_host:
    description:
      - The production host that mounts the NFS datastore and runs the VMs first.
      - When omitted, the connected host with the destination portgroup and most free memory.
    type: str
  datastores:
    description:
      - Production datastores to storage vMotion the VMs to (and, in test mode, to hold the copies).
      - When empty, every datastore mounted on all connected hosts of O(cluster) that is not NAS-backed.
    type: list
    elements: str
    default: []
  datacenter:
    description: The production datacenter.
    type: str
    required: true
  cluster:
    description: The production cluster (its hosts and root resource pool).
    type: str
    required: true
  production_role:
    description:
      - The vCenter role the tenant's production account gets on each of its VMs and test copies.
      - The default is the collection's role, created by the run (and its privileges put back when they were
        changed) with exactly the privileges of C(PRODUCTION_ROLE) in C(plugins/module_utils/_tenant_role.py) -
        power on, off and reset, answer a question, console, snapshots. Nothing on hosts, networks,
        datastores or other tenants.
      - Another role must exist. C(Admin) is refused unless O(allow_admin_role=true).
    type: str
    default: tenantry-tenant-production
  allow_admin_role:
    description:
      - Allow O(production_role=Admin) (vSphere's Administrator role, every privilege on the tenant's VMs).
    type: bool
    default: false
  check_account:
    description:
      - Look the production account up in the vCenter directory before anything changes.
    type: bool
    default: true
  targets:
    description:
      - The tenant's replication targets, each reached on its own API.
      - Required except for O(mode=cleanup).
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
  max_parallel:
    description: How many vSphere calls or tasks are in flight at once, per step.
    type: int
    default: 16
  vcenter_max_parallel:
    description:
      - How many vSphere calls or tasks all runs on this machine have in flight at once toward the production
        vCenter, together. Runs that share O(journal_dir) share this limit, so 20 tenants failing over at once
        stay under it. Each run still keeps to its own O(max_parallel).
      - V(0) turns the shared limit off.
    type: int
    default: 32
  retries:
    description: How many times a VM's failed step is tried again (after half a second) before the VM drops out.
    type: int
    default: 1
  journal_dir:
    description: Where run journals are kept (one folder per tenant, one JSON file per run).
    type: path
    default: ~/.local/state/tenantry/failover/journal
  report_dir:
    description: Where run reports are written (one folder per tenant, one JSON file per run).
    type: path
    default: ~/.local/state/tenantry/failover/reports
  attempt_id:
    description:
      - An identifier of this invocation, recorded in the journal; M(tenantry.msp.failover_info) finds the run by it.
    type: str
extends_documentation_fragment:
  - tenantry.msp.vsphere
  - tenantry.msp.attributes
  - tenantry.msp.attributes.check_mode_full
  - tenantry.msp.attributes.diff_full
  - tenantry.msp.attributes.action
attributes:
  action:
    details:
      - With a local connection (the failover role's) the action plugin runs the failover in the controller's
        worker, with no module payload or Python start; with C(async) as a detached job that writes the task's
        C(results_file) itself, read by C(async_status) and M(tenantry.msp.failover_info) as usual. Ansible killed
        meanwhile does not stop it; past its C(async) seconds it is stopped and its result says so.
      - With another connection the module runs where the connection goes.
  check_mode:
    details: Reads both sides, runs the preflight checks and returns the plan; changes nothing, writes no journal.
  diff_mode:
    details: Where each VM is registered, its power state, datastores and networks, before and after.
notes:
  - The production vCenter is given by the connection options (or C(module_defaults) for C(group/tenantry.msp.vsphere)).
  - In the lab's simulator, permissions are stored but not enforced and a VM registered from a C(.vmx) comes back
    with default hardware; NICs recorded on the target are then added with their MAC (docs/failover.md).
seealso:
  - module: tenantry.msp.failover_info
"""

EXAMPLES = r"""
- name: Plan a failover of acme to VLAN 310 (check mode changes nothing)
  tenantry.msp.failover:
    tenant: "{{ tenantry_tenant_spec }}"
    destination_vlan: 310
    datacenter: provider
    cluster: production
    targets:
      - name: acme-target-01
        hostname: 10.0.16.17
        username: root
        password: "{{ vault_acme_target_password }}"
  check_mode: true
  register: plan

- name: Fail over two VMs
  tenantry.msp.failover:
    tenant: "{{ tenantry_tenant_spec }}"
    vms: [acme-dc01, acme-sql01]
    destination_vlan: 310
    datacenter: provider
    cluster: production
    targets: "{{ acme_targets }}"

- name: Undo it (back to the replication targets)
  tenantry.msp.failover:
    mode: rollback
    tenant: "{{ tenantry_tenant_spec }}"
    datacenter: provider
    cluster: production
    targets: "{{ acme_targets }}"
"""

RETURN = r"""
status:
  description: V(planned) (check mode), V(nothing to do), V(done) or V(failed).
  returned: always
  type: str
  sample: done
flow:
  description: The steps that ran (V(rollback) of a failover runs V(failback)'s, of a test V(cleanup)'s).
  returned: always
  type: str
  sample: failover
plan:
  description: Every step with the VMs it acts on (C(act)) and those it skips with the reason (C(skip)).
  returned: always
  type: list
  elements: dict
  sample: [{step: register, title: register the VMs in production, per_vm: true, act: [acme-dc01], skip: {}}]
plan_lines:
  description: The plan as text.
  returned: always
  type: list
  elements: str
preflight:
  description: Every preflight check with C(check), C(ok) and C(detail).
  returned: always
  type: list
  elements: dict
preflight_lines:
  description: The preflight checks as text.
  returned: always
  type: list
  elements: str
choices:
  description: The destination VLAN and portgroup, production host and datastores the run uses.
  returned: always
  type: dict
  sample: {destination_vlan: 310, portgroup: tenant-acme-vlan310, production_host: esx-prod-02.lab.local}
run_id:
  description: The journaled run.
  returned: when something was done
  type: str
  sample: 20260105T101502Z-failover-3f2a
journal_file:
  description: Path of the run's journal.
  returned: when something was done
  type: str
report_file:
  description: Path of the run's JSON report.
  returned: when something was done
  type: str
report:
  description: The report (per-step and per-VM times, C(rto_seconds), skipped, retried, failed).
  returned: when something was done
  type: dict
summary:
  description: The report as readable lines.
  returned: when something was done
  type: list
  elements: str
progress:
  description: One line per step as it ended.
  returned: when something was done
  type: list
  elements: str
"""

from ansible_collections.tenantry.msp.plugins.module_utils._diff import exit_result
from ansible_collections.tenantry.msp.plugins.module_utils._failover.api import Hooks
from ansible_collections.tenantry.msp.plugins.module_utils._failover.call import call
from ansible_collections.tenantry.msp.plugins.module_utils._failover.options import ARGUMENT_SPEC
from ansible_collections.tenantry.msp.plugins.module_utils._vsphere_base import vsphere_module


def main() -> None:
    run_module()


def run_module(hooks: Hooks | None = None) -> None:
    """The module; ``hooks`` lets the fault tests stop the run at a chosen action (never set by Ansible)."""
    module = vsphere_module(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    result = call(module.params, module.check_mode, hooks)
    if result.pop("failed", False):
        module.fail_json(**result)
    exit_result(module, result)


if __name__ == "__main__":
    main()

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
  - Reads only; changes nothing. An awaited step that had nothing to do (or was not reached) is reported as
    skipped.
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
    type: str
  job_file:
    description: The C(results_file) of the asynchronous failover task; waiting stops when it holds a result.
    type: path
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
attributes:
  check_mode:
    support: full
    description: Reads only.
  diff_mode:
    support: none
    description: Nothing changes.
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
summary:
  description: The report's readable summary, once the run has a report.
  returned: when a report exists
  type: list
  elements: str
vm_states:
  description:
    - Per VM of the run, the state of each of its steps (C(pending), C(running), C(done), C(failed), C(skipped)).
  returned: when found
  type: dict
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

import json
import os
import time
from pathlib import Path
from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tenantry.msp.plugins.module_utils._failover import report as reporting
from ansible_collections.tenantry.msp.plugins.module_utils._failover.journal import Journal, JournalError
from ansible_collections.tenantry.msp.plugins.module_utils._failover.plan import Tenant
from ansible_collections.tenantry.msp.plugins.module_utils._tenant_vms import list_vms


def _job_ended(path: str | None) -> bool:
    if not path:
        return False
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and ("started" not in data or data.get("finished") in (1, True))


def _alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return False
    return True


def _find(p: dict[str, Any]) -> Journal | None:
    if p["attempt_id"]:
        return Journal.by_attempt(p["journal_dir"], p["tenant"], p["attempt_id"])
    runs = Journal.runs(p["journal_dir"], p["tenant"])
    if p["run_id"]:
        return next((j for j in runs if j.run_id == p["run_id"]), None)
    return Journal.active(p["journal_dir"], p["tenant"]) or (runs[-1] if runs else None)


def _attempt(journal: Journal, attempt_id: str | None) -> dict[str, Any]:
    attempts = journal.data.get("attempts") or [{}]
    if attempt_id:
        for attempt in attempts:
            if attempt.get("id") == attempt_id:
                return dict(attempt)
    return dict(attempts[-1])


def _describe(journal: Journal, p: dict[str, Any]) -> dict[str, Any]:
    data = journal.data
    titles = data.get("step_titles") or {}
    order = data.get("steps_order") or list(data["steps"])
    steps = []
    for index, name in enumerate(order, 1):
        rec = data["steps"].get(name) or {}
        steps.append(
            {
                "index": index,
                "name": name,
                "title": titles.get(name, name),
                "state": rec.get("state", "pending"),
                "done": rec.get("done", 0),
                "failed": rec.get("failed", 0),
                "skipped": rec.get("skipped", 0),
                "retried": rec.get("retried", 0),
                "seconds": rec.get("seconds"),
                "detail": rec.get("detail", ""),
            }
        )
    out: dict[str, Any] = {
        "found": True,
        "run": {
            "run_id": journal.run_id,
            "mode": journal.mode,
            "flow": data.get("flow", journal.mode),
            "status": journal.status,
            "created": data.get("created"),
            "updated": data.get("updated"),
            "attempts": data.get("attempts", []),
            "journal_file": str(journal.path),
        },
        "steps": steps,
        "plan_lines": data.get("plan_lines", []),
        "progress": [e.get("text", "") for e in data.get("events", [])],
        "vm_states": {
            str(vm): {str(k): str((st or {}).get("state", "pending")) for k, st in (rec.get("steps") or {}).items()}
            for vm, rec in (data.get("vms") or {}).items()
            if isinstance(rec, dict)
        },
    }
    report_file = Path(p["report_dir"]) / p["tenant"] / ("%s.json" % journal.run_id)
    if report_file.is_file():
        try:
            out["summary"] = reporting.summary_lines(json.loads(report_file.read_text()))
            out["report_file"] = str(report_file)
        except (OSError, ValueError, KeyError):
            pass
    return out


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "tenant": {"type": "str", "required": True},
            "journal_dir": {"type": "path", "default": "~/.local/state/tenantry/failover/journal"},
            "report_dir": {"type": "path", "default": "~/.local/state/tenantry/failover/reports"},
            "run_id": {"type": "str"},
            "attempt_id": {"type": "str"},
            "wait_for": {"type": "str"},
            "job_file": {"type": "path"},
            "timeout": {"type": "int", "default": 3600},
            "list_vms": {"type": "bool", "default": False},
            "spec": {"type": "dict"},
            "targets": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "name": {"type": "str", "required": True},
                    "hostname": {"type": "str", "required": True},
                    "port": {"type": "int", "default": 443},
                    "username": {"type": "str", "required": True},
                    "password": {"type": "str", "required": True, "no_log": True},
                    "validate_certs": {"type": "bool", "default": True},
                    "ca_file": {"type": "path"},
                    "timeout": {"type": "int", "default": 60},
                },
            },
            "production": {
                "type": "dict",
                "options": {
                    "hostname": {"type": "str", "required": True},
                    "port": {"type": "int", "default": 443},
                    "username": {"type": "str", "required": True},
                    "password": {"type": "str", "required": True, "no_log": True},
                    "validate_certs": {"type": "bool", "default": True},
                    "ca_file": {"type": "path"},
                    "datacenter": {"type": "str", "required": True},
                },
            },
        },
        required_if=[("list_vms", True, ("spec",))],
        supports_check_mode=True,
    )
    p = module.params
    listing: dict[str, Any] = {}
    if p["list_vms"]:
        try:
            tenant = Tenant.from_spec(p["spec"])
        except ValueError as exc:
            module.fail_json(msg=str(exc))
        found = list_vms(p["targets"], p["production"], tenant.folder, tenant.test_folder)
        listing = {"vms": found["vms"], "vm_errors": found["errors"]}
    wait_for = p["wait_for"]
    if wait_for and not p["attempt_id"]:
        module.fail_json(msg="wait_for needs attempt_id: the invocation whose run to follow")
    deadline = time.monotonic() + p["timeout"]
    journal: Journal | None = None
    ended = False
    while True:
        ended = _job_ended(p["job_file"])
        try:
            journal = _find(p)
        except JournalError as exc:
            module.fail_json(msg=str(exc))
        if not wait_for:
            break
        if journal is not None:
            attempt = _attempt(journal, p["attempt_id"])
            ended = ended or attempt.get("ended") is not None or not _alive(attempt.get("pid"))
            if wait_for == "started":
                break
            order = journal.data.get("steps_order") or []
            if wait_for not in order:
                module.fail_json(msg="run %s has no step %s (steps: %s)" % (journal.run_id, wait_for, ", ".join(order)))
            rec = journal.data["steps"].get(wait_for) or {}
            finished = rec.get("state") in ("done", "failed") and (rec.get("ended") or 0) >= (
                attempt.get("started") or 0
            )
            if finished and (wait_for != order[-1] or ended):
                break
        if ended:
            # The run's process is gone: one last read (it may have written its final state).
            journal = _find(p)
            break
        if time.monotonic() > deadline:
            module.fail_json(msg="waited %d s for %s of tenant %s" % (p["timeout"], wait_for, p["tenant"]))
        time.sleep(0.1)

    if journal is None:
        module.exit_json(
            changed=False,
            found=False,
            ended=ended,
            skipped=bool(wait_for),
            msg="no run of tenant %s%s" % (p["tenant"], " (it ended before starting)" if ended else ""),
            **listing,
        )
        return
    out = _describe(journal, p)
    out["ended"] = ended
    skipped = False
    if wait_for and wait_for != "started":
        data = journal.data
        order = data.get("steps_order") or []
        rec = data["steps"].get(wait_for) or {}
        out["line"] = reporting.step_line(data, wait_for, order.index(wait_for) + 1, len(order))
        state = rec.get("state", "pending")
        if state == "pending" or (state == "running" and ended):
            out["line"] = "step %d/%d %s: not reached" % (order.index(wait_for) + 1, len(order), wait_for)
            skipped = True
        elif not rec.get("done") and not rec.get("failed"):
            skipped = True
        out["msg"] = out["line"]
    module.exit_json(changed=False, skipped=skipped, **out, **listing)


if __name__ == "__main__":
    main()

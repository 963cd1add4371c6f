# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""The failover library's surface: ``plan``, ``run`` and ``status`` (and ``follow`` for progress).

``tenantry.msp.failover`` calls ``plan`` in check mode and ``run`` otherwise; ``failover_info``
calls ``status``/``follow``; any other caller (a service, a test) does the same with connected
``VSphereClient`` objects.  Both ``plan`` and ``run`` hold the tenant's lock and go through:

1. select the run to resume or undo (``runs``); 2. read both sides and reconcile them with the
journal (``reconcile``); 3. preflight and choices (``preflight``); 4. the plan, from the flow's
table applied to a projection (``flows``, ``engine.plan``).  ``run`` then journals the run, lets
the ``Engine`` run every step, and writes the RTO report (``report``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ansible_collections.tenantry.msp.plugins.module_utils._failover import engine, runs
from ansible_collections.tenantry.msp.plugins.module_utils._failover import report as reporting
from ansible_collections.tenantry.msp.plugins.module_utils._failover.engine import Engine, Hooks, Settings
from ansible_collections.tenantry.msp.plugins.module_utils._failover.flows import FLOWS, Flow
from ansible_collections.tenantry.msp.plugins.module_utils._failover.journal import JournalError, tenant_lock
from ansible_collections.tenantry.msp.plugins.module_utils._failover.model import Request, Run
from ansible_collections.tenantry.msp.plugins.module_utils._failover.plan import (
    MODES,
    BadInput,
    Check,
    Tenant,
    plan_lines,
)
from ansible_collections.tenantry.msp.plugins.module_utils._failover.preflight import PreflightFailed, preflight
from ansible_collections.tenantry.msp.plugins.module_utils._failover.reconcile import (
    Journals,
    Sites,
    read,
    read_permissions,
    reconcile,
)
from ansible_collections.tenantry.msp.plugins.module_utils._failover.status import (
    FollowError,
    JournalCache,
    Query,
    follow,
    status,
)
from ansible_collections.tenantry.msp.plugins.module_utils._slots import Slots
from ansible_collections.tenantry.msp.plugins.module_utils.clients.vsphere import VSphereClient, VSphereError


class RunFailed(VSphereError):
    """The run ended with VMs that failed a step; the journal and report say which."""

    def __init__(self, message: str, result: dict[str, Any]) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class _Prepared:
    """A run read, reconciled, checked and planned; nothing changed yet."""

    request: Request
    run: Run
    sites: Sites
    journals: Journals
    flow: Flow
    checks: list[Check]
    plan: list[dict[str, Any]]
    projected: Run
    started: float
    read_started: float

    @property
    def lines(self) -> list[str]:
        return plan_lines(self.request.mode, self.run.tenant.name, self.plan)

    def result(self) -> dict[str, Any]:
        return {
            "mode": self.request.mode,
            "flow": self.run.flow,
            "tenant": self.run.tenant.name,
            "plan": self.plan,
            "plan_lines": self.lines,
            "preflight": [c.as_dict() for c in self.checks],
            "preflight_lines": ["preflight:"] + ["  " + c.line() for c in self.checks],
            "choices": self.run.choices.plain(),
            "vms": self.run.order,
        }

    @property
    def will_change(self) -> bool:
        return any(step["act"] for step in self.plan)


def plan(
    tenant: Tenant, request: Request, production: VSphereClient, targets: dict[str, VSphereClient]
) -> dict[str, Any]:
    """Check mode: read both sides, run the preflight, return the plan; changes nothing, journals nothing."""
    with tenant_lock(request.journal_dir, tenant.name):
        prepared = _prepare(tenant, request, production, targets)
    result = prepared.result()
    diff = {"before": prepared.run.placement(), "after": prepared.projected.placement()}
    result.update(changed=prepared.will_change, status="planned", diff=diff)
    return result


def run(
    tenant: Tenant,
    request: Request,
    production: VSphereClient,
    targets: dict[str, VSphereClient],
    hooks: Hooks | None = None,
) -> dict[str, Any]:
    """Plan, then (unless there is nothing to do) run every step, journaled, and report.

    Raises ``BadInput`` or ``PreflightFailed`` (nothing changed), ``RunFailed`` (VMs failed a step;
    the result is in the exception), ``JournalError`` (another run holds the tenant).  ``hooks`` is
    for the fault tests.
    """
    with tenant_lock(request.journal_dir, tenant.name):
        share_vcenter(request, production)
        prepared = _prepare(tenant, request, production, targets)
        if not prepared.will_change and prepared.journals.journal is None:
            runs.close_untouched(request, prepared.run, prepared.journals)
            result = prepared.result()
            result.update(reporting.nothing_to_do(request.mode, prepared.run, request.journal_dir, request.report_dir))
            result.update(changed=False, status="nothing to do")
            return result
        return _execute(prepared, hooks)


def share_vcenter(request: Request, production: VSphereClient) -> None:
    """Every run on this machine toward this vCenter shares ``vcenter_max_parallel`` slots.

    The slots are files under ``<journal_dir>/.vcenter/<host>_<port>/`` (runs share them when they
    share the journal folder, as the role's runs do); each vSphere task or call a run starts holds
    one until it ends, so 20 tenants failing over at once stay under one limit toward vCenter.
    """
    if request.vcenter_max_parallel > 0 and production.slots is None:
        endpoint = "%s_%d" % (production.params.hostname, production.params.port)
        production.slots = Slots(
            Path(request.journal_dir).expanduser() / ".vcenter" / endpoint, request.vcenter_max_parallel
        )


def _prepare(
    tenant: Tenant, request: Request, production: VSphereClient, targets: dict[str, VSphereClient]
) -> _Prepared:
    started = time.time()
    flow_name, journals = runs.select(request, tenant.name)
    flow = FLOWS[flow_name]
    read_started = time.time()
    sites = read(tenant, flow_name, request.datacenter, request.cluster, production, targets)
    model = reconcile(tenant, request.mode, flow_name, request.vms, sites, journals)
    if journals.journal is not None:
        model.run_id = journals.journal.run_id
    read_permissions(model, sites, journals, request.production_role, request.max_parallel)
    recorded = journals.journal.plan if journals.journal is not None else {}
    undone = journals.origin.plan if journals.origin is not None else {}
    checks = preflight(model, sites, request, recorded, undone)
    steps, projected = engine.plan(model, flow.steps)
    return _Prepared(request, model, sites, journals, flow, checks, steps, projected, started, read_started)


def _execute(prepared: _Prepared, hooks: Hooks | None) -> dict[str, Any]:
    request, model = prepared.request, prepared.run
    before = model.placement()
    read_span = (prepared.read_started, time.time())
    journal = runs.open_journal(
        request, model, prepared.journals, prepared.flow.steps, prepared.lines, prepared.started, read_span
    )
    settings = Settings(request.max_parallel, request.retries, request.retry_delay)
    worker = Engine(model, prepared.sites, journal, settings, hooks)
    try:
        worker.execute(prepared.flow.steps)
        runs.close(request, model, prepared.journals, journal)
    except BaseException as exc:
        runs.close_broken(journal, exc)
        reporting.write(request.report_dir, reporting.build(journal.data))
        raise
    report = reporting.build(journal.data)
    result = prepared.result()
    result.update(
        changed=worker.changed,
        status=journal.status,
        run_id=journal.run_id,
        journal_file=str(journal.path),
        report_file=str(reporting.write(request.report_dir, report)),
        report=report,
        summary=reporting.summary_lines(report),
        progress=worker.events,
        diff={"before": before, "after": model.placement()},
    )
    failed = {n: vm.failed for n, vm in model.vms.items() if vm.failed}
    if failed:
        raise RunFailed(_failed_message(request, model, journal.run_id, failed), result)
    return result


def _failed_message(request: Request, model: Run, run_id: str, failed: dict[str, Any]) -> str:
    count = len(model.order)
    return (
        "%s of tenant %s: %d of %d VM%s failed (%s); run %s is journaled: run mode=%s again to resume, "
        "or mode=%s to undo it"
        % (
            request.mode,
            model.tenant.name,
            len(failed),
            count,
            "" if count == 1 else "s",
            "; ".join("%s at %s" % item for item in sorted(failed.items())),
            run_id,
            request.mode,
            "cleanup" if model.flow == "test" else "rollback",
        )
    )


__all__ = [
    "MODES",
    "BadInput",
    "FollowError",
    "Hooks",
    "JournalCache",
    "JournalError",
    "PreflightFailed",
    "Query",
    "Request",
    "RunFailed",
    "Tenant",
    "follow",
    "plan",
    "run",
    "status",
]

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""Which run a request continues or undoes, and the run's journal from its first line to its last.

- ``select``: a failover, test or failback resumes the tenant's unfinished run of its mode (and
  refuses while another mode's run is unfinished); rollback and cleanup find the run they undo.
- ``open_journal``: the run's parameters, choices, plan and every VM's record, before any change.
- ``close``: the attempt's result, and the undone run marked ``rolled_back``.
"""

from __future__ import annotations

import time

from ansible_collections.tenantry.msp.plugins.module_utils._failover.engine import Step
from ansible_collections.tenantry.msp.plugins.module_utils._failover.journal import FINAL, Journal
from ansible_collections.tenantry.msp.plugins.module_utils._failover.model import Request, Run
from ansible_collections.tenantry.msp.plugins.module_utils._failover.plan import BadInput
from ansible_collections.tenantry.msp.plugins.module_utils._failover.reconcile import Journals


def _undo_mode(mode: str) -> str:
    return "cleanup" if mode == "test" else "rollback"


def select(request: Request, tenant: str) -> tuple[str, Journals]:
    """The flow to run and the journals it continues (``journal``) or undoes (``origin``)."""
    mode, directory = request.mode, request.journal_dir
    active = Journal.active(directory, tenant)
    if mode in ("failover", "test", "failback"):
        if active is None:
            return mode, Journals()
        if active.mode != mode:
            raise BadInput(
                [
                    "run %s (%s) of tenant %s did not finish (%s): resume it by running mode=%s again, "
                    "or undo it with mode=%s"
                    % (active.run_id, active.mode, tenant, active.status, active.mode, _undo_mode(active.mode))
                ]
            )
        check_resume(request, tenant, active)
        return mode, Journals(journal=active)
    journals = _undone(request, tenant, active)
    if mode == "cleanup":
        return "cleanup", journals
    if journals.origin is None:
        where = journals.journal.run_id if journals.journal else "rollback"
        raise BadInput(["the run that %s undoes is no longer in %s" % (where, directory)])
    return ("failback" if journals.origin.mode == "failover" else "cleanup"), journals


def _undone(request: Request, tenant: str, active: Journal | None) -> Journals:
    """Rollback and cleanup: their own unfinished run, or the run they undo (unfinished, or the last)."""
    mode = request.mode
    if active is not None and active.mode == mode:
        of = active.data["params"].get("of")
        return Journals(journal=active, origin=_load_run(request, tenant, of) if of else None)
    if active is not None:
        if (mode == "rollback" and active.mode in ("failover", "test")) or (
            mode == "cleanup" and active.mode == "test"
        ):
            return Journals(origin=active)
        raise BadInput(
            [
                "run %s (%s) of tenant %s did not finish (%s): resume it by running mode=%s again first"
                % (active.run_id, active.mode, tenant, active.status, active.mode)
            ]
        )
    modes = ("failover", "test") if mode == "rollback" else ("test",)
    latest = Journal.latest(request.journal_dir, tenant, modes)
    if latest is not None and latest.status != "rolled_back":
        return Journals(origin=latest)
    if mode == "rollback":
        raise BadInput(["tenant %s has no failover or test run to roll back" % tenant])
    return Journals()


def _load_run(request: Request, tenant: str, run_id: str) -> Journal | None:
    return next((j for j in Journal.runs(request.journal_dir, tenant) if j.run_id == run_id), None)


def check_resume(request: Request, tenant: str, journal: Journal) -> None:
    """A resumed run keeps its VMs, destination and host: a request for others is refused."""
    params = journal.data["params"]
    problems = []
    if request.vms and sorted(request.vms) != sorted(journal.vms):
        problems.append("VMs %s" % ", ".join(sorted(journal.vms)))
    if request.destination_vlan and params.get("destination_vlan") not in (None, request.destination_vlan):
        problems.append("destination VLAN %s" % params.get("destination_vlan"))
    if request.production_host and params.get("production_host") not in (None, request.production_host):
        problems.append("production host %s" % params.get("production_host"))
    if problems:
        raise BadInput(
            [
                "run %s of tenant %s did not finish and was started with %s: resume it with the same "
                "choices (or none), or undo it with mode=%s"
                % (journal.run_id, tenant, " and ".join(problems), _undo_mode(journal.mode))
            ]
        )


def close_untouched(request: Request, run: Run, journals: Journals) -> None:
    """Undoing a run that changed nothing: close it, nothing to undo."""
    origin = journals.origin
    if origin is not None and request.mode in ("rollback", "cleanup") and origin.status not in FINAL:
        origin.data["status"] = "rolled_back"
        origin.event("closed by %s: nothing to undo" % request.mode)
        origin.save()


def open_journal(
    request: Request,
    run: Run,
    journals: Journals,
    steps: tuple[Step, ...],
    plan_lines: list[str],
    started: float,
    read: tuple[float, float],
) -> Journal:
    """The run's journal before any change: parameters, choices, plan, every VM's record, the read.

    ``started``: when this attempt started (a new run's start); ``read``: when its read started and ended.
    """
    journal = journals.journal
    if journal is None:
        params = {
            "vms": list(run.order),
            "destination_vlan": run.choices.destination_vlan,
            "production_host": run.choices.production_host,
            "datacenter": request.datacenter,
            "cluster": request.cluster,
        }
        if journals.origin is not None:
            params["of"] = journals.origin.run_id
        journal = journals.journal = Journal.create(request.journal_dir, run.tenant.name, request.mode, params)
        journal.data["created"] = started
    run.run_id = journal.run_id
    journal.data.update(
        flow=run.flow,
        steps_order=[s.name for s in steps],
        step_titles={s.name: s.title for s in steps},
        plan_lines=plan_lines,
        status="running",
    )
    journal.plan.update(run.choices.plain())
    journal.begin_attempt(request.attempt_id)
    for name in run.order:
        journal.set_vm(name, **run.vms[name].record())
    _journal_read(journal, run, read)
    count = len(run.order)
    journal.event(
        "%s of tenant %s: %s %d VM%s"
        % (
            request.mode,
            run.tenant.name,
            "resumed" if len(journal.data["attempts"]) > 1 else "started",
            count,
            "" if count == 1 else "s",
        )
    )
    journal.save()
    return journal


def _journal_read(journal: Journal, run: Run, read: tuple[float, float]) -> None:
    """The read step, done before the journal existed (kept from the first attempt)."""
    step = journal.step("read")
    if step["state"] == "done":
        return
    count = len(run.order)
    step.update(state="done", started=read[0], ended=read[1], done=count, failed=0, skipped=0, retried=0)
    for name in run.order:
        journal.vm_step(name, "read").update(state="done", started=read[0], ended=time.time(), attempts=1)


def close(request: Request, run: Run, journals: Journals, journal: Journal) -> None:
    """The attempt's result; a rollback or cleanup that succeeded marks the run it undid."""
    failed = {n: vm.failed for n, vm in run.vms.items() if vm.failed}
    journal.data["status"] = "failed" if failed else "done"
    journal.end_attempt("failed" if failed else "done", "; ".join("%s: %s" % item for item in sorted(failed.items())))
    origin = journals.origin
    if not failed and origin is not None and request.mode == "rollback":
        origin.data["status"] = "rolled_back"
        origin.event("rolled back by %s" % journal.run_id)
        origin.save()
    if not failed and origin is not None and request.mode == "cleanup":
        origin.data["cleaned_up_by"] = journal.run_id
        if origin.status not in FINAL:
            origin.data["status"] = "rolled_back"
        origin.save()
    journal.save()


def close_broken(journal: Journal, exc: BaseException) -> None:
    """The attempt ended by an error (or an interrupt): journaled as such before it propagates."""
    journal.end_attempt("error", str(exc))
    journal.data["status"] = "failed"
    journal.save()

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""Run one tenant's failover, test failover, failback, rollback or cleanup.

One flow for every mode:

1. lock the tenant; find the run to resume (an unfinished journal) or to undo;
2. read both sides (the replication targets and the tenant's production objects);
3. reconcile: the journal says what was recorded (each VM's .vmx path, origin target,
   NICs, the plan's choices), the read says where each VM is *now*;
4. preflight: refuse, naming the problem, before any change;
5. plan: for every step and VM, act or skip (with the reason), by projecting each
   step's effect on the model, so check mode shows exactly what a run would do;
6. execute step by step: each step acts on all its VMs at once (``run_tasks`` /
   ``run_calls``, bounded fan-out), retries failures, and journals intent before and
   outcome after; a VM that fails a step drops out of the later steps.

Safety: a VM is registered on its new side before it is unregistered from its old
side, and the old side is only unregistered after re-reading the new side; so at every
instant each VM is registered somewhere (docs/failover.md, "Guarantees").
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from ansible_collections.tenantry.msp.plugins.module_utils._failover import report as reporting
from ansible_collections.tenantry.msp.plugins.module_utils._failover.journal import (
    FINAL,
    Journal,
    JournalError,
    tenant_lock,
)
from ansible_collections.tenantry.msp.plugins.module_utils._failover.plan import (
    BadInput,
    Check,
    Step,
    Tenant,
    assign_datastores,
    boot_waves,
    choose_host,
    destination,
    human_bytes,
    plan_lines,
    select_vms,
    steps_for,
)
from ansible_collections.tenantry.msp.plugins.module_utils._failover.sites import (
    COPIED_ANSWER,
    MOVED_ANSWER,
    TAG_ORIGIN_TARGET,
    TAG_ORIGIN_VMX,
    TAG_TENANT,
    TAG_TEST_RUN,
    ProductionSite,
    TargetSite,
    VMRow,
    datastore_of,
    nic_changes,
    path_in_datastore,
)
from ansible_collections.tenantry.msp.plugins.module_utils.clients.vsphere import (
    VSphereClient,
    VSphereError,
    fault_message,
    retrieve_objects,
    run_calls,
    vim,
    vmodl,
)

KILL_ENV = "TENANTRY_FAILOVER_KILL_AT"  # test hook, see docs/failover.md "Testing"


class PreflightFailed(VSphereError):
    """At least one preflight check failed; nothing was changed."""

    def __init__(self, checks: list[Check]) -> None:
        failed = [c for c in checks if not c.ok]
        super().__init__("refused before any change: " + "; ".join("%s: %s" % (c.name, c.detail) for c in failed))
        self.checks = checks


class RunFailed(VSphereError):
    """The run ended with VMs that failed a step; the journal and report say which."""

    def __init__(self, message: str, result: dict[str, Any]) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class Options:
    mode: str = "failover"
    vms: list[str] = field(default_factory=list)
    destination_vlan: int | None = None
    production_host: str | None = None
    datastores: list[str] = field(default_factory=list)
    datacenter: str = "provider"
    cluster: str = "production"
    production_role: str = "Admin"
    check_account: bool = True
    max_parallel: int = 16
    retries: int = 1
    retry_delay: float = 0.5
    journal_dir: str = "~/.local/state/tenantry/failover/journal"
    report_dir: str = "~/.local/state/tenantry/failover/reports"
    attempt_id: str | None = None
    check_mode: bool = False


@dataclass
class VMState:
    """One VM of the run: what was recorded, and where it is registered now."""

    name: str
    origin: str | None = None  # the replication target it came from / goes back to
    vmx: str = ""  # its .vmx on the tenant NFS datastore
    memory_mb: int = 0
    disk_bytes: int = 0
    nics: list[dict[str, Any]] = field(default_factory=list)  # recorded on the target: mac, type
    target: VMRow | None = None  # its registration on the origin target
    prod: VMRow | None = None  # its production registration (test mode: its copy)
    permission: bool | None = None  # None: unknown
    copied: bool = False  # test mode: its files were copied in this attempt
    failed: str | None = None

    def record(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "vmx": self.vmx,
            "memory_mb": self.memory_mb,
            "disk_bytes": self.disk_bytes,
            "nics": [{"mac": n.get("mac"), "type": n.get("type")} for n in self.nics],
        }


def _error(value: Any) -> str | None:
    """``run_tasks``/``run_calls`` return an error message (str) where a call failed."""
    return value if isinstance(value, str) else None


def _prod(vm: VMState) -> VMRow:
    if vm.prod is None:  # pragma: no cover - callers select VMs with a production registration
        raise VSphereError("%s has no production registration" % vm.name)
    return vm.prod


def _target(vm: VMState) -> VMRow:
    if vm.target is None:  # pragma: no cover - callers select VMs with a target registration
        raise VSphereError("%s has no registration on its replication target" % vm.name)
    return vm.target


class Runner:
    """One invocation of the failover module: plan, and unless in check mode, execute."""

    def __init__(
        self,
        tenant: Tenant,
        options: Options,
        production: VSphereClient,
        targets: dict[str, VSphereClient],
    ) -> None:
        self.tenant = tenant
        self.options = options
        self.production_client = production
        self.target_clients = targets
        self.journal: Journal | None = None
        self.origin_journal: Journal | None = None
        self.flow = options.mode
        self.steps: tuple[Step, ...] = ()
        self.vms: dict[str, VMState] = {}
        self.order: list[str] = []
        self.checks: list[Check] = []
        self.choices: dict[str, Any] = {}
        self.events: list[str] = []
        self.changed = False
        self.prod: ProductionSite
        self.sites: dict[str, TargetSite] = {}
        self._times: dict[str, list[float]] = {}
        self._tasks: dict[str, list[Any]] = {}
        self._kill = os.environ.get(KILL_ENV, "")
        self._acted = 0
        self._offsets: dict[int, float] = {}
        self._production: dict[str, VMRow] = {}
        self._copies: dict[str, VMRow] = {}
        self._datastores: dict[str, dict[str, Any]] = {}
        self._isolated: set[str] | None = None
        self._role_id: int | None = None
        self._principal: dict[str, Any] = {"principal": tenant.account, "group": False}
        self._report_path = ""
        self._plan_lines: list[str] = []
        self._note = ""
        self._test_dir = False

    @property
    def _journal(self) -> Journal:
        """The run's journal, once the run is journaled (execution only)."""
        if self.journal is None:  # pragma: no cover - execution starts by opening the journal
            raise VSphereError("the run has no journal yet")
        return self.journal

    # ================================================================ entry
    def run(self) -> dict[str, Any]:
        with tenant_lock(self.options.journal_dir, self.tenant.name):
            return self._run_locked()

    def _run_locked(self) -> dict[str, Any]:
        started = time.time()
        self._select_journal()
        self.steps = steps_for(self.flow)
        self._read()
        self._reconcile()
        self._preflight()
        plan = self._plan()
        lines = plan_lines(self.options.mode, self.tenant.name, plan)
        self._plan_lines = lines
        before = self._placement()
        will_change = any(s["act"] for s in plan)
        result: dict[str, Any] = {
            "mode": self.options.mode,
            "flow": self.flow,
            "tenant": self.tenant.name,
            "plan": plan,
            "plan_lines": lines,
            "preflight": [c.as_dict() for c in self.checks],
            "preflight_lines": ["preflight:"] + ["  " + c.line() for c in self.checks],
            "choices": self._plain_choices(),
            "vms": self.order,
        }
        if self.options.check_mode:
            result.update(changed=will_change, status="planned", diff=self._diff(before, plan))
            return result
        if not will_change and self.journal is None:
            origin = self.origin_journal
            if origin is not None and self.options.mode in ("rollback", "cleanup") and origin.status not in FINAL:
                origin.data["status"] = "rolled_back"  # an interrupted run that changed nothing: close it
                origin.event("closed by %s: nothing to undo" % self.options.mode)
                origin.save()
            result.update(
                changed=False,
                status="nothing to do",
                summary=["%s of tenant %s: nothing to do" % (self.options.mode, self.tenant.name)],
            )
            return result
        self._open_journal(started)
        try:
            self._execute()
        except BaseException as exc:
            self._journal.end_attempt("error", str(exc))
            self._journal.data["status"] = "failed"
            self._journal.save()
            self._write_report()
            raise
        return self._finish(result, before)

    # ====================================================== journal selection
    def _select_journal(self) -> None:
        mode, tenant = self.options.mode, self.tenant.name
        active = Journal.active(self.options.journal_dir, tenant)
        if mode in ("failover", "test", "failback"):
            if active is not None:
                if active.mode != mode:
                    raise BadInput(
                        [
                            "run %s (%s) of tenant %s did not finish (%s): resume it by running mode=%s again, "
                            "or undo it with mode=%s"
                            % (
                                active.run_id,
                                active.mode,
                                tenant,
                                active.status,
                                active.mode,
                                "cleanup" if active.mode == "test" else "rollback",
                            )
                        ]
                    )
                self.journal = active
                self._check_resume_params(active)
            self.flow = mode
            return
        # rollback and cleanup undo another run (the origin)
        if active is not None and active.mode == mode:
            self.journal = active
            of = active.data["params"].get("of")
            self.origin_journal = self._load_run(of) if of else None
        elif active is not None and (
            (mode == "rollback" and active.mode in ("failover", "test"))
            or (mode == "cleanup" and active.mode == "test")
        ):
            self.origin_journal = active
        elif active is not None:
            raise BadInput(
                [
                    "run %s (%s) of tenant %s did not finish (%s): resume it by running mode=%s again first"
                    % (active.run_id, active.mode, tenant, active.status, active.mode)
                ]
            )
        else:
            modes = ("failover", "test") if mode == "rollback" else ("test",)
            latest = Journal.latest(self.options.journal_dir, tenant, modes)
            if latest is not None and latest.status != "rolled_back":
                self.origin_journal = latest
            elif mode == "rollback":
                raise BadInput(["tenant %s has no failover or test run to roll back" % tenant])
        if mode == "cleanup":
            self.flow = "cleanup"
        elif self.origin_journal is None:
            raise BadInput(
                [
                    "the run that %s undoes is no longer in %s"
                    % (self.journal.run_id if self.journal else "rollback", self.options.journal_dir)
                ]
            )
        else:
            self.flow = "failback" if self.origin_journal.mode == "failover" else "cleanup"

    def _load_run(self, run_id: str) -> Journal | None:
        for journal in Journal.runs(self.options.journal_dir, self.tenant.name):
            if journal.run_id == run_id:
                return journal
        return None

    def _check_resume_params(self, journal: Journal) -> None:
        params = journal.data["params"]
        problems = []
        if self.options.vms and sorted(self.options.vms) != sorted(journal.vms):
            problems.append("VMs %s" % ", ".join(sorted(journal.vms)))
        if self.options.destination_vlan and params.get("destination_vlan") not in (
            None,
            self.options.destination_vlan,
        ):
            problems.append("destination VLAN %s" % params.get("destination_vlan"))
        if self.options.production_host and params.get("production_host") not in (None, self.options.production_host):
            problems.append("production host %s" % params.get("production_host"))
        if problems:
            raise BadInput(
                [
                    "run %s of tenant %s did not finish and was started with %s: resume it with the same "
                    "choices (or none), or undo it with mode=%s"
                    % (
                        journal.run_id,
                        self.tenant.name,
                        " and ".join(problems),
                        "cleanup" if journal.mode == "test" else "rollback",
                    )
                ]
            )

    # ================================================================= reads
    def _read(self) -> None:
        """Read every side at once: each target and the production vCenter, in parallel."""
        self._times["read"] = [time.time(), 0.0]
        need_targets = self.flow != "cleanup"
        with ThreadPoolExecutor(max_workers=1 + len(self.target_clients)) as pool:
            prod_future = pool.submit(
                ProductionSite, self.production_client, self.options.datacenter, self.options.cluster, self.tenant
            )
            futures = {}
            if need_targets:
                for name, client in self.target_clients.items():
                    site = TargetSite(name, client)
                    futures[name] = (site, pool.submit(site.read, self.tenant.datastore))
            for _name, (site, future) in sorted(futures.items()):
                try:
                    future.result()
                except LookupError as exc:
                    raise BadInput([str(exc)]) from exc
                self.sites[site.name] = site
            try:
                self.prod = prod_future.result()
            except LookupError as exc:
                raise BadInput([str(exc)]) from exc
        self._production, self._copies = self.prod.vms()

    def _refresh_production(self) -> None:
        """Re-read the tenant's production VMs (one round trip once its folder exists)."""
        if self.prod.folder is None:
            self.prod.locate()
        self._production, self._copies = self.prod.vms()
        for vm in self.vms.values():
            vm.prod = self._match_prod(vm)

    def _refresh_targets(self) -> None:
        for site in self.sites.values():
            site.refresh_vms()
        for vm in self.vms.values():
            vm.target = self._match_target(vm)

    def _match_prod(self, vm: VMState) -> VMRow | None:
        rows = self._copies if self.flow in ("test", "cleanup") else self._production
        row = rows.get(vm.name)
        if row is None:
            return None
        if self.flow in ("test", "cleanup"):
            return row if self._is_copy(row) else None
        if not vm.vmx or vm.vmx in (row.vmx, row.extra.get(TAG_ORIGIN_VMX)):
            return row
        return None

    def _match_target(self, vm: VMState) -> VMRow | None:
        """Its registration on its target: same name and the recorded .vmx (or the one failback used)."""
        site = self.sites.get(vm.origin or "")
        row = site.vms.get(vm.name) if site else None
        if row is None:
            return None
        accepted = {vm.vmx, self._journaled(vm.name, "vmx_back")} - {None, ""}
        return row if not accepted or row.vmx in accepted else None

    def _journaled(self, vm: str, key: str) -> Any:
        for journal in (self.journal, self.origin_journal):
            if journal is not None and key in journal.vms.get(vm, {}):
                return journal.vms[vm][key]
        return None

    def _is_copy(self, row: VMRow) -> bool:
        return bool(datastore_of(row.vmx)) and path_in_datastore(row.vmx).startswith(self.tenant.test_directory + "/")

    # ============================================================ reconcile
    def _reconcile(self) -> None:
        """Which VMs, and what is known of each: the journal's records, then what was read."""
        journal = self.journal or (self.origin_journal if self.flow in ("failback", "cleanup") else None)
        recorded = journal.vms if journal is not None else {}
        on_targets: dict[str, tuple[str, VMRow]] = {}
        duplicates = []
        for site in self.sites.values():
            for name, row in site.vms.items():
                if name in on_targets:
                    duplicates.append("%s (on %s and %s)" % (name, on_targets[name][0], site.name))
                on_targets[name] = (site.name, row)
        if duplicates:
            raise BadInput(["VMs registered on two replication targets: %s" % ", ".join(sorted(duplicates))])
        if self.flow in ("failover", "test") and self.journal is None:
            missing = sorted(n for n, site in self.sites.items() if site.nfs is None)
            if missing and not any(site.vms for site in self.sites.values()):
                raise BadInput(
                    [
                        "NFS datastore %s is missing on replication target %s (and no VM is registered there)"
                        % (self.tenant.datastore, ", ".join(missing))
                    ]
                )
        targets_label = "tenant %s's replication target%s %s" % (
            self.tenant.name,
            "s" if len(self.sites) != 1 else "",
            ", ".join(sorted(self.sites)) or "(none in this run)",
        )

        if self.flow == "failover":
            moved = [n for n, r in self._production.items() if r.extra.get(TAG_TENANT) == self.tenant.name]
            available = set(on_targets) | set(moved) | set(recorded)
            if self.journal is not None:
                names = list(self.journal.vms)
            else:
                names = select_vms(self.options.vms, available, targets_label)
        elif self.flow == "test":
            names = (
                list(self.journal.vms)
                if self.journal is not None
                else select_vms(self.options.vms, on_targets, targets_label)
            )
        elif self.flow == "failback":
            tagged = [n for n, r in self._production.items() if r.extra.get(TAG_ORIGIN_TARGET)]
            if self.journal is not None:
                names = list(self.journal.vms)
            elif self.origin_journal is not None:  # rollback of a failover: its VMs
                names = list(self.origin_journal.vms)
            elif self.options.vms:
                names = select_vms(
                    self.options.vms,
                    set(tagged) | set(on_targets),
                    "tenant %s's production folder %s (failed over) nor on %s"
                    % (self.tenant.name, self.tenant.folder, targets_label),
                )
            else:
                names = sorted(tagged)
        else:  # cleanup
            names = sorted(set(self._copies) | set(recorded))

        for name in names:
            vm = VMState(name=name)
            rec = recorded.get(name, {})
            vm.origin = rec.get("origin")
            vm.vmx = rec.get("vmx") or ""
            vm.memory_mb = int(rec.get("memory_mb") or 0)
            vm.disk_bytes = int(rec.get("disk_bytes") or 0)
            vm.nics = list(rec.get("nics") or [])
            if name in on_targets and self.flow in ("failover", "test"):
                origin, row = on_targets[name]
                if not vm.vmx or row.vmx == vm.vmx:
                    vm.origin, vm.vmx = origin, row.vmx
                    vm.memory_mb, vm.disk_bytes = row.memory_mb, row.disk_bytes
                    vm.nics = [{"mac": n["mac"], "type": n["type"]} for n in row.nics]
            prod_row = (self._copies if self.flow in ("test", "cleanup") else self._production).get(name)
            if prod_row is not None and self.flow == "failback":
                vm.origin = vm.origin or prod_row.extra.get(TAG_ORIGIN_TARGET)
                vm.vmx = vm.vmx or prod_row.extra.get(TAG_ORIGIN_VMX) or prod_row.vmx
                vm.memory_mb = vm.memory_mb or prod_row.memory_mb
                vm.disk_bytes = vm.disk_bytes or prod_row.disk_bytes
            if prod_row is not None and self.flow == "failover" and not vm.vmx:
                vm.vmx = prod_row.extra.get(TAG_ORIGIN_VMX, "")
                vm.origin = vm.origin or prod_row.extra.get(TAG_ORIGIN_TARGET)
            if self.flow == "failback" and not vm.origin and name in on_targets:
                vm.origin = on_targets[name][0]
            self.vms[name] = vm
            vm.prod = self._match_prod(vm)
            vm.target = self._match_target(vm)
        self.order = list(names)
        self._read_permissions()

    def _read_permissions(self) -> None:
        """Whether the account already holds its role on each VM registered before this attempt."""
        if self.flow not in ("failover", "test"):
            return
        role = self.prod.role_id(self.options.production_role)
        self._role_id = role
        if role is None:
            return  # preflight refuses the unknown role
        principal = self.tenant.account
        todo: list[VMState] = []
        for vm in self.vms.values():
            if vm.prod is None:
                continue
            if self.journal is not None and self.journal.vm_step_state(vm.name, "permissions") == "done":
                recorded = self.journal.vms.get(vm.name, {}).get("production_moid")
                if recorded == vm.prod.moid:
                    vm.permission = True
                    continue
            todo.append(vm)
        if todo:

            def check(vm: VMState, role: int = role) -> Callable[[], Any]:
                return lambda: self.prod.has_permission(_prod(vm).obj, principal, role)

            found = run_calls([(vm.name, check(vm)) for vm in todo], self.options.max_parallel, raise_on_error=False)
            for vm in todo:
                vm.permission = found.get(vm.name) is True

    # ============================================================ preflight
    def _preflight(self) -> None:
        checks = self.checks
        flow = self.flow
        plan = self.journal.plan if self.journal is not None else {}
        origin_plan = self.origin_journal.plan if self.origin_journal is not None else {}

        if flow == "failover":
            vlan, portgroup = destination(self.tenant, self.options.destination_vlan or plan.get("destination_vlan"))
            self.choices.update(destination_vlan=vlan, portgroup=portgroup)
            checks.append(Check("destination VLAN", True, "VLAN %d, portgroup %s" % (vlan, portgroup)))
        if flow == "test":
            self.choices["portgroup"] = self.tenant.isolated_portgroup

        # the replication targets and their NFS datastore
        if flow != "cleanup":
            for name, site in sorted(self.sites.items()):
                if site.nfs is None:
                    checks.append(
                        Check(
                            "NFS datastore on %s" % name,
                            False,
                            "NFS datastore %s is missing on replication target %s" % (self.tenant.datastore, name),
                        )
                    )
                    continue
                info = site.nfs_info
                ok = info["accessible"] and info["type"] in ("NFS", "NFS41")
                export = "%s:%s" % (info["remote_host"], info["remote_path"])
                checks.append(
                    Check(
                        "NFS datastore on %s" % name,
                        ok,
                        "%s (%s, %s)"
                        % (self.tenant.datastore, export, "accessible" if info["accessible"] else "NOT accessible")
                        if ok
                        else "%s on %s is %s, not an accessible NFS datastore"
                        % (self.tenant.datastore, name, info["type"] or "unknown"),
                    )
                )
                spec_export = "%s:%s" % (self.tenant.nfs_server, self.tenant.nfs_path)
                if ok and export != spec_export:
                    checks.append(
                        Check(
                            "NFS export on %s" % name,
                            False,
                            "%s mounts %s but the tenant file says %s" % (self.tenant.datastore, export, spec_export),
                        )
                    )
            nas = self._export()
            if self.prod.nfs.obj is not None and nas is not None:
                same = (self.prod.nfs.remote_host, self.prod.nfs.remote_path) == nas
                checks.append(
                    Check(
                        "NFS datastore in production",
                        same,
                        "%s already exists in production on the same export (shared mount)" % self.tenant.datastore
                        if same
                        else "a datastore named %s exists in production on another export (%s:%s)"
                        % (self.tenant.datastore, self.prod.nfs.remote_host, self.prod.nfs.remote_path),
                    )
                )

        self._check_vms()
        if flow in ("failover", "test", "failback"):
            self._choose_host(plan.get("production_host") or origin_plan.get("production_host"))
        if flow == "failover":
            self._choose_datastores(plan.get("datastores") or {})
        if flow == "test":
            self._choose_test_datastore(plan.get("test_datastore"))
        if flow == "cleanup":
            self.choices["test_datastore"] = origin_plan.get("test_datastore") or plan.get("test_datastore")
            self._test_dir = self._copies_directory_exists(self.choices["test_datastore"])
        if flow in ("failover", "test"):
            self._check_account()
            folder = self.tenant.folder if flow == "failover" else self.tenant.test_folder
            exists = self.prod.folder is not None if flow == "failover" else self.prod.test_folder is not None
            checks.append(
                Check(
                    "tenant folder and pool",
                    True,
                    "folder %s %s, resource pool %s %s"
                    % (
                        folder,
                        "exists" if exists else "will be created",
                        self.tenant.resource_pool,
                        "exists" if self.prod.pool is not None else "will be created",
                    ),
                )
            )
        failed = [c for c in checks if not c.ok]
        if failed:
            raise PreflightFailed(checks)

    def _copies_directory_exists(self, datastore: str | None) -> bool:
        """Whether ``[datastore] tenantry-test-<tenant>`` is there (one datastore browser search)."""
        if not datastore:
            return False
        obj = self.prod.index.FindChild(self.prod.datastore_folder, datastore)
        if obj is None:
            return False
        browser = retrieve_objects(self.production_client, [obj], ["browser"])[0]["browser"]
        spec = vim.host.DatastoreBrowser.SearchSpec(matchPattern=[self.tenant.test_directory])
        found = self.production_client.run_tasks(
            [("dir", lambda: browser.SearchDatastore_Task(datastorePath="[%s]" % datastore, searchSpec=spec))],
            1,
            raise_on_error=False,
        ).get("dir")
        if isinstance(found, str) or found is None:
            return "not found" not in str(found).lower()  # unknown: try to delete it
        return any(f.path.rstrip("/") == self.tenant.test_directory for f in found.file or [])

    def _export(self) -> tuple[str, str] | None:
        for site in self.sites.values():
            if site.nfs is not None:
                return site.nfs_info["remote_host"], site.nfs_info["remote_path"]
        if self.prod.nfs.obj is not None:
            return self.prod.nfs.remote_host, self.prod.nfs.remote_path
        return None

    def _check_vms(self) -> None:
        checks, flow = self.checks, self.flow
        problems = []
        active = list(self.vms.values())
        for vm in active:
            if flow in ("failover", "test"):
                if vm.target is None and vm.prod is None:
                    if flow == "failover" and vm.name in self._production:
                        problems.append(
                            "%s: a VM of that name already exists in production folder %s (files %s), "
                            "it is not this tenant's replica"
                            % (vm.name, self.tenant.folder, self._production[vm.name].vmx)
                        )
                    elif flow == "test" and vm.name in self._copies:
                        problems.append(
                            "%s: test folder %s holds a VM of that name that is not a test copy"
                            % (vm.name, self.tenant.test_folder)
                        )
                    elif flow == "test":
                        problems.append("%s: not registered on its replication target" % vm.name)
                    else:
                        problems.append("%s: registered neither on its replication target nor in production" % vm.name)
                    continue
                if flow == "test" and vm.target is None:
                    problems.append("%s: not registered on its replication target" % vm.name)
                if vm.target is not None:
                    if datastore_of(vm.vmx) != self.tenant.datastore:
                        problems.append(
                            "%s: its files (%s) are not on the tenant NFS datastore %s"
                            % (vm.name, vm.vmx, self.tenant.datastore)
                        )
                    if vm.target.power != "poweredOff" and (flow == "failover" and vm.prod is None):
                        problems.append(
                            "%s is %s on replication target %s: a replica must be powered off to fail over"
                            % (vm.name, vm.target.power, vm.origin)
                        )
                if flow == "failover" and vm.prod is None and vm.name in self._production:
                    problems.append(
                        "%s: name clash, production folder %s already holds another VM of that name (files %s)"
                        % (vm.name, self.tenant.folder, self._production[vm.name].vmx)
                    )
            elif flow == "failback":
                if vm.prod is None and vm.target is None:
                    problems.append("%s: registered neither in production nor on its replication target" % vm.name)
                    continue
                if not vm.origin:
                    problems.append(
                        "%s has no %s tag and no journal records where it came from" % (vm.name, TAG_ORIGIN_TARGET)
                    )
                elif vm.origin not in self.sites:
                    problems.append(
                        "%s came from replication target %s, which is not in this run (targets: %s)"
                        % (vm.name, vm.origin, ", ".join(sorted(self.sites)) or "none")
                    )
                elif vm.target is None and vm.name in self.sites[vm.origin].vms:
                    problems.append(
                        "%s: name clash, replication target %s already holds another VM of that name (files %s)"
                        % (vm.name, vm.origin, self.sites[vm.origin].vms[vm.name].vmx)
                    )
            elif flow == "cleanup" and vm.prod is not None and not self._is_copy(vm.prod):
                problems.append(
                    "%s in %s is not a test copy (files %s); it is left alone"
                    % (vm.name, self.tenant.test_folder, vm.prod.vmx)
                )
        checks.append(
            Check(
                "VMs",
                not problems,
                "; ".join(problems)
                if problems
                else "%d VM%s: %s%s"
                % (
                    len(active),
                    "" if len(active) == 1 else "s",
                    ", ".join(self.order[:8]),
                    " ..." if len(self.order) > 8 else "",
                ),
            )
        )

    def _choose_host(self, recorded: str | None) -> None:
        flow = self.flow
        need = sum(vm.memory_mb for vm in self.vms.values() if vm.prod is None) if flow != "failback" else 0
        portgroup = self.choices.get("portgroup", "")
        if flow == "failover":
            network, hosts_with = self.prod.network(portgroup)
            if network is None:
                self.checks.append(
                    Check(
                        "destination portgroup",
                        False,
                        "portgroup %s not found in datacenter %s" % (portgroup, self.options.datacenter),
                    )
                )
                return
            self.choices["network"] = network
        else:
            hosts_with = set(self.prod.hosts)  # the isolated network is created on the chosen host
            portgroup = portgroup or "(none needed)"
        requested = self.options.production_host or recorded
        if flow == "failback" and not requested:
            running = [vm.prod.host for vm in self.vms.values() if vm.prod is not None and vm.prod.host]
            mounted = [h for h in self.prod.nfs.mounted_on if h in self.prod.hosts]
            candidates = mounted or running
            if candidates:
                requested = self.prod.host_name(max(set(candidates), key=candidates.count))
        try:
            host = choose_host(self.prod.host_infos(hosts_with, portgroup), need, requested, portgroup)
        except BadInput as exc:
            self.checks.append(Check("production host", False, "; ".join(exc.errors)))
            return
        moid = self.prod.host_moid(host)
        info = next(i for i in self.prod.host_infos(hosts_with, portgroup) if i.name == host)
        self.choices["production_host"] = host
        self.choices["host_moid"] = moid
        self.checks.append(
            Check(
                "production host",
                True,
                "%s (%s%d MB free memory, the VMs need %d MB)"
                % (host, "given, " if self.options.production_host else "", info.memory_free_mb, need),
            )
        )
        if flow == "failover":
            self.checks.append(Check("destination portgroup", True, "%s exists on %s" % (portgroup, host)))

    def _choose_datastores(self, recorded: dict[str, str]) -> None:
        try:
            shared = self.prod.shared_datastores(self.options.datastores)
        except LookupError as exc:
            self.checks.append(Check("production datastores", False, str(exc)))
            return
        usable = {n: d for n, d in shared.items() if d["accessible"]}
        self._datastores = usable
        nfs_moid = self.prod.nfs.obj._moId if self.prod.nfs.obj is not None else None
        todo = {
            vm.name: vm.disk_bytes
            for vm in self.vms.values()
            if vm.prod is None or (nfs_moid in vm.prod.datastores) or not vm.prod.datastores
        }
        keep = {n: d for n, d in recorded.items() if n in todo and d in usable}
        room = {n: d["free"] - sum(todo[v] for v, ds in keep.items() if ds == n) for n, d in usable.items()}
        try:
            placed = assign_datastores({n: s for n, s in todo.items() if n not in keep}, room) if todo else {}
        except BadInput as exc:
            self.checks.append(Check("production datastores", False, "; ".join(exc.errors)))
            return
        placed.update(keep)
        self.choices["datastores"] = placed
        self.checks.append(
            Check(
                "production datastores",
                True,
                "%s for %s (%s free)"
                % (
                    ", ".join(sorted(set(placed.values()))) or "none needed",
                    human_bytes(sum(todo.values())),
                    human_bytes(sum(d["free"] for d in usable.values())),
                ),
            )
        )

    def _choose_test_datastore(self, recorded: str | None) -> None:
        try:
            shared = self.prod.shared_datastores(self.options.datastores)
        except LookupError as exc:
            self.checks.append(Check("test datastore", False, str(exc)))
            return
        self._datastores = {n: d for n, d in shared.items() if d["accessible"]}
        need = sum(vm.disk_bytes for vm in self.vms.values() if vm.prod is None)
        if recorded and recorded in self._datastores:
            name = recorded
        elif self._datastores:
            name = sorted(self._datastores, key=lambda n: (-self._datastores[n]["free"], n))[0]
        else:
            self.checks.append(Check("test datastore", False, "no production datastore for the test copies"))
            return
        free = self._datastores[name]["free"]
        ok = free >= need
        self.choices["test_datastore"] = name
        self.checks.append(
            Check(
                "test datastore",
                ok,
                "%s: %s free, the copies need %s" % (name, human_bytes(free), human_bytes(need)),
            )
        )

    def _check_account(self) -> None:
        account = self.tenant.account
        if self._role_id is None:
            self.checks.append(
                Check(
                    "production account",
                    False,
                    "role %s not found in the production vCenter; set production_role to an existing role"
                    % self.options.production_role,
                )
            )
            return
        if self.options.check_account:
            found = self.prod.account(account)
            if found is None:
                self.checks.append(
                    Check(
                        "production account",
                        False,
                        "account %s not found in the production vCenter's directory" % account,
                    )
                )
                return
            self._principal = found
        self.checks.append(
            Check(
                "production account",
                True,
                "%s gets role %s on each VM%s"
                % (account, self.options.production_role, "" if self.options.check_account else " (not looked up)"),
            )
        )

    # ================================================================= plan
    def _plan(self) -> list[dict[str, Any]]:
        """Every step with the VMs it acts on and those it skips (and why), from a projection."""
        saved = self._snapshot()
        plan = []
        try:
            for step in self.steps:
                if step.name == "read":
                    plan.append(
                        {"step": "read", "title": step.title, "per_vm": True, "act": list(self.order), "skip": {}}
                    )
                    continue
                if step.per_vm:
                    act, skip = self._partition(step.name)
                    for name in act:
                        self._project(step.name, self.vms[name])
                    plan.append({"step": step.name, "title": step.title, "per_vm": True, "act": act, "skip": skip})
                else:
                    needed, detail = self._shared_needed(step.name)
                    if needed:
                        self._shared_project(step.name)
                    plan.append(
                        {
                            "step": step.name,
                            "title": step.title,
                            "per_vm": False,
                            "act": [detail] if needed else [],
                            "skip": {},
                            "detail": detail,
                        }
                    )
        finally:
            self._restore(saved)
        # "read" only counts as a change when something else does
        if not any(s["act"] for s in plan[1:]):
            plan[0]["act"] = []
        return plan

    def _partition(self, step: str) -> tuple[list[str], dict[str, str]]:
        act, skip = [], {}
        for name in self.order:
            vm = self.vms[name]
            if vm.failed:
                skip[name] = "failed earlier: %s" % vm.failed
                continue
            reason = self._skip_reason(step, vm)
            if reason is None:
                act.append(name)
            else:
                skip[name] = reason
        return act, skip

    # ---------------------------------------------------- per-VM step rules
    def _skip_reason(self, step: str, vm: VMState) -> str | None:
        """``None`` when ``step`` must act on ``vm``, else why not."""
        flow, prod = self.flow, vm.prod
        nfs = self._nfs_key()
        if flow == "failover":
            if step == "register":
                return "already registered in production" if prod is not None else None
            if prod is None:
                return "not registered in production"
            if step == "unregister":
                return None if vm.target is not None else "not registered on its replication target"
            if step == "network":
                return None if self._network_changes(vm)[0] else "already on %s" % self.choices["portgroup"]
            if step == "permissions":
                return None if not vm.permission else "already granted"
            if step == "power_on":
                return None if prod.power != "poweredOn" else "already powered on"
            if step == "relocate":
                on_nfs = nfs in prod.datastores or not prod.datastores
                return None if on_nfs else "already on production datastores"
        if flow == "failback":
            if step == "register":
                if vm.target is not None:
                    return "already registered on %s" % vm.origin
                return None
            if step == "unregister":
                return None if prod is not None else "not registered in production"
            if prod is None:
                return "not registered in production"
            if step == "relocate":
                return None if prod.datastores != [nfs] else "already on %s" % self.tenant.datastore
            if step == "power_off":
                return None if prod.power == "poweredOn" else "already powered off"
        if flow == "test":
            if step == "copy":
                if prod is not None:
                    return "copy already registered"
                return "copied already" if vm.copied else None
            if step == "register":
                return "copy already registered" if prod is not None else None
            if prod is None:
                return "no registered copy"
            if step == "network":
                return None if self._network_changes(vm)[0] else "already on %s" % self.tenant.isolated_portgroup
            if step == "permissions":
                return None if not vm.permission else "already granted"
            if step == "power_on":
                return None if prod.power != "poweredOn" else "already powered on"
        if flow == "cleanup":
            if prod is None:
                return "no registered copy"
            if step == "power_off":
                return None if prod.power == "poweredOn" else "already powered off"
            if step == "destroy":
                return None
        return "not part of %s" % flow  # pragma: no cover - every step is handled above

    def _project(self, step: str, vm: VMState) -> None:
        """The expected effect of ``step`` on ``vm`` (used by the plan, and after success)."""
        flow = self.flow
        host = self.choices.get("host_moid")
        nfs = self._nfs_key()
        if step == "register" and flow in ("failover", "test"):
            vmx = vm.vmx if flow == "failover" else self._copy_vmx(vm)
            vm.prod = VMRow(
                vm.name,
                None,
                "",
                vmx,
                "poweredOff",
                vm.memory_mb,
                vm.disk_bytes,
                [],
                {},
                host,
                [nfs] if flow == "failover" else [],
                None,
            )
            vm.permission = False
        elif step == "register" and flow == "failback":
            vm.target = VMRow(
                vm.name, None, "", vm.vmx, "poweredOff", vm.memory_mb, vm.disk_bytes, [], {}, None, [], None
            )
        elif step == "unregister" and flow == "failover":
            vm.target = None
        elif (step == "unregister" and flow == "failback") or step == "destroy":
            vm.prod = None
        elif step == "copy":
            vm.copied = True
        elif vm.prod is not None:
            if step == "network":
                portgroup = self.choices.get("portgroup", "")
                vm.prod.nics = [dict(n, network=portgroup) for n in (vm.nics or vm.prod.nics)]
                tags = self._tags(vm)
                if vm.prod.extra.get(TAG_TEST_RUN):
                    tags.pop(TAG_TEST_RUN, None)
                vm.prod.extra = dict(vm.prod.extra, **tags)
            elif step == "permissions":
                vm.permission = True
            elif step == "power_on":
                vm.prod.power = "poweredOn"
            elif step == "power_off":
                vm.prod.power = "poweredOff"
            elif step == "relocate" and flow == "failover":
                ds = self._datastores.get(self.choices.get("datastores", {}).get(vm.name, ""), {})
                vm.prod.datastores = [ds.get("moid", "production")]
            elif step == "relocate" and flow == "failback":
                vm.prod.datastores = [nfs]
                vm.prod.host = vm.prod.host if vm.prod.host in self.prod.nfs.mounted_on else host

    # ------------------------------------------------------ shared step rules
    def _snapshot(self) -> tuple[dict[str, VMState], set[str], set[str], Any]:
        """Save the model, and make the live one a copy that projections may change freely."""
        saved = (self.vms, set(self.prod.nfs.mounted_on), self._isolated_hosts(), self.prod.test_folder)
        self.vms = {
            n: replace(
                vm,
                prod=replace(vm.prod) if vm.prod is not None else None,
                target=replace(vm.target) if vm.target is not None else None,
            )
            for n, vm in self.vms.items()
        }
        return saved

    def _restore(self, saved: tuple[dict[str, VMState], set[str], set[str], Any]) -> None:
        self.vms, self.prod.nfs.mounted_on, self._isolated, self.prod.test_folder = saved

    def _isolated_hosts(self) -> set[str]:
        if self._isolated is None:
            _net, hosts = self.prod.network(self.tenant.isolated_portgroup)
            self._isolated = hosts
        return set(self._isolated)

    def _shared_needed(self, step: str) -> tuple[bool, str]:
        host = self.choices.get("host_moid")
        host_name = self.prod.host_name(host)
        mounted = self.prod.nfs.mounted_on
        live = [vm for vm in self.vms.values() if not vm.failed]
        if step == "mount":
            if host in mounted:
                return False, "%s already mounted on %s" % (self.tenant.datastore, host_name)
            if self.flow == "failover":
                needed = any(self._skip_reason("register", vm) is None for vm in live) or any(
                    self._skip_reason("relocate", vm) is None for vm in live
                )
            elif self.flow == "failback":
                needed = any(self._skip_reason("relocate", vm) is None for vm in live) or any(
                    self._skip_reason("register", vm) is None for vm in live
                )
            else:
                needed = any(self._skip_reason("copy", vm) is None for vm in live)
            return needed, "mount %s on %s" % (self.tenant.datastore, host_name) if needed else "not needed"
        if step == "unmount":
            if not mounted:
                return False, "%s is not mounted in production" % self.tenant.datastore
            users = self._nfs_users()
            if users:
                return False, "left mounted: %s still use%s %s" % (
                    ", ".join(users[:5]),
                    "s" if len(users) == 1 else "",
                    self.tenant.datastore,
                )
            if self.flow == "test" and any(self._skip_reason("copy", vm) is None for vm in live):
                return False, "left mounted: copies not made"
            return True, "unmount %s from %s" % (
                self.tenant.datastore,
                ", ".join(sorted(self.prod.host_name(h) for h in mounted)),
            )
        if step == "isolate":
            if host in self._isolated_hosts():
                return False, "%s already on %s" % (self.tenant.isolated_portgroup, host_name)
            return True, "vSwitch %s (no uplink) with portgroup %s on %s" % (
                self.tenant.isolated_vswitch,
                self.tenant.isolated_portgroup,
                host_name,
            )
        if step == "unisolate":
            hosts = self._isolated_hosts()
            if not hosts:
                return False, "no isolated network"
            return True, "remove %s and vSwitch %s from %s" % (
                self.tenant.isolated_portgroup,
                self.tenant.isolated_vswitch,
                ", ".join(sorted(self.prod.host_name(h) for h in hosts)),
            )
        if step == "tidy":
            things = []
            if self.choices.get("test_datastore") and self._test_dir:
                things.append("[%s] %s" % (self.choices["test_datastore"], self.tenant.test_directory))
            if self.prod.test_folder is not None:
                things.append("folder %s" % self.tenant.test_folder)
            if not things:
                return False, "nothing left"
            return True, "remove " + " and ".join(things)
        return False, "not a shared step"  # pragma: no cover

    def _shared_project(self, step: str) -> None:
        host = self.choices.get("host_moid")
        if step == "mount" and host:
            self.prod.nfs.mounted_on = self.prod.nfs.mounted_on | {host}
        elif step == "unmount":
            self.prod.nfs.mounted_on = set()
        elif step == "isolate" and host:
            self._isolated = self._isolated_hosts() | {host}
        elif step == "unisolate":
            self._isolated = set()
        elif step == "tidy":
            self.prod.test_folder = None
            self._test_dir = False

    def _nfs_users(self) -> list[str]:
        """Tenant VMs (production and copies) whose files are on the NFS datastore."""
        nfs = self._nfs_key()
        users = []
        for vm in self.vms.values():
            if vm.prod is not None and nfs in vm.prod.datastores:
                users.append(vm.name)
        for name, row in {**self._production, **self._copies}.items():
            if name not in self.vms and nfs in row.datastores:
                users.append(name)
        return sorted(set(users))

    def _nfs_moid(self) -> str | None:
        return self.prod.nfs.obj._moId if self.prod.nfs.obj is not None else None

    def _nfs_key(self) -> str:
        """The NFS datastore's moid, or a placeholder while it is not mounted in production (plans)."""
        return self._nfs_moid() or "nfs"

    # ============================================================ execution
    def _open_journal(self, started: float) -> None:
        if self.journal is None:
            params = {
                "vms": list(self.order),
                "destination_vlan": self.choices.get("destination_vlan"),
                "production_host": self.choices.get("production_host"),
                "datacenter": self.options.datacenter,
                "cluster": self.options.cluster,
            }
            if self.origin_journal is not None:
                params["of"] = self.origin_journal.run_id
            self.journal = Journal.create(self.options.journal_dir, self.tenant.name, self.options.mode, params)
            self.journal.data["created"] = started
        journal = self._journal
        journal.data["flow"] = self.flow
        journal.data["steps_order"] = [s.name for s in self.steps]
        journal.data["step_titles"] = {s.name: s.title for s in self.steps}
        journal.data["plan_lines"] = self._plan_lines
        journal.data["status"] = "running"
        journal.plan.update(self._plain_choices())
        journal.begin_attempt(self.options.attempt_id)
        for name in self.order:
            vm = self.vms[name]
            journal.set_vm(name, **vm.record())
            if vm.prod is not None and self.flow in ("failover", "test"):
                journal.set_vm(name, production_moid=vm.prod.moid)
        read_start = self._times["read"][0]
        step = journal.step("read")
        if step["state"] != "done":
            step.update(
                state="done",
                started=read_start,
                ended=time.time(),
                done=len(self.order),
                failed=0,
                skipped=0,
                retried=0,
            )
            for name in self.order:
                journal.vm_step(name, "read").update(state="done", started=read_start, ended=time.time(), attempts=1)
        journal.event(
            "%s of tenant %s: %s %d VM%s"
            % (
                self.options.mode,
                self.tenant.name,
                "resumed" if len(journal.data["attempts"]) > 1 else "started",
                len(self.order),
                "" if len(self.order) == 1 else "s",
            )
        )
        journal.save()

    def _execute(self) -> None:
        total = len(self.steps)
        for index, step in enumerate(self.steps, 1):
            if step.name == "read":
                continue
            self._run_step(step, index, total)
        failed = {n: vm.failed for n, vm in self.vms.items() if vm.failed}
        journal = self._journal
        journal.data["status"] = "failed" if failed else "done"
        journal.end_attempt(
            "failed" if failed else "done", "; ".join("%s: %s" % item for item in sorted(failed.items()))
        )
        if not failed and self.origin_journal is not None and self.options.mode == "rollback":
            self.origin_journal.data["status"] = "rolled_back"
            self.origin_journal.event("rolled back by %s" % journal.run_id)
            self.origin_journal.save()
        if not failed and self.origin_journal is not None and self.options.mode == "cleanup":
            self.origin_journal.data["cleaned_up_by"] = journal.run_id
            if self.origin_journal.status not in FINAL:
                self.origin_journal.data["status"] = "rolled_back"
            self.origin_journal.save()
        journal.save()

    def _run_step(self, step: Step, index: int, total: int) -> None:
        journal = self._journal
        record = journal.step(step.name)
        started = time.time()
        if step.per_vm:
            act, skip = self._partition(step.name)
        else:
            needed, detail = self._shared_needed(step.name)
            act, skip = (["*"] if needed else []), {}
            record["detail"] = detail
        record.update(state="running", started=record.get("started") or started, ended=None)
        for name, reason in skip.items():
            vs = journal.vm_step(name, step.name)
            if vs["state"] == "running" and not self.vms[name].failed:
                # Acted on before an interruption and found done now: when exactly is unknown, so the
                # time it was found is recorded (an upper bound, marked reconciled).
                vs.update(state="done", reconciled=True, reason="done before the interruption", ended=started)
            elif vs["state"] != "done":
                vs.update(state="skipped", reason=reason, started=started, ended=started)
        for name in act:
            if name != "*":
                journal.vm_step(name, step.name).update(state="running", started=started, ended=None)
        journal.save()
        self._acted = 0
        self._maybe_die(step.name, 0, len(act))

        outcomes: dict[str, str | None] = {}
        attempts: dict[str, int] = {}
        todo = list(act)
        for attempt in range(1 + max(0, self.options.retries)):
            if not todo:
                break
            if attempt:
                time.sleep(self.options.retry_delay)
            for name in todo:
                attempts[name] = attempts.get(name, 0) + 1
            if todo == ["*"]:
                self._note = ""
                results = self._act_shared(step.name)
                if self._note:
                    record["detail"] = "%s; %s" % (record.get("detail", ""), self._note)
                self._maybe_die(step.name, 1, 1)
            else:
                results = self._act(step.name, todo, len(act))
            outcomes.update(results)
            todo = [n for n in todo if outcomes.get(n)]
        ended = time.time()
        done = [n for n in act if not outcomes.get(n)]
        failed = {n: str(outcomes[n]) for n in act if outcomes.get(n)}
        if step.per_vm:
            for name in act:
                times = self._times.get("%s/%s" % (step.name, name), [started, ended])
                journal.vm_step(name, step.name).update(
                    state="failed" if name in failed else "done",
                    started=times[0],
                    ended=times[1] or ended,
                    attempts=journal.vm_step(name, step.name).get("attempts", 0) + attempts.get(name, 1),
                    error=failed.get(name),
                )
                if name in failed:
                    self.vms[name].failed = "%s: %s" % (step.name, failed[name])
                else:
                    self._record_after(step.name, name)
        elif failed:
            record["error"] = failed.get("*")
        # Counts over every attempt of the run (a resumed step keeps what earlier attempts did);
        # seconds are the time the step was actually running, summed over attempts.
        active = float(record.get("active_seconds") or 0.0) + (ended - started)
        if step.per_vm:
            states = [journal.vm_step_state(n, step.name) for n in self.order]
            counts = {
                "done": states.count("done"),
                "failed": states.count("failed"),
                "skipped": states.count("skipped"),
                "retried": sum(1 for n in self.order if journal.vm_step(n, step.name).get("attempts", 0) > 1),
            }
        else:
            counts = {
                "done": 1 if (act and not failed) or record.get("done") else 0,
                "failed": len(failed),
                "skipped": 0,
                "retried": 1 if attempts.get("*", 1) > 1 else 0,
            }
        record.update(
            state="failed" if failed else "done",
            ended=ended,
            active_seconds=active,
            seconds=round(active, 3),
            **counts,
        )
        if done:
            self.changed = True
        line = reporting.step_line(journal.data, step.name, index, total)
        journal.event(line)
        self.events.append(line)
        journal.save()
        if not step.per_vm and failed:
            raise VSphereError("step %s failed: %s" % (step.name, failed.get("*")))

    def _record_after(self, step: str, name: str) -> None:
        vm = self.vms[name]
        if step == "register" and self.flow in ("failover", "test") and vm.prod is not None:
            self._journal.set_vm(name, production_moid=vm.prod.moid)
        if step == "relocate" and self.flow == "failback" and vm.prod is not None:
            self._journal.set_vm(name, vmx_back=vm.prod.vmx)

    # -------------------------------------------------------------- actions
    def _timed(self, step: str, name: str, start: Callable[[], Any], total: int) -> Callable[[], Any]:
        """``start`` that records when it was called and returned (a VM's several calls: first to last)."""
        key = "%s/%s" % (step, name)

        def go() -> Any:
            began = time.time()
            result = start()
            times = self._times.setdefault(key, [began, 0.0])
            times[0] = min(times[0], began)
            times[1] = max(times[1], time.time())
            if isinstance(result, vim.Task):
                self._tasks.setdefault(key, []).append(result)
            self._acted += 1
            self._maybe_die(step, self._acted, total)
            return result

        return go

    def _tasks_on(
        self, client: VSphereClient, step: str, starters: Iterable[tuple[str, Callable[[], Any]]], total: int
    ) -> dict[str, str | None]:
        wrapped = [(name, self._timed(step, name, start, total)) for name, start in starters]
        results = client.run_tasks(wrapped, self.options.max_parallel, raise_on_error=False)
        self._task_end_times(client, step, list(results))
        return {k: _error(v) for k, v in results.items()}

    def _calls(self, step: str, calls: Iterable[tuple[str, Callable[[], Any]]], total: int) -> dict[str, str | None]:
        wrapped = [(name, self._timed(step, name, call, total)) for name, call in calls]
        results = run_calls(wrapped, self.options.max_parallel, raise_on_error=False)
        return {k: _error(v) for k, v in results.items()}

    def _task_end_times(self, client: VSphereClient, step: str, names: list[str]) -> None:
        """Each task's completion time from vCenter (its clock, corrected by the measured offset)."""
        tasks = [("%s/%s" % (step, n), t) for n in names for t in self._tasks.pop("%s/%s" % (step, n), [])]
        if not tasks:
            return
        now = time.time()
        try:
            rows = retrieve_objects(client, [t for _k, t in tasks], ["info.completeTime"])
            offset = self._offset(client)
        except Exception:  # timing detail only: fall back to the local clock
            return
        by_moid = {r["moid"]: r.get("info.completeTime") for r in rows}
        ends: dict[str, float] = {}
        for key, task in tasks:
            done = by_moid.get(task._moId)
            if done is not None:
                ends[key] = max(ends.get(key, 0.0), done.timestamp() - offset)
        for key, end in ends.items():
            if key in self._times:
                self._times[key][1] = min(max(end, self._times[key][0]), now)

    def _offset(self, client: VSphereClient) -> float:
        key = id(client)
        if key not in self._offsets:
            before = time.time()
            server = client.si.CurrentTime().timestamp()
            self._offsets[key] = server - (before + time.time()) / 2
        return self._offsets[key]

    def _maybe_die(self, step: str, count: int, total: int) -> None:
        """Test hook: ``TENANTRY_FAILOVER_KILL_AT=<step>[:<n>|:half|:all]`` SIGKILLs this process
        after the n-th action of that step (0: once its intent is journaled, before any action)."""
        if not self._kill:
            return
        name, _sep, when = self._kill.partition(":")
        if name != step:
            return
        if when in ("", "half"):
            at = max(1, math.ceil(total / 2))
        elif when == "all":
            at = total
        else:
            at = int(when)
        if count == at or (count == 0 and at == 0):
            os.kill(os.getpid(), signal.SIGKILL)

    def _act(self, step: str, names: list[str], total: int) -> dict[str, str | None]:
        for name in names:
            self._times.pop("%s/%s" % (step, name), None)
        handler = getattr(self, "_do_%s_%s" % (self.flow, step), None) or getattr(self, "_do_%s" % step)
        result: dict[str, str | None] = handler([self.vms[n] for n in names], total)
        return result

    def _act_shared(self, step: str) -> dict[str, str | None]:
        try:
            getattr(self, "_shared_%s" % step)()
        except (VSphereError, vmodl.MethodFault) as exc:
            return {"*": fault_message(exc)}
        self._shared_project(step)
        return {"*": None}

    # ---- shared steps
    def _shared_mount(self) -> None:
        host = self.choices["host_moid"]
        export = self._export()
        if export is None:
            raise VSphereError("no replication target told the NFS export of %s" % self.tenant.datastore)
        with contextlib.suppress(vim.fault.DuplicateName):  # mounted meanwhile: what we wanted
            self.prod.mount_nfs(host, export[0], export[1], read_only=self.flow == "test")
        self.prod.read_nfs()

    def _shared_unmount(self) -> None:
        """Unmount from every production host; a host where a VM (not the tenant's) still uses it keeps it."""
        kept = []
        for host in sorted(self.prod.nfs.mounted_on):
            if host not in self.prod.hosts:
                continue
            try:
                self.prod.unmount_nfs(host)
            except vim.fault.NotFound:
                pass
            except vim.fault.ResourceInUse as exc:
                kept.append("%s (%s)" % (self.prod.host_name(host), fault_message(exc)))
        if kept:
            self._note = "left mounted on " + ", ".join(kept)
        self.prod.read_nfs()

    def _shared_isolate(self) -> None:
        ns = self.prod.network_system(self.choices["host_moid"])
        with contextlib.suppress(vim.fault.AlreadyExists):
            ns.AddVirtualSwitch(
                vswitchName=self.tenant.isolated_vswitch, spec=vim.host.VirtualSwitch.Specification(numPorts=128)
            )
        with contextlib.suppress(vim.fault.AlreadyExists):
            ns.AddPortGroup(
                portgrp=vim.host.PortGroup.Specification(
                    name=self.tenant.isolated_portgroup,
                    vlanId=0,
                    vswitchName=self.tenant.isolated_vswitch,
                    policy=vim.host.NetworkPolicy(),
                )
            )
        network, hosts = self.prod.network(self.tenant.isolated_portgroup)
        self.choices["network"] = network
        self._isolated = hosts

    def _shared_unisolate(self) -> None:
        for host in sorted(self._isolated_hosts()):
            if host not in self.prod.hosts:
                continue
            ns = self.prod.network_system(host)
            with contextlib.suppress(vim.fault.NotFound):
                ns.RemovePortGroup(pgName=self.tenant.isolated_portgroup)
            with contextlib.suppress(vim.fault.NotFound):
                ns.RemoveVirtualSwitch(vswitchName=self.tenant.isolated_vswitch)
        self._isolated = set()

    def _shared_tidy(self) -> None:
        ds = self.choices.get("test_datastore")
        if ds:
            manager = self.production_client.content.fileManager
            outcome = self.production_client.run_tasks(
                [
                    (
                        "tidy",
                        lambda: manager.DeleteDatastoreFile_Task(
                            name="[%s] %s" % (ds, self.tenant.test_directory), datacenter=self.prod.dc
                        ),
                    )
                ],
                1,
                raise_on_error=False,
            )
            error = _error(outcome.get("tidy"))
            if error and "not found" not in error.lower() and "notfound" not in error.lower():
                raise VSphereError("cannot delete [%s] %s: %s" % (ds, self.tenant.test_directory, error))
        if self.prod.test_folder is not None:
            children = retrieve_objects(self.production_client, [self.prod.test_folder], ["childEntity"])[0]
            if not children.get("childEntity"):
                self.production_client.run_tasks([("folder", self.prod.test_folder.Destroy_Task)], 1)

    # ---- per-VM steps (each returns {vm: error or None})
    def _do_failover_register(self, vms: list[VMState], total: int) -> dict[str, str | None]:
        folder = self.prod.folder or self.prod.ensure_folder(self.tenant.folder)
        self.prod.folder = folder
        pool = self.prod.ensure_pool()
        host = self.prod.host_obj(self.choices["host_moid"])
        starters = [
            (
                vm.name,
                lambda vm=vm: folder.RegisterVM_Task(path=vm.vmx, name=vm.name, asTemplate=False, pool=pool, host=host),
            )
            for vm in vms
        ]
        results = self._tasks_on(self.production_client, "register", starters, total)
        self._refresh_production()
        for vm in vms:
            if not results.get(vm.name) and vm.prod is None:
                results[vm.name] = "registered, but not found in %s afterwards" % self.tenant.folder
            elif not results.get(vm.name):
                vm.permission = False
        return results

    def _do_test_register(self, vms: list[VMState], total: int) -> dict[str, str | None]:
        folder = self.prod.test_folder or self.prod.ensure_folder(self.tenant.test_folder)
        self.prod.test_folder = folder
        if self.prod.folder is None:
            self.prod.folder = self.prod.ensure_folder(self.tenant.folder)
        pool = self.prod.ensure_pool()
        host = self.prod.host_obj(self.choices["host_moid"])
        starters = [
            (
                vm.name,
                lambda vm=vm: folder.RegisterVM_Task(
                    path=self._copy_vmx(vm), name=vm.name, asTemplate=False, pool=pool, host=host
                ),
            )
            for vm in vms
        ]
        results = self._tasks_on(self.production_client, "register", starters, total)
        self._refresh_production()
        for vm in vms:
            if not results.get(vm.name) and vm.prod is None:
                results[vm.name] = "registered, but not found in %s afterwards" % self.tenant.test_folder
            elif not results.get(vm.name):
                vm.permission = False
        return results

    def _do_failover_unregister(self, vms: list[VMState], total: int) -> dict[str, str | None]:
        # Never the only registration: re-read production and unregister only what is there.
        self._refresh_production()
        results: dict[str, str | None] = {}
        calls = []
        for vm in vms:
            if vm.prod is None:
                results[vm.name] = "not found in production: left registered on %s" % vm.origin
            elif vm.target is not None:
                calls.append((vm.name, _target(vm).obj.UnregisterVM))
        results.update(self._calls("unregister", calls, total))
        for vm in vms:
            if not results.get(vm.name):
                vm.target = None
        return results

    def _do_failback_register(self, vms: list[VMState], total: int) -> dict[str, str | None]:
        self._refresh_production()
        results: dict[str, str | None] = {}
        by_site: dict[str, list[tuple[str, Callable[[], Any]]]] = {}
        for vm in vms:
            vmx = vm.prod.vmx if vm.prod is not None else (self._journaled(vm.name, "vmx_back") or vm.vmx)
            if datastore_of(vmx) != self.tenant.datastore:
                results[vm.name] = "its files (%s) are not on %s; relocate it first" % (vmx, self.tenant.datastore)
                continue
            self._journal.set_vm(vm.name, vmx_back=vmx)
            site = self.sites[vm.origin or ""]
            by_site.setdefault(site.name, []).append((vm.name, site.register(vm.name, vmx)))
        if self.journal is not None:
            self._journal.save()  # the path is journaled before the registration that uses it
        for name, starters in sorted(by_site.items()):
            results.update(self._tasks_on(self.sites[name].client, "register", starters, total))
        self._refresh_targets()
        for vm in vms:
            if not results.get(vm.name) and vm.target is None:
                results[vm.name] = "registered, but not found on %s afterwards" % vm.origin
        return results

    def _do_failback_unregister(self, vms: list[VMState], total: int) -> dict[str, str | None]:
        # Never the only registration: re-read the targets and unregister only what is back there.
        self._refresh_targets()
        results: dict[str, str | None] = {}
        calls = []
        for vm in vms:
            if vm.target is None:
                results[vm.name] = "not found on %s: left registered in production" % vm.origin
            elif vm.prod is not None:
                calls.append((vm.name, _prod(vm).obj.UnregisterVM))
        results.update(self._calls("unregister", calls, total))
        for vm in vms:
            if not results.get(vm.name):
                vm.prod = None
        return results

    def _do_network(self, vms: list[VMState], total: int) -> dict[str, str | None]:
        starters = []
        for vm in vms:
            changes, _notes = self._network_changes(vm)
            spec = vim.vm.ConfigSpec(
                deviceChange=[c for c in changes if not isinstance(c, vim.option.OptionValue)],
                extraConfig=[c for c in changes if isinstance(c, vim.option.OptionValue)],
            )
            starters.append((vm.name, lambda vm=vm, spec=spec: _prod(vm).obj.ReconfigVM_Task(spec=spec)))
        results = self._tasks_on(self.production_client, "network", starters, total)
        for vm in vms:
            if not results.get(vm.name):
                self._project("network", vm)
        return results

    def _do_permissions(self, vms: list[VMState], total: int) -> dict[str, str | None]:
        manager = self.production_client.content.authorizationManager
        principal = self._principal
        role = self._role_id if self._role_id is not None else self.prod.role_id(self.options.production_role)
        calls = []
        for vm in vms:
            permission = vim.AuthorizationManager.Permission(
                principal=principal["principal"], group=principal["group"], roleId=role, propagate=True
            )
            calls.append(
                (
                    vm.name,
                    lambda vm=vm, p=permission: manager.SetEntityPermissions(entity=_prod(vm).obj, permission=[p]),
                )
            )
        results = self._calls("permissions", calls, total)
        for vm in vms:
            if not results.get(vm.name):
                vm.permission = True
        return results

    def _do_power_on(self, vms: list[VMState], total: int) -> dict[str, str | None]:
        results: dict[str, str | None] = {}
        chosen = {vm.name: vm for vm in vms}
        waves = [w for w in boot_waves(self.tenant, self.order) if any(n in chosen for n in w.vms)]
        for number, wave in enumerate(waves, 1):
            members = [chosen[n] for n in wave.vms if n in chosen]
            starters = [(vm.name, lambda vm=vm: _prod(vm).obj.PowerOnVM_Task()) for vm in members]
            results.update(self._tasks_on(self.production_client, "power_on", starters, total))
            for vm in members:
                if not results.get(vm.name) and vm.prod is not None:
                    vm.prod.power = "poweredOn"
            if wave.delay and number < len(waves):
                self._journal.event(
                    "boot order: wave %d (%s) powered on, waiting %d s" % (number, ", ".join(wave.vms), wave.delay)
                )
                self._journal.save()
                time.sleep(wave.delay)
        return results

    def _do_power_off(self, vms: list[VMState], total: int) -> dict[str, str | None]:
        starters = [(vm.name, lambda vm=vm: _prod(vm).obj.PowerOffVM_Task()) for vm in vms]
        results = self._tasks_on(self.production_client, "power_off", starters, total)
        for vm in vms:
            if not results.get(vm.name) and vm.prod is not None:
                vm.prod.power = "poweredOff"
        return results

    def _do_failover_relocate(self, vms: list[VMState], total: int) -> dict[str, str | None]:
        placed = self.choices.get("datastores", {})
        starters = []
        results: dict[str, str | None] = {}
        for vm in vms:
            ds = self._datastores.get(placed.get(vm.name, ""))
            if ds is None:
                results[vm.name] = "no production datastore was chosen for it"
                continue
            spec = vim.vm.RelocateSpec(datastore=ds["obj"])
            starters.append((vm.name, lambda vm=vm, spec=spec: _prod(vm).obj.RelocateVM_Task(spec=spec)))
        results.update(self._tasks_on(self.production_client, "relocate", starters, total))
        for vm in vms:
            if not results.get(vm.name):
                self._project("relocate", vm)
        return results

    def _do_failback_relocate(self, vms: list[VMState], total: int) -> dict[str, str | None]:
        nfs = self.prod.nfs.obj
        host_moid = self.choices["host_moid"]
        pool = self.prod.pool
        starters = []
        for vm in vms:
            spec = vim.vm.RelocateSpec(datastore=nfs)
            if _prod(vm).host not in self.prod.nfs.mounted_on:
                spec.host = self.prod.host_obj(host_moid)
                if pool is not None:
                    spec.pool = pool
            starters.append((vm.name, lambda vm=vm, spec=spec: _prod(vm).obj.RelocateVM_Task(spec=spec)))
        results = self._tasks_on(self.production_client, "relocate", starters, total)
        self._refresh_production()  # where the .vmx is now (svMotion moves it)
        for vm in vms:
            if not results.get(vm.name) and vm.prod is not None:
                self._record_after("relocate", vm.name)
        return results

    def _do_copy(self, vms: list[VMState], total: int) -> dict[str, str | None]:
        """Copy each VM's directory from the NFS datastore to the test datastore (files, then disks)."""
        content = self.production_client.content
        dc = self.prod.dc
        browser = retrieve_objects(self.production_client, [self.prod.nfs.obj], ["browser"])[0]["browser"]
        results: dict[str, str | None] = {}
        source_dirs = {vm.name: vm.vmx.rsplit("/", 1)[0] for vm in vms}
        spec = vim.host.DatastoreBrowser.SearchSpec(matchPattern=["*"])

        def search(folder: str) -> Callable[[], Any]:
            return lambda: browser.SearchDatastore_Task(datastorePath=folder, searchSpec=spec)

        def make(name: str) -> Callable[[], Any]:
            return lambda: content.fileManager.MakeDirectory(
                name=self._copy_dir(name), datacenter=dc, createParentDirectories=True
            )

        listing = self.production_client.run_tasks(
            [(vm.name, search(source_dirs[vm.name])) for vm in vms], self.options.max_parallel, raise_on_error=False
        )
        files: dict[str, list[str]] = {}
        for vm in vms:
            found = listing.get(vm.name)
            if isinstance(found, str) or found is None:
                results[vm.name] = "cannot list %s: %s" % (source_dirs[vm.name], found)
            else:
                files[vm.name] = [f.path for f in found.file or []]
        made = run_calls(
            [(name, make(name)) for name in files],
            self.options.max_parallel,
            raise_on_error=False,
        )
        starters = []
        for name, paths in files.items():
            error = _error(made.get(name))
            if error and "exist" not in error.lower():
                results[name] = "cannot create %s: %s" % (self._copy_dir(name), error)
                continue
            for path in paths:
                if path.endswith(".lck") or _is_extent(path):
                    continue  # locks are not copied; extents travel with their descriptor
                src = "%s/%s" % (source_dirs[name], path)
                dst = "%s/%s" % (self._copy_dir(name), path)
                starters.append(("%s|%s" % (name, path), _copier(content, dc, src, dst)))
        copied = self.production_client.run_tasks(
            [(k, self._timed("copy", k.split("|")[0], s, total)) for k, s in starters],
            self.options.max_parallel,
            raise_on_error=False,
        )
        for key, value in copied.items():
            name = key.split("|")[0]
            if _error(value) and not results.get(name):
                results[name] = "copying %s: %s" % (key.split("|")[1], value)
        for vm in vms:
            results.setdefault(vm.name, None)
            if not results[vm.name]:
                vm.copied = True
        return results

    def _do_destroy(self, vms: list[VMState], total: int) -> dict[str, str | None]:
        results: dict[str, str | None] = {}
        starters = []
        for vm in vms:
            if vm.prod is None or not self._is_copy(vm.prod):
                results[vm.name] = "not a test copy: its files are not under %s/" % self.tenant.test_directory
                continue
            starters.append((vm.name, lambda vm=vm: _prod(vm).obj.Destroy_Task()))
        results.update(self._tasks_on(self.production_client, "destroy", starters, total))
        for vm in vms:
            if not results.get(vm.name):
                vm.prod = None
        return results

    # ------------------------------------------------------------ helpers
    def _tags(self, vm: VMState) -> dict[str, str]:
        """The ``tenantry.*`` extraConfig keys that say whose VM this is and where it came from."""
        tags = {TAG_TENANT: self.tenant.name, TAG_ORIGIN_VMX: vm.vmx}
        if self.flow == "test":
            tags[TAG_TEST_RUN] = self.journal.run_id if self.journal is not None else "planned"
        else:
            tags[TAG_ORIGIN_TARGET] = vm.origin or ""
        return tags

    def _network_changes(self, vm: VMState) -> tuple[list[Any], list[str]]:
        """NIC changes and tag changes; with any, also the answer to vSphere's "moved or copied?"."""
        if vm.prod is None:
            return [], []
        portgroup = self.choices.get("portgroup", "")
        changes, notes = nic_changes(vm.prod, vm.nics, portgroup, self.choices.get("network"))
        for key, value in self._tags(vm).items():
            current = vm.prod.extra.get(key)
            if key == TAG_TEST_RUN and current:
                continue  # a copy keeps the run that made it
            if current != value:
                changes.append(vim.option.OptionValue(key=key, value=value))
                notes.append("%s=%s" % (key, value))
        if changes:
            answer = COPIED_ANSWER if self.flow == "test" else MOVED_ANSWER
            changes.append(vim.option.OptionValue(key=answer[0], value=answer[1]))
        return changes, notes

    def _copy_dir(self, name: str) -> str:
        return "[%s] %s/%s" % (self.choices.get("test_datastore", ""), self.tenant.test_directory, name)

    def _copy_vmx(self, vm: VMState) -> str:
        return "%s/%s" % (self._copy_dir(vm.name), vm.vmx.rsplit("/", 1)[-1] if vm.vmx else vm.name + ".vmx")

    def _plain_choices(self) -> dict[str, Any]:
        return {k: v for k, v in self.choices.items() if k not in ("network", "host_moid")}

    def _placement(self) -> dict[str, dict[str, Any]]:
        names = self._datastore_names()
        out = {}
        for name in self.order:
            vm = self.vms[name]
            out[name] = {
                "replication_target": vm.origin if vm.target is not None else None,
                "production": None
                if vm.prod is None
                else {
                    "folder": self.tenant.test_folder if self.flow in ("test", "cleanup") else self.tenant.folder,
                    "host": self.prod.host_name(vm.prod.host) if vm.prod.host else self.choices.get("production_host"),
                    "power": vm.prod.power,
                    "datastores": sorted(names.get(d, d) for d in vm.prod.datastores),
                    "networks": sorted({n.get("network", "") for n in vm.prod.nics}),
                },
            }
        return out

    def _datastore_names(self) -> dict[str, str]:
        names = {d["moid"]: n for n, d in getattr(self, "_datastores", {}).items()}
        if self.prod.nfs.obj is not None:
            names[self.prod.nfs.obj._moId] = self.tenant.datastore
        names["nfs"] = self.tenant.datastore
        return names

    def _diff(self, before: dict[str, Any], plan: list[dict[str, Any]]) -> dict[str, Any]:
        saved = self._snapshot()
        try:
            for step in plan:
                if step["per_vm"] and step["step"] != "read":
                    for name in step["act"]:
                        self._project(step["step"], self.vms[name])
            after = self._placement()
        finally:
            self._restore(saved)
        return {"before": before, "after": after}

    # ================================================================ finish
    def _write_report(self) -> dict[str, Any]:
        report = reporting.build(self._journal.data)
        path = reporting.write(self.options.report_dir, report)
        self._report_path = str(path)
        return report

    def _finish(self, result: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
        report = self._write_report()
        summary = reporting.summary_lines(report)
        result.update(
            changed=self.changed,
            status=self._journal.status,
            run_id=self._journal.run_id,
            journal_file=str(self._journal.path),
            report_file=self._report_path,
            report=report,
            summary=summary,
            progress=self.events,
            diff={"before": before, "after": self._placement()},
        )
        failed = {n: vm.failed for n, vm in self.vms.items() if vm.failed}
        if failed:
            raise RunFailed(
                "%s of tenant %s: %d of %d VM%s failed (%s); run %s is journaled: run mode=%s again to resume, "
                "or mode=%s to undo it"
                % (
                    self.options.mode,
                    self.tenant.name,
                    len(failed),
                    len(self.order),
                    "" if len(self.order) == 1 else "s",
                    "; ".join("%s at %s" % item for item in sorted(failed.items())),
                    self._journal.run_id,
                    self.options.mode,
                    "cleanup" if self.flow == "test" else "rollback",
                ),
                result,
            )
        return result


def _copier(content: Any, dc: Any, src: str, dst: str) -> Callable[[], Any]:
    """A starter that copies one file of a VM; a disk goes through the disk manager (descriptor and extents)."""
    if src.endswith(".vmdk"):
        return lambda: content.virtualDiskManager.CopyVirtualDisk_Task(
            sourceName=src, sourceDatacenter=dc, destName=dst, destDatacenter=dc, force=True
        )
    return lambda: content.fileManager.CopyDatastoreFile_Task(
        sourceName=src, sourceDatacenter=dc, destinationName=dst, destinationDatacenter=dc, force=True
    )


def _is_extent(path: str) -> bool:
    return any(
        path.endswith(s)
        for s in ("-flat.vmdk", "-delta.vmdk", "-sesparse.vmdk", "-ctk.vmdk", "-rdm.vmdk", "-rdmp.vmdk")
    )


__all__ = ["BadInput", "JournalError", "Options", "PreflightFailed", "RunFailed", "Runner"]

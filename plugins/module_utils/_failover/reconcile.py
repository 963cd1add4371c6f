# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""Read both sides and reconcile them with the journal into the run's model.

The journal says what was recorded (each VM's ``.vmx``, origin target, NICs); the read says
where each VM is *now*.  Reality decides what is left to do: a step an interrupted attempt
finished but did not journal is found done.  The ``refresh_*`` functions bring the model back
in line with vCenter after an action (and, before an unregistration, confirm the new side).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.tenantry.msp.plugins.module_utils._failover import nics
from ansible_collections.tenantry.msp.plugins.module_utils._failover.journal import Journal
from ansible_collections.tenantry.msp.plugins.module_utils._failover.model import VM, Production, Run
from ansible_collections.tenantry.msp.plugins.module_utils._failover.plan import BadInput, Tenant, select_vms
from ansible_collections.tenantry.msp.plugins.module_utils._failover.sites import (
    REGISTRATION_PROPERTIES,
    TAG_ORIGIN_TARGET,
    TAG_ORIGIN_VMX,
    TAG_TENANT,
    ProductionSite,
    TargetSite,
    VMRow,
    datastore_of,
    path_in_datastore,
)
from ansible_collections.tenantry.msp.plugins.module_utils.clients.vsphere import VSphereClient, run_calls


@dataclass
class Sites:
    """The live side of a run: the production vCenter and each replication target, as read."""

    production: ProductionSite
    targets: dict[str, TargetSite]
    datastores: dict[str, dict[str, Any]] = field(default_factory=dict)  # usable production datastores, read

    @property
    def client(self) -> VSphereClient:
        return self.production.client


@dataclass
class Journals:
    """The run's journal (when resuming) and the run it undoes (rollback, cleanup)."""

    journal: Journal | None = None
    origin: Journal | None = None

    def recorded(self, flow: str) -> dict[str, dict[str, Any]]:
        """Each VM's journaled facts: this run's, or (undoing) the undone run's."""
        journal = self.journal or (self.origin if flow in ("failback", "cleanup") else None)
        return journal.vms if journal is not None else {}

    def journaled(self, vm: str, key: str) -> Any:
        for journal in (self.journal, self.origin):
            if journal is not None and key in journal.vms.get(vm, {}):
                return journal.vms[vm][key]
        return None


# ---------------------------------------------------------------------------------- read
def read(
    tenant: Tenant,
    flow: str,
    datacenter: str,
    cluster: str,
    production: VSphereClient,
    targets: dict[str, VSphereClient],
) -> Sites:
    """Read every side at once: each target (not for cleanup) and the production vCenter, in parallel."""
    with ThreadPoolExecutor(max_workers=1 + len(targets)) as pool:
        prod_future = pool.submit(ProductionSite, production, datacenter, cluster, tenant)
        futures = {}
        if flow != "cleanup":
            for name, client in targets.items():
                site = TargetSite(name, client)
                futures[name] = (site, pool.submit(site.read, tenant.datastore))
        sites: dict[str, TargetSite] = {}
        for name, (site, future) in sorted(futures.items()):
            try:
                future.result()
            except LookupError as exc:
                raise BadInput([str(exc)]) from exc
            sites[name] = site
        try:
            prod = prod_future.result()
        except LookupError as exc:
            raise BadInput([str(exc)]) from exc
    return Sites(prod, sites)


def production_model(sites: Sites, flow: str) -> Production:
    prod = sites.production
    model = Production(hosts={moid: str(row.get("name", moid)) for moid, row in prod.hosts.items()})
    model.vms, model.copies = prod.vms()
    model.test_folder = prod.test_folder is not None
    _nfs_into(model, prod)
    if flow in ("test", "cleanup"):
        model.isolated_on = prod.network(prod.tenant.isolated_portgroup)[1]
    return model


def _nfs_into(model: Production, prod: ProductionSite) -> None:
    model.nfs = prod.nfs.obj._moId if prod.nfs.obj is not None else None
    model.mounted_on = set(prod.nfs.mounted_on)


def read_nfs(run: Run, sites: Sites) -> None:
    """Re-read the tenant NFS datastore in production (after mounting or unmounting it)."""
    sites.production.read_nfs()
    _nfs_into(run.production, sites.production)


def nfs_export(sites: Sites) -> tuple[str, str] | None:
    """The tenant NFS export as a target (or production) mounts it."""
    for site in sites.targets.values():
        if site.nfs is not None:
            return site.nfs_info["remote_host"], site.nfs_info["remote_path"]
    nfs = sites.production.nfs
    return (nfs.remote_host, nfs.remote_path) if nfs.obj is not None else None


# ------------------------------------------------------------------------------- refresh
def refresh_production(run: Run, sites: Sites) -> None:
    """Re-read the tenant's production VMs (one round trip once its folder exists)."""
    prod = sites.production
    if prod.folder is None:
        prod.locate()
        _nfs_into(run.production, prod)
    run.production.vms, run.production.copies = prod.vms()
    run.production.test_folder = prod.test_folder is not None
    for vm in run.vms.values():
        vm.prod = match_prod(run, vm)


def confirm_production(run: Run, sites: Sites) -> None:
    """Re-read where the run's VMs are registered in production (no hardware: a cheap read).

    The model keeps its rows when production agrees; a VM production no longer holds loses its
    registration; when production holds what the model did not know, it is read again in full.
    """
    prod = sites.production
    if prod.folder is None:
        refresh_production(run, sites)
        return
    registered, copies = prod.vms(REGISTRATION_PROPERTIES)
    rows = copies if run.testing else registered
    for vm in run.vms.values():
        row = _match(run, vm, rows)
        if row is None:
            vm.prod = None
        elif vm.prod is None or vm.prod.moid != row.moid:
            refresh_production(run, sites)
            return


def refresh_targets(run: Run, sites: Sites) -> None:
    for site in sites.targets.values():
        site.refresh_vms()
    for vm in run.vms.values():
        vm.target = match_target(run, sites, vm)


def is_copy(tenant: Tenant, row: VMRow) -> bool:
    """A test copy: its files are under the tenant's copy directory."""
    return bool(datastore_of(row.vmx)) and path_in_datastore(row.vmx).startswith(tenant.test_directory + "/")


def match_prod(run: Run, vm: VM) -> VMRow | None:
    """Its production registration: same name and its .vmx (or the .vmx it was registered from)."""
    return _match(run, vm, run.production.copies if run.testing else run.production.vms)


def _match(run: Run, vm: VM, rows: dict[str, VMRow]) -> VMRow | None:
    row = rows.get(vm.name)
    if row is None:
        return None
    if run.testing:
        return row if is_copy(run.tenant, row) else None
    if not vm.vmx or vm.vmx in (row.vmx, row.extra.get(TAG_ORIGIN_VMX)):
        return row
    return None


def match_target(run: Run, sites: Sites, vm: VM) -> VMRow | None:
    """Its registration on its target: same name and the recorded .vmx (or the one failback used)."""
    site = sites.targets.get(vm.origin or "")
    row = site.vms.get(vm.name) if site else None
    if row is None:
        return None
    accepted = {vm.vmx, vm.vmx_back} - {None, ""}
    return row if not accepted or row.vmx in accepted else None


# ----------------------------------------------------------------------------- reconcile
def reconcile(tenant: Tenant, mode: str, flow: str, requested: list[str], sites: Sites, journals: Journals) -> Run:
    """Which VMs, and what is known of each: the journal's records, then what was read."""
    on_targets = _on_targets(sites)
    if flow in ("failover", "test") and journals.journal is None:
        missing = sorted(n for n, site in sites.targets.items() if site.nfs is None)
        if missing and not any(site.vms for site in sites.targets.values()):
            raise BadInput(
                [
                    "NFS datastore %s is missing on replication target %s (and no VM is registered there)"
                    % (tenant.datastore, ", ".join(missing))
                ]
            )
    production = production_model(sites, flow)
    names = _names(tenant, flow, requested, sites, journals, on_targets, production)
    run = Run(tenant=tenant, mode=mode, flow=flow, vms={}, order=list(names), production=production)
    recorded = journals.recorded(flow)
    for name in names:
        run.vms[name] = _vm(run, name, recorded.get(name, {}), on_targets.get(name), journals)
    for vm in run.vms.values():
        vm.prod = match_prod(run, vm)
        vm.target = match_target(run, sites, vm)
    return run


def _on_targets(sites: Sites) -> dict[str, tuple[str, VMRow]]:
    on_targets: dict[str, tuple[str, VMRow]] = {}
    duplicates = []
    for site in sites.targets.values():
        for name, row in site.vms.items():
            if name in on_targets:
                duplicates.append("%s (on %s and %s)" % (name, on_targets[name][0], site.name))
            on_targets[name] = (site.name, row)
    if duplicates:
        raise BadInput(["VMs registered on two replication targets: %s" % ", ".join(sorted(duplicates))])
    return on_targets


def _names(
    tenant: Tenant,
    flow: str,
    requested: list[str],
    sites: Sites,
    journals: Journals,
    on_targets: dict[str, tuple[str, VMRow]],
    production: Production,
) -> list[str]:
    """The run's VMs: a resumed run's; else the request's (all when empty), refusing unknown names."""
    label = "tenant %s's replication target%s %s" % (
        tenant.name,
        "s" if len(sites.targets) != 1 else "",
        ", ".join(sorted(sites.targets)) or "(none in this run)",
    )
    if journals.journal is not None and flow != "cleanup":
        return list(journals.journal.vms)
    if flow == "failover":
        moved = [n for n, r in production.vms.items() if r.extra.get(TAG_TENANT) == tenant.name]
        return select_vms(requested, set(on_targets) | set(moved) | set(journals.recorded(flow)), label)
    if flow == "test":
        return select_vms(requested, on_targets, label)
    if flow == "failback":
        if journals.origin is not None:  # rollback of a failover: its VMs
            return list(journals.origin.vms)
        tagged = [n for n, r in production.vms.items() if r.extra.get(TAG_ORIGIN_TARGET)]
        if not requested:
            return sorted(tagged)
        where = "tenant %s's production folder %s (failed over) nor on %s" % (tenant.name, tenant.folder, label)
        return select_vms(requested, set(tagged) | set(on_targets), where)
    return sorted(set(production.copies) | set(journals.recorded(flow)))  # cleanup


def _vm(run: Run, name: str, rec: dict[str, Any], on_target: tuple[str, VMRow] | None, journals: Journals) -> VM:
    """One VM from its journaled record, completed by what was read of it."""
    vm = VM(
        name=name,
        origin=rec.get("origin"),
        vmx=rec.get("vmx") or "",
        memory_mb=int(rec.get("memory_mb") or 0),
        disk_bytes=int(rec.get("disk_bytes") or 0),
        nics=list(rec.get("nics") or []),
        vmx_back=journals.journaled(name, "vmx_back"),
    )
    flow = run.flow
    if on_target is not None and flow in ("failover", "test"):
        origin, row = on_target
        if not vm.vmx or row.vmx == vm.vmx:
            vm.origin, vm.vmx = origin, row.vmx
            vm.memory_mb, vm.disk_bytes = row.memory_mb, row.disk_bytes
            vm.nics = nics.recorded(row)
    prod_row = (run.production.copies if run.testing else run.production.vms).get(name)
    if prod_row is not None and flow == "failback":
        vm.origin = vm.origin or prod_row.extra.get(TAG_ORIGIN_TARGET)
        vm.vmx = vm.vmx or prod_row.extra.get(TAG_ORIGIN_VMX) or prod_row.vmx
        vm.memory_mb = vm.memory_mb or prod_row.memory_mb
        vm.disk_bytes = vm.disk_bytes or prod_row.disk_bytes
    if prod_row is not None and flow == "failover" and not vm.vmx:
        vm.vmx = prod_row.extra.get(TAG_ORIGIN_VMX, "")
        vm.origin = vm.origin or prod_row.extra.get(TAG_ORIGIN_TARGET)
    if flow == "failback" and not vm.origin and on_target is not None:
        vm.origin = on_target[0]
    return vm


def read_permissions(run: Run, sites: Sites, journals: Journals, role_name: str, max_parallel: int) -> None:
    """Whether the account already holds its role on each VM registered before this attempt."""
    if run.flow not in ("failover", "test"):
        return
    role = sites.production.role_id(role_name)
    run.choices.role_id = role
    if role is None:
        return  # the preflight refuses the unknown role
    journal = journals.journal
    todo: list[VM] = []
    for vm in run.vms.values():
        if vm.prod is None:
            continue
        if (
            journal is not None
            and journal.vm_step_state(vm.name, "permissions") == "done"
            and journal.vms.get(vm.name, {}).get("production_moid") == vm.prod.moid
        ):
            vm.permission = True
            continue
        todo.append(vm)
    if not todo:
        return

    def check(row: VMRow) -> Callable[[], Any]:
        return lambda: sites.production.has_permission(row.obj, run.tenant.account, role)

    found = run_calls([(vm.name, check(vm.prod)) for vm in todo if vm.prod], max_parallel, raise_on_error=False)
    for vm in todo:
        vm.permission = found.get(vm.name) is True

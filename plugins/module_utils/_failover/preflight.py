# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""The preflight: check the request against what was read, and make the run's choices.

Every check is recorded (``Check``), passed or not, so check mode shows them all; a failed one
refuses the run before any change (``PreflightFailed``).  The choices (destination portgroup,
production host, datastores) go into the model; a resumed run keeps its journaled ones.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.tenantry.msp.plugins.module_utils._failover.model import VM, Request, Run
from ansible_collections.tenantry.msp.plugins.module_utils._failover.plan import (
    BadInput,
    Check,
    assign_datastores,
    choose_host,
    destination,
    human_bytes,
)
from ansible_collections.tenantry.msp.plugins.module_utils._failover.reconcile import Sites, is_copy, nfs_export
from ansible_collections.tenantry.msp.plugins.module_utils._failover.sites import TAG_ORIGIN_TARGET, datastore_of
from ansible_collections.tenantry.msp.plugins.module_utils.clients.vsphere import VSphereError, retrieve_objects, vim


class PreflightFailed(VSphereError):
    """At least one preflight check failed; nothing was changed."""

    def __init__(self, checks: list[Check]) -> None:
        failed = [c for c in checks if not c.ok]
        super().__init__("refused before any change: " + "; ".join("%s: %s" % (c.name, c.detail) for c in failed))
        self.checks = checks


def preflight(
    run: Run, sites: Sites, request: Request, recorded: dict[str, Any], undone: dict[str, Any]
) -> list[Check]:
    """Every check, with the choices made in ``run.choices``; ``recorded``/``undone``: journaled choices."""
    checks: list[Check] = []
    flow = run.flow
    if flow == "failover":
        vlan, portgroup = destination(run.tenant, request.destination_vlan or recorded.get("destination_vlan"))
        run.choices.destination_vlan, run.choices.portgroup = vlan, portgroup
        checks.append(Check("destination VLAN", True, "VLAN %d, portgroup %s" % (vlan, portgroup)))
    if flow == "test":
        run.choices.portgroup = run.tenant.isolated_portgroup
    if flow != "cleanup":
        checks += _nfs_checks(run, sites)
    checks.append(_vm_check(run, sites))
    if flow in ("failover", "test", "failback"):
        checks += _choose_host(run, sites, request, recorded.get("production_host") or undone.get("production_host"))
    if flow == "failover":
        checks += _choose_datastores(run, sites, request, recorded.get("datastores") or {})
    if flow == "test":
        checks += _choose_test_datastore(run, sites, request, recorded.get("test_datastore"))
    if flow == "cleanup":
        run.choices.test_datastore = undone.get("test_datastore") or recorded.get("test_datastore")
        run.production.test_dir = _copies_directory_exists(run, sites, run.choices.test_datastore)
    if flow in ("failover", "test"):
        checks += _check_account(run, sites, request)
        checks.append(_folder_check(run, sites))
    if any(not c.ok for c in checks):
        raise PreflightFailed(checks)
    return checks


def _nfs_checks(run: Run, sites: Sites) -> list[Check]:
    """The tenant NFS datastore on each target (accessible, the tenant file's export) and in production."""
    checks = []
    tenant = run.tenant
    spec_export = "%s:%s" % (tenant.nfs_server, tenant.nfs_path)
    for name, site in sorted(sites.targets.items()):
        label = "NFS datastore on %s" % name
        if site.nfs is None:
            checks.append(
                Check(label, False, "NFS datastore %s is missing on replication target %s" % (tenant.datastore, name))
            )
            continue
        info = site.nfs_info
        ok = info["accessible"] and info["type"] in ("NFS", "NFS41")
        export = "%s:%s" % (info["remote_host"], info["remote_path"])
        if ok:
            detail = "%s (%s, %s)" % (
                tenant.datastore,
                export,
                "accessible" if info["accessible"] else "NOT accessible",
            )
        else:
            detail = "%s on %s is %s, not an accessible NFS datastore" % (
                tenant.datastore,
                name,
                info["type"] or "unknown",
            )
        checks.append(Check(label, ok, detail))
        if ok and export != spec_export:
            checks.append(
                Check(
                    "NFS export on %s" % name,
                    False,
                    "%s mounts %s but the tenant file says %s" % (tenant.datastore, export, spec_export),
                )
            )
    nas, nfs = nfs_export(sites), sites.production.nfs
    if nfs.obj is not None and nas is not None:
        same = (nfs.remote_host, nfs.remote_path) == nas
        checks.append(
            Check(
                "NFS datastore in production",
                same,
                "%s already exists in production on the same export (shared mount)" % tenant.datastore
                if same
                else "a datastore named %s exists in production on another export (%s:%s)"
                % (tenant.datastore, nfs.remote_host, nfs.remote_path),
            )
        )
    return checks


def _vm_check(run: Run, sites: Sites) -> Check:
    """Each VM can go where the flow takes it (and no name clashes on the way)."""
    problems: list[str] = []
    for vm in run.vms.values():
        if run.flow in ("failover", "test"):
            problems += _vm_problems_to_production(run, vm)
        elif run.flow == "failback":
            problems += _vm_problems_back(run, sites, vm)
        elif vm.prod is not None and not is_copy(run.tenant, vm.prod):
            problems.append(
                "%s in %s is not a test copy (files %s); it is left alone"
                % (vm.name, run.tenant.test_folder, vm.prod.vmx)
            )
    count = len(run.vms)
    listed = ", ".join(run.order[:8]) + (" ..." if len(run.order) > 8 else "")
    detail = "; ".join(problems) or "%d VM%s: %s" % (count, "" if count == 1 else "s", listed)
    return Check("VMs", not problems, detail)


def _vm_problems_to_production(run: Run, vm: VM) -> list[str]:
    """Failover and test: the replica is on its target, on the NFS datastore, powered off, no clash."""
    tenant, production = run.tenant, run.production
    failover = run.flow == "failover"
    if vm.target is None and vm.prod is None:
        if failover and vm.name in production.vms:
            return [
                "%s: a VM of that name already exists in production folder %s (files %s), "
                "it is not this tenant's replica" % (vm.name, tenant.folder, production.vms[vm.name].vmx)
            ]
        if not failover and vm.name in production.copies:
            return [
                "%s: test folder %s holds a VM of that name that is not a test copy" % (vm.name, tenant.test_folder)
            ]
        if not failover:
            return ["%s: not registered on its replication target" % vm.name]
        return ["%s: registered neither on its replication target nor in production" % vm.name]
    problems = []
    if not failover and vm.target is None:
        problems.append("%s: not registered on its replication target" % vm.name)
    if vm.target is not None:
        if datastore_of(vm.vmx) != tenant.datastore:
            problems.append(
                "%s: its files (%s) are not on the tenant NFS datastore %s" % (vm.name, vm.vmx, tenant.datastore)
            )
        if vm.target.power != "poweredOff" and failover and vm.prod is None:
            problems.append(
                "%s is %s on replication target %s: a replica must be powered off to fail over"
                % (vm.name, vm.target.power, vm.origin)
            )
    if failover and vm.prod is None and vm.name in production.vms:
        problems.append(
            "%s: name clash, production folder %s already holds another VM of that name (files %s)"
            % (vm.name, tenant.folder, production.vms[vm.name].vmx)
        )
    return problems


def _vm_problems_back(run: Run, sites: Sites, vm: VM) -> list[str]:
    """Failback: the VM is somewhere, knows its target, and that target has no other VM of its name."""
    if vm.prod is None and vm.target is None:
        return ["%s: registered neither in production nor on its replication target" % vm.name]
    if not vm.origin:
        return ["%s has no %s tag and no journal records where it came from" % (vm.name, TAG_ORIGIN_TARGET)]
    if vm.origin not in sites.targets:
        return [
            "%s came from replication target %s, which is not in this run (targets: %s)"
            % (vm.name, vm.origin, ", ".join(sorted(sites.targets)) or "none")
        ]
    if vm.target is None and vm.name in sites.targets[vm.origin].vms:
        return [
            "%s: name clash, replication target %s already holds another VM of that name (files %s)"
            % (vm.name, vm.origin, sites.targets[vm.origin].vms[vm.name].vmx)
        ]
    return []


def _choose_host(run: Run, sites: Sites, request: Request, recorded: str | None) -> list[Check]:
    """The production host: the given or recorded one if usable, else the usable one with most free memory."""
    prod, flow = sites.production, run.flow
    need = sum(vm.memory_mb for vm in run.vms.values() if vm.prod is None) if flow != "failback" else 0
    portgroup = run.choices.portgroup or ""
    if flow == "failover":
        network, hosts_with = prod.network(portgroup)
        if network is None:
            detail = "portgroup %s not found in datacenter %s" % (portgroup, request.datacenter)
            return [Check("destination portgroup", False, detail)]
        run.choices.network = network
    else:
        hosts_with = set(prod.hosts)  # the isolated network is created on the chosen host
        portgroup = portgroup or "(none needed)"
    requested = request.production_host or recorded
    if flow == "failback" and not requested:
        running = [vm.prod.host for vm in run.vms.values() if vm.prod is not None and vm.prod.host]
        candidates = [h for h in prod.nfs.mounted_on if h in prod.hosts] or running
        if candidates:
            requested = prod.host_name(max(set(candidates), key=candidates.count))
    infos = prod.host_infos(hosts_with, portgroup)
    try:
        host = choose_host(infos, need, requested, portgroup)
    except BadInput as exc:
        return [Check("production host", False, "; ".join(exc.errors))]
    run.choices.production_host, run.choices.host_moid = host, prod.host_moid(host)
    free = next(i for i in infos if i.name == host).memory_free_mb
    given = "given, " if request.production_host else ""
    checks = [
        Check("production host", True, "%s (%s%d MB free memory, the VMs need %d MB)" % (host, given, free, need))
    ]
    if flow == "failover":
        checks.append(Check("destination portgroup", True, "%s exists on %s" % (portgroup, host)))
    return checks


def _usable_datastores(run: Run, sites: Sites, request: Request) -> dict[str, dict[str, Any]]:
    """The production datastores the run may use (``datastores`` or the cluster's shared ones), accessible."""
    shared = sites.production.shared_datastores(request.datastores)
    sites.datastores = {n: d for n, d in shared.items() if d["accessible"]}
    run.production.datastores = {n: d["moid"] for n, d in sites.datastores.items()}
    return sites.datastores


def _choose_datastores(run: Run, sites: Sites, request: Request, recorded: dict[str, str]) -> list[Check]:
    """Where each VM still on the NFS datastore is relocated to (a resumed run keeps its placement)."""
    try:
        usable = _usable_datastores(run, sites, request)
    except LookupError as exc:
        return [Check("production datastores", False, str(exc))]
    nfs = run.production.nfs
    todo = {
        vm.name: vm.disk_bytes
        for vm in run.vms.values()
        if vm.prod is None or (nfs in vm.prod.datastores) or not vm.prod.datastores
    }
    keep = {n: d for n, d in recorded.items() if n in todo and d in usable}
    room = {n: d["free"] - sum(todo[v] for v, ds in keep.items() if ds == n) for n, d in usable.items()}
    try:
        placed = assign_datastores({n: s for n, s in todo.items() if n not in keep}, room) if todo else {}
    except BadInput as exc:
        return [Check("production datastores", False, "; ".join(exc.errors))]
    placed.update(keep)
    run.choices.datastores = placed
    detail = "%s for %s (%s free)" % (
        ", ".join(sorted(set(placed.values()))) or "none needed",
        human_bytes(sum(todo.values())),
        human_bytes(sum(d["free"] for d in usable.values())),
    )
    return [Check("production datastores", True, detail)]


def _choose_test_datastore(run: Run, sites: Sites, request: Request, recorded: str | None) -> list[Check]:
    """The datastore for the test copies: the recorded one, else the one with most room."""
    try:
        usable = _usable_datastores(run, sites, request)
    except LookupError as exc:
        return [Check("test datastore", False, str(exc))]
    need = sum(vm.disk_bytes for vm in run.vms.values() if vm.prod is None)
    if recorded and recorded in usable:
        name = recorded
    elif usable:
        name = sorted(usable, key=lambda n: (-usable[n]["free"], n))[0]
    else:
        return [Check("test datastore", False, "no production datastore for the test copies")]
    free = usable[name]["free"]
    run.choices.test_datastore = name
    detail = "%s: %s free, the copies need %s" % (name, human_bytes(free), human_bytes(need))
    return [Check("test datastore", free >= need, detail)]


def _check_account(run: Run, sites: Sites, request: Request) -> list[Check]:
    """The role exists and (with ``check_account``) the directory knows the tenant's account."""
    account = run.tenant.account
    run.choices.principal = {"principal": account, "group": False}
    if run.choices.role_id is None:
        detail = "role %s not found in the production vCenter; set production_role to an existing role"
        return [Check("production account", False, detail % request.production_role)]
    if request.check_account:
        found = sites.production.account(account)
        if found is None:
            detail = "account %s not found in the production vCenter's directory" % account
            return [Check("production account", False, detail)]
        run.choices.principal = found
    looked_up = "" if request.check_account else " (not looked up)"
    detail = "%s gets role %s on each VM%s" % (account, request.production_role, looked_up)
    return [Check("production account", True, detail)]


def _folder_check(run: Run, sites: Sites) -> Check:
    prod, tenant = sites.production, run.tenant
    failover = run.flow == "failover"
    folder = tenant.folder if failover else tenant.test_folder
    exists = (prod.folder if failover else prod.test_folder) is not None
    detail = "folder %s %s, resource pool %s %s" % (
        folder,
        "exists" if exists else "will be created",
        tenant.resource_pool,
        "exists" if prod.pool is not None else "will be created",
    )
    return Check("tenant folder and pool", True, detail)


def _copies_directory_exists(run: Run, sites: Sites, datastore: str | None) -> bool:
    """Whether ``[datastore] tenantry-test-<tenant>`` is there (one datastore browser search)."""
    if not datastore:
        return False
    prod, directory = sites.production, run.tenant.test_directory
    obj = prod.index.FindChild(prod.datastore_folder, datastore)
    if obj is None:
        return False
    browser = retrieve_objects(prod.client, [obj], ["browser"])[0]["browser"]
    spec = vim.host.DatastoreBrowser.SearchSpec(matchPattern=[directory])
    found = prod.client.run_tasks(
        [("dir", lambda: browser.SearchDatastore_Task(datastorePath="[%s]" % datastore, searchSpec=spec))],
        1,
        raise_on_error=False,
    ).get("dir")
    if isinstance(found, str) or found is None:
        return "not found" not in str(found).lower()  # unknown: try to delete it
    return any(f.path.rstrip("/") == directory for f in found.file or [])

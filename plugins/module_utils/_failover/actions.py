# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""The vSphere calls of every step, one named function each (the flows' tables point here).

A per-VM action takes the step's ``Context`` and its VMs, issues their calls all at once
through ``ctx.tasks``/``ctx.calls`` (bounded fan-out, timed, counted) and returns
``{vm: None or error}``; the engine applies the step's effect to the VMs that succeeded.  An
action that changes registrations re-reads the side it changed, so the model holds what vCenter
says.  A shared action (mount, isolate, ...) acts once and may return a note for the step.

Safety: ``unregister_from_targets`` and ``unregister_from_production`` re-read the *new* side
first and unregister only the VMs found registered there (docs/failover.md, "Guarantees").
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from ansible_collections.tenantry.msp.plugins.module_utils._failover import nics
from ansible_collections.tenantry.msp.plugins.module_utils._failover.engine import Context, Outcomes, errors
from ansible_collections.tenantry.msp.plugins.module_utils._failover.model import VM
from ansible_collections.tenantry.msp.plugins.module_utils._failover.plan import boot_waves
from ansible_collections.tenantry.msp.plugins.module_utils._failover.reconcile import (
    confirm_production,
    is_copy,
    nfs_export,
    read_nfs,
    refresh_production,
    refresh_targets,
)
from ansible_collections.tenantry.msp.plugins.module_utils._failover.sites import VMRow, datastore_of
from ansible_collections.tenantry.msp.plugins.module_utils.clients.vsphere import (
    VSphereError,
    fault_message,
    retrieve_objects,
    vim,
)


def _prod(vm: VM) -> VMRow:
    if vm.prod is None:  # pragma: no cover - the steps' rules select VMs with a production registration
        raise VSphereError("%s has no production registration" % vm.name)
    return vm.prod


# ------------------------------------------------------------------- shared actions
def mount_nfs(ctx: Context) -> str | None:
    """Mount the tenant NFS export on the chosen production host (read-only for a test)."""
    export = nfs_export(ctx.sites)
    if export is None:
        raise VSphereError("no replication target told the NFS export of %s" % ctx.run.tenant.datastore)
    with contextlib.suppress(vim.fault.DuplicateName):  # mounted meanwhile: what we wanted
        ctx.sites.production.mount_nfs(
            ctx.run.choices.host_moid or "", export[0], export[1], read_only=ctx.run.flow == "test"
        )
    read_nfs(ctx.run, ctx.sites)
    return None


def unmount_nfs(ctx: Context) -> str | None:
    """Unmount it from every production host; a host where a VM (not the tenant's) still uses it keeps it."""
    prod, kept = ctx.sites.production, []
    for host in sorted(ctx.run.production.mounted_on):
        if host not in prod.hosts:
            continue
        try:
            prod.unmount_nfs(host)
        except vim.fault.NotFound:
            pass
        except vim.fault.ResourceInUse as exc:
            kept.append("%s (%s)" % (prod.host_name(host), fault_message(exc)))
    read_nfs(ctx.run, ctx.sites)
    return "left mounted on " + ", ".join(kept) if kept else None


def create_isolated_network(ctx: Context) -> str | None:
    """A vSwitch with no uplink and the tenant's isolated portgroup on it, on the chosen host."""
    tenant, prod = ctx.run.tenant, ctx.sites.production
    ns = prod.network_system(ctx.run.choices.host_moid or "")
    with contextlib.suppress(vim.fault.AlreadyExists):
        ns.AddVirtualSwitch(
            vswitchName=tenant.isolated_vswitch, spec=vim.host.VirtualSwitch.Specification(numPorts=128)
        )
    with contextlib.suppress(vim.fault.AlreadyExists):
        ns.AddPortGroup(
            portgrp=vim.host.PortGroup.Specification(
                name=tenant.isolated_portgroup,
                vlanId=0,
                vswitchName=tenant.isolated_vswitch,
                policy=vim.host.NetworkPolicy(),
            )
        )
    ctx.run.choices.network, ctx.run.production.isolated_on = prod.network(tenant.isolated_portgroup)
    return None


def remove_isolated_network(ctx: Context) -> str | None:
    tenant, prod = ctx.run.tenant, ctx.sites.production
    for host in sorted(ctx.run.production.isolated_on):
        if host not in prod.hosts:
            continue
        ns = prod.network_system(host)
        with contextlib.suppress(vim.fault.NotFound):
            ns.RemovePortGroup(pgName=tenant.isolated_portgroup)
        with contextlib.suppress(vim.fault.NotFound):
            ns.RemoveVirtualSwitch(vswitchName=tenant.isolated_vswitch)
    return None


def remove_test_leftovers(ctx: Context) -> str | None:
    """Delete the copies' directory on the test datastore and the (empty) test folder."""
    run, prod = ctx.run, ctx.sites.production
    datastore, directory = run.choices.test_datastore, run.tenant.test_directory
    if datastore:
        manager = prod.client.content.fileManager
        path = "[%s] %s" % (datastore, directory)
        outcome = ctx.tasks(
            prod.client, [("tidy", lambda: manager.DeleteDatastoreFile_Task(name=path, datacenter=prod.dc))], False
        )
        error = errors(outcome).get("tidy")
        if error and "not found" not in error.lower() and "notfound" not in error.lower():
            raise VSphereError("cannot delete %s: %s" % (path, error))
    if prod.test_folder is not None:
        children = retrieve_objects(prod.client, [prod.test_folder], ["childEntity"])[0]
        if not children.get("childEntity"):
            prod.client.run_tasks([("folder", prod.test_folder.Destroy_Task)], 1)
    return None


# -------------------------------------------------------------------- registrations
def register_in_production(ctx: Context, vms: list[VM]) -> Outcomes:
    """Register each VM's .vmx in the tenant's folder and pool, on the chosen host; then re-read."""
    run, prod = ctx.run, ctx.sites.production
    folder = prod.folder = prod.folder or prod.ensure_folder(run.tenant.folder)
    pool = prod.ensure_pool()
    host = prod.host_obj(run.choices.host_moid or "")

    def register(vm: VM) -> Callable[[], Any]:
        return lambda: folder.RegisterVM_Task(path=vm.vmx, name=vm.name, asTemplate=False, pool=pool, host=host)

    return _registered(ctx, vms, ctx.tasks(prod.client, [(vm.name, register(vm)) for vm in vms]), run.tenant.folder)


def register_copies(ctx: Context, vms: list[VM]) -> Outcomes:
    """Register each copy's .vmx in the tenant's test folder, on the chosen host; then re-read."""
    run, prod = ctx.run, ctx.sites.production
    folder = prod.test_folder = prod.test_folder or prod.ensure_folder(run.tenant.test_folder)
    if prod.folder is None:
        prod.folder = prod.ensure_folder(run.tenant.folder)
    pool = prod.ensure_pool()
    host = prod.host_obj(run.choices.host_moid or "")

    def register(vm: VM) -> Callable[[], Any]:
        vmx = copy_vmx(ctx, vm)
        return lambda: folder.RegisterVM_Task(path=vmx, name=vm.name, asTemplate=False, pool=pool, host=host)

    results = ctx.tasks(prod.client, [(vm.name, register(vm)) for vm in vms])
    return _registered(ctx, vms, results, run.tenant.test_folder)


def _registered(ctx: Context, vms: list[VM], results: dict[str, Any], folder: str) -> Outcomes:
    """Re-read production: a registration that succeeded must be found there."""
    outcomes = errors(results)
    refresh_production(ctx.run, ctx.sites)
    for vm in vms:
        if not outcomes.get(vm.name) and vm.prod is None:
            outcomes[vm.name] = "registered, but not found in %s afterwards" % folder
    return outcomes


def register_on_targets(ctx: Context, vms: list[VM]) -> Outcomes:
    """Failback: register each VM's .vmx (now on the NFS datastore) on its origin target; then re-read."""
    run, sites = ctx.run, ctx.sites
    refresh_production(run, sites)
    outcomes: Outcomes = {}
    by_site: dict[str, list[tuple[str, Callable[[], Any]]]] = {}
    ready = []
    for vm in vms:
        vmx = vm.prod.vmx if vm.prod is not None else (vm.vmx_back or vm.vmx)
        if datastore_of(vmx) != run.tenant.datastore:
            outcomes[vm.name] = "its files (%s) are not on %s; relocate it first" % (vmx, run.tenant.datastore)
            continue
        vm.vmx_back = vmx
        ready.append(vm)
        site = sites.targets[vm.origin or ""]
        by_site.setdefault(site.name, []).append((vm.name, site.register(vm.name, vmx)))
    ctx.remember(ready)  # the path is journaled before the registration that uses it
    for name, starters in sorted(by_site.items()):
        outcomes.update(errors(ctx.tasks(sites.targets[name].client, starters)))
    refresh_targets(run, sites)
    for vm in vms:
        if not outcomes.get(vm.name) and vm.target is None:
            outcomes[vm.name] = "registered, but not found on %s afterwards" % vm.origin
    return outcomes


def unregister_from_targets(ctx: Context, vms: list[VM]) -> Outcomes:
    """Failover: never the only registration: re-read production, unregister only what is there."""
    confirm_production(ctx.run, ctx.sites)
    outcomes: Outcomes = {}
    calls = []
    for vm in vms:
        if vm.prod is None:
            outcomes[vm.name] = "not found in production: left registered on %s" % vm.origin
        elif vm.target is not None:
            calls.append((vm.name, vm.target.obj.UnregisterVM))
    outcomes.update(errors(ctx.calls(None, calls)))  # several targets at once (they share no slots)
    return outcomes


def unregister_from_production(ctx: Context, vms: list[VM]) -> Outcomes:
    """Failback: never the only registration: re-read the targets, unregister only what is back there."""
    refresh_targets(ctx.run, ctx.sites)
    outcomes: Outcomes = {}
    calls = []
    for vm in vms:
        if vm.target is None:
            outcomes[vm.name] = "not found on %s: left registered in production" % vm.origin
        elif vm.prod is not None:
            calls.append((vm.name, vm.prod.obj.UnregisterVM))
    outcomes.update(errors(ctx.calls(ctx.sites.client, calls)))
    return outcomes


# ------------------------------------------------------------------ configuration
def reconfigure_network(ctx: Context, vms: list[VM]) -> Outcomes:
    """One reconfiguration per VM: its NICs onto the chosen portgroup, its tags, the moved/copied answer."""
    run = ctx.run
    portgroup = run.choices.portgroup or ""

    def spec(vm: VM) -> Any:
        row = _prod(vm)
        devices = nics.device_changes(nics.to_change(row, vm.nics, portgroup), portgroup, run.choices.network)
        options = [vim.option.OptionValue(key=k, value=v) for k, v in run.tags_to_write(vm).items()]
        if devices or options:
            options.append(vim.option.OptionValue(key=run.answer[0], value=run.answer[1]))
        return vim.vm.ConfigSpec(deviceChange=devices, extraConfig=options)

    def reconfigure(vm: VM) -> Callable[[], Any]:
        config = spec(vm)
        return lambda: _prod(vm).obj.ReconfigVM_Task(spec=config)

    return errors(ctx.tasks(ctx.sites.client, [(vm.name, reconfigure(vm)) for vm in vms]))


def grant_permissions(ctx: Context, vms: list[VM]) -> Outcomes:
    """The tenant's production account gets its role on each VM."""
    manager = ctx.sites.client.content.authorizationManager
    principal = ctx.run.choices.principal or {"principal": ctx.run.tenant.account, "group": False}
    role = ctx.run.choices.role_id
    if role is None:  # pragma: no cover - the preflight refuses an unknown role
        raise VSphereError("the production role is unknown")
    permission = vim.AuthorizationManager.Permission(
        principal=principal["principal"], group=principal["group"], roleId=role, propagate=True
    )

    def grant(vm: VM) -> Callable[[], Any]:
        return lambda: manager.SetEntityPermissions(entity=_prod(vm).obj, permission=[permission])

    return errors(ctx.calls(ctx.sites.client, [(vm.name, grant(vm)) for vm in vms]))


# ---------------------------------------------------------------------------- power
def power_on_in_waves(ctx: Context, vms: list[VM]) -> Outcomes:
    """Power on in the tenant's boot order: wave after wave (each at once), waiting a wave's delay."""
    outcomes: Outcomes = {}
    chosen = {vm.name: vm for vm in vms}
    waves = [w for w in boot_waves(ctx.run.tenant, ctx.run.order) if any(n in chosen for n in w.vms)]
    for number, wave in enumerate(waves, 1):
        members = [chosen[n] for n in wave.vms if n in chosen]
        starters = [(vm.name, _prod(vm).obj.PowerOnVM_Task) for vm in members]
        outcomes.update(errors(ctx.tasks(ctx.sites.client, starters)))
        if wave.delay and number < len(waves):
            ctx.event("boot order: wave %d (%s) powered on, waiting %d s" % (number, ", ".join(wave.vms), wave.delay))
            time.sleep(wave.delay)
    return outcomes


def power_off(ctx: Context, vms: list[VM]) -> Outcomes:
    return errors(ctx.tasks(ctx.sites.client, [(vm.name, _prod(vm).obj.PowerOffVM_Task) for vm in vms]))


# ------------------------------------------------------------------------- storage
def relocate_to_production(ctx: Context, vms: list[VM]) -> Outcomes:
    """Storage vMotion each VM to the production datastore the preflight chose for it."""
    placed = ctx.run.choices.datastores or {}
    outcomes: Outcomes = {}
    starters = []
    for vm in vms:
        datastore = ctx.sites.datastores.get(placed.get(vm.name, ""))
        if datastore is None:
            outcomes[vm.name] = "no production datastore was chosen for it"
            continue
        spec = vim.vm.RelocateSpec(datastore=datastore["obj"])
        starters.append((vm.name, lambda vm=vm, spec=spec: _prod(vm).obj.RelocateVM_Task(spec=spec)))
    outcomes.update(errors(ctx.tasks(ctx.sites.client, starters)))
    return outcomes


def relocate_to_nfs(ctx: Context, vms: list[VM]) -> Outcomes:
    """Failback: storage vMotion each VM back to the NFS datastore (onto the mounting host); re-read."""
    run, prod = ctx.run, ctx.sites.production
    starters = []
    for vm in vms:
        spec = vim.vm.RelocateSpec(datastore=prod.nfs.obj)
        if _prod(vm).host not in prod.nfs.mounted_on:
            spec.host = prod.host_obj(run.choices.host_moid or "")
            if prod.pool is not None:
                spec.pool = prod.pool
        starters.append((vm.name, lambda vm=vm, spec=spec: _prod(vm).obj.RelocateVM_Task(spec=spec)))
    outcomes = errors(ctx.tasks(prod.client, starters))
    refresh_production(run, ctx.sites)  # where the .vmx is now (svMotion moves it)
    for vm in vms:
        if not outcomes.get(vm.name) and vm.prod is not None:
            vm.vmx_back = vm.prod.vmx
    return outcomes


def copy_files(ctx: Context, vms: list[VM]) -> Outcomes:
    """Test: copy each VM's directory from the NFS datastore to the test datastore (files, then disks)."""
    prod = ctx.sites.production
    browser = retrieve_objects(prod.client, [prod.nfs.obj], ["browser"])[0]["browser"]
    sources = {vm.name: vm.vmx.rsplit("/", 1)[0] for vm in vms}
    spec = vim.host.DatastoreBrowser.SearchSpec(matchPattern=["*"])

    def search(folder: str) -> Callable[[], Any]:
        return lambda: browser.SearchDatastore_Task(datastorePath=folder, searchSpec=spec)

    def make(name: str) -> Callable[[], Any]:
        target = copy_dir(ctx, name)
        return lambda: prod.client.content.fileManager.MakeDirectory(
            name=target, datacenter=prod.dc, createParentDirectories=True
        )

    listing = ctx.tasks(prod.client, [(vm.name, search(sources[vm.name])) for vm in vms], timed=False)
    outcomes: Outcomes = {}
    files: dict[str, list[str]] = {}
    for vm in vms:
        found = listing.get(vm.name)
        if isinstance(found, str) or found is None:
            outcomes[vm.name] = "cannot list %s: %s" % (sources[vm.name], found)
        else:
            files[vm.name] = [f.path for f in found.file or []]
    made = errors(ctx.calls(prod.client, [(name, make(name)) for name in files], timed=False))
    starters = []
    for name, paths in files.items():
        error = made.get(name)
        if error and "exist" not in error.lower():
            outcomes[name] = "cannot create %s: %s" % (copy_dir(ctx, name), error)
            continue
        starters += _file_copies(ctx, name, sources[name], paths)
    for key, error in errors(ctx.tasks(prod.client, starters)).items():
        name = key.split("|")[0]
        if error and not outcomes.get(name):
            outcomes[name] = "copying %s: %s" % (key.split("|")[1], error)
    return {vm.name: outcomes.get(vm.name) for vm in vms}


def _file_copies(ctx: Context, name: str, source: str, paths: list[str]) -> list[tuple[str, Callable[[], Any]]]:
    """One starter per file (``<vm>|<file>``); locks are not copied, extents travel with their descriptor."""
    content, dc = ctx.sites.client.content, ctx.sites.production.dc
    starters = []
    for path in paths:
        if path.endswith(".lck") or _is_extent(path):
            continue
        src, dst = "%s/%s" % (source, path), "%s/%s" % (copy_dir(ctx, name), path)
        copier = _disk_copier if src.endswith(".vmdk") else _file_copier
        starters.append(("%s|%s" % (name, path), copier(content, dc, src, dst)))
    return starters


def _disk_copier(content: Any, dc: Any, src: str, dst: str) -> Callable[[], Any]:
    return lambda: content.virtualDiskManager.CopyVirtualDisk_Task(
        sourceName=src, sourceDatacenter=dc, destName=dst, destDatacenter=dc, force=True
    )


def _file_copier(content: Any, dc: Any, src: str, dst: str) -> Callable[[], Any]:
    return lambda: content.fileManager.CopyDatastoreFile_Task(
        sourceName=src, sourceDatacenter=dc, destinationName=dst, destinationDatacenter=dc, force=True
    )


def _is_extent(path: str) -> bool:
    return any(
        path.endswith(s)
        for s in ("-flat.vmdk", "-delta.vmdk", "-sesparse.vmdk", "-ctk.vmdk", "-rdm.vmdk", "-rdmp.vmdk")
    )


def destroy_copies(ctx: Context, vms: list[VM]) -> Outcomes:
    """Cleanup: delete each copy and its files, only when its files are under the copies' directory."""
    outcomes: Outcomes = {}
    starters = []
    for vm in vms:
        if vm.prod is None or not is_copy(ctx.run.tenant, vm.prod):
            outcomes[vm.name] = "not a test copy: its files are not under %s/" % ctx.run.tenant.test_directory
            continue
        starters.append((vm.name, vm.prod.obj.Destroy_Task))
    outcomes.update(errors(ctx.tasks(ctx.sites.client, starters)))
    return outcomes


# --------------------------------------------------------------------------- paths
def copy_dir(ctx: Context, name: str) -> str:
    return "[%s] %s/%s" % (ctx.run.choices.test_datastore or "", ctx.run.tenant.test_directory, name)


def copy_vmx(ctx: Context, vm: VM) -> str:
    return "%s/%s" % (copy_dir(ctx, vm.name), vm.vmx.rsplit("/", 1)[-1] if vm.vmx else vm.name + ".vmx")

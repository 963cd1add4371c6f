# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""What each flow does, step by step: one table per flow (failover, test, failback, cleanup).

Each row is a step: its name and title, *when* it acts on a VM (a rule that returns ``None``
to act, or why it skips), its *effect* on the model (the plan, check mode and the diff come from
applying it to a projection; a real run applies it once the step succeeded), and its *action*
(the vSphere calls, in ``actions.py``).  A shared row (mount, isolate, ...) acts once for the run.
``rollback`` runs the failback table (of a failover) or the cleanup table (of a test).

The order of the rows is the safety argument (docs/failover.md, "Guarantees"): a VM is
registered on its new side before it is unregistered from its old side, so at every instant it
is registered on its replication target, in production, or both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

from ansible_collections.tenantry.msp.plugins.module_utils._failover import actions, nics
from ansible_collections.tenantry.msp.plugins.module_utils._failover.engine import ReadStep, SharedStep, Step, VMStep
from ansible_collections.tenantry.msp.plugins.module_utils._failover.model import VM, Run, projected_row

Rule = Callable[[Run, VM], Optional[str]]


@dataclass(frozen=True)
class Flow:
    name: str
    steps: tuple[Step, ...]

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)


# ======================================================================== shared rules
def in_production(rule: Rule, missing: str = "not registered in production") -> Rule:
    """``rule``, for a VM registered in production (test and cleanup: with a registered copy)."""

    def when(run: Run, vm: VM) -> str | None:
        return missing if vm.prod is None else rule(run, vm)

    return when


def not_in_production(already: str) -> Rule:
    def when(run: Run, vm: VM) -> str | None:
        return already if vm.prod is not None else None

    return when


def network_differs(run: Run, vm: VM) -> str | None:
    """Its NICs are not all on the chosen portgroup, or its tags are missing."""
    portgroup = run.choices.portgroup or ""
    if vm.prod is not None and (nics.to_change(vm.prod, vm.nics, portgroup) or run.tags_to_write(vm)):
        return None
    return "already on %s" % portgroup


def permission_missing(run: Run, vm: VM) -> str | None:
    return None if not vm.permission else "already granted"


def powered_off(run: Run, vm: VM) -> str | None:
    return None if vm.prod is not None and vm.prod.power != "poweredOn" else "already powered on"


def powered_on(run: Run, vm: VM) -> str | None:
    return None if vm.prod is not None and vm.prod.power == "poweredOn" else "already powered off"


def on_portgroup(run: Run, vm: VM) -> None:
    """The network step's effect: every recorded NIC on the portgroup, the tags written."""
    if vm.prod is not None:
        vm.prod.nics = nics.after(vm.prod, vm.nics, run.choices.portgroup or "")
        vm.prod.extra = dict(vm.prod.extra, **run.tags_to_write(vm))


def granted(run: Run, vm: VM) -> None:
    vm.permission = True


def running(run: Run, vm: VM) -> None:
    if vm.prod is not None:
        vm.prod.power = "poweredOn"


def stopped(run: Run, vm: VM) -> None:
    if vm.prod is not None:
        vm.prod.power = "poweredOff"


def off_production(run: Run, vm: VM) -> None:
    vm.prod = None


# ---- shared steps: the NFS datastore in production
def nfs_needed_by(*rules: Rule) -> Callable[[Run], tuple[bool, str]]:
    """Mount when a VM still needs one of the steps that read the NFS datastore from production."""

    def when(run: Run) -> tuple[bool, str]:
        host, datastore = run.choices.host_moid, run.tenant.datastore
        if host in run.production.mounted_on:
            return False, "%s already mounted on %s" % (datastore, run.production.host_name(host))
        needed = any(rule(run, vm) is None for vm in run.live() for rule in rules)
        return needed, "mount %s on %s" % (datastore, run.production.host_name(host)) if needed else "not needed"

    return when


def mounted(run: Run) -> None:
    if run.choices.host_moid:
        run.production.mounted_on = run.production.mounted_on | {run.choices.host_moid}


def nfs_unused(run: Run) -> tuple[bool, str]:
    """Unmount once no VM of the tenant (in the run or not) has files there."""
    production, datastore = run.production, run.tenant.datastore
    if not production.mounted_on:
        return False, "%s is not mounted in production" % datastore
    nfs = production.nfs_key
    users = {vm.name for vm in run.vms.values() if vm.prod is not None and nfs in vm.prod.datastores}
    users |= {n for n, r in {**production.vms, **production.copies}.items() if n not in run.vms and nfs in r.datastores}
    if users:
        names = sorted(users)
        return False, "left mounted: %s still use%s %s" % (
            ", ".join(names[:5]),
            "s" if len(names) == 1 else "",
            datastore,
        )
    if run.flow == "test" and any(to_copy(run, vm) is None for vm in run.live()):
        return False, "left mounted: copies not made"
    hosts = ", ".join(sorted(production.host_name(h) for h in production.mounted_on))
    return True, "unmount %s from %s" % (datastore, hosts)


def unmounted(run: Run) -> None:
    run.production.mounted_on = set()


# ============================================================================ failover
def relocate_needed(run: Run, vm: VM) -> str | None:
    """Still on the NFS datastore (or nowhere yet): storage vMotion it to production."""
    prod = vm.prod
    on_nfs = prod is not None and (run.production.nfs_key in prod.datastores or not prod.datastores)
    return None if on_nfs else "already on production datastores"


def on_target(run: Run, vm: VM) -> str | None:
    return None if vm.target is not None else "not registered on its replication target"


def registered_in_production(run: Run, vm: VM) -> None:
    if vm.prod is None:
        vm.prod = projected_row(vm, vm.vmx, run.choices.host_moid, [run.production.nfs_key])
    vm.permission = False


def off_target(run: Run, vm: VM) -> None:
    vm.target = None


def on_production_storage(run: Run, vm: VM) -> None:
    name = (run.choices.datastores or {}).get(vm.name, "")
    if vm.prod is not None:
        vm.prod.datastores = [run.production.datastores.get(name, "production")]


FAILOVER = Flow(
    "failover",
    (
        ReadStep("read the VMs on the replication targets and record their .vmx paths"),
        SharedStep(
            "mount",
            "mount the tenant NFS datastore on the production host",
            "production",
            when=nfs_needed_by(not_in_production("already registered in production"), in_production(relocate_needed)),
            effect=mounted,
            action=actions.mount_nfs,
        ),
        VMStep(
            "register",
            "register the VMs in production (tenant folder and resource pool)",
            "production",
            when=not_in_production("already registered in production"),
            effect=registered_in_production,
            action=actions.register_in_production,
        ),
        VMStep(
            "unregister",
            "unregister the VMs from the replication target",
            "target",
            when=in_production(on_target),
            effect=off_target,
            action=actions.unregister_from_targets,
        ),
        VMStep(
            "network",
            "move the NICs to the destination VLAN portgroup",
            "production",
            when=in_production(network_differs),
            effect=on_portgroup,
            action=actions.reconfigure_network,
        ),
        VMStep(
            "permissions",
            "grant the tenant's production account its permissions",
            "production",
            when=in_production(permission_missing),
            effect=granted,
            action=actions.grant_permissions,
        ),
        VMStep(
            "power_on",
            "power the VMs on, in boot order",
            "production",
            when=in_production(powered_off),
            effect=running,
            action=actions.power_on_in_waves,
        ),
        VMStep(
            "relocate",
            "storage vMotion the VMs to production datastores",
            "production",
            when=in_production(relocate_needed),
            effect=on_production_storage,
            action=actions.relocate_to_production,
        ),
        SharedStep(
            "unmount",
            "unmount the NFS datastore from the production host",
            "production",
            when=nfs_unused,
            effect=unmounted,
            action=actions.unmount_nfs,
        ),
    ),
)


# ================================================================================ test
def to_copy(run: Run, vm: VM) -> str | None:
    if vm.prod is not None:
        return "copy already registered"
    return "copied already" if vm.copied else None


def copied(run: Run, vm: VM) -> None:
    vm.copied = True


def copy_registered(run: Run, vm: VM) -> None:
    """A copy in the test folder: its .vmx under the copies' directory on the test datastore."""
    if vm.prod is None:
        vmx = "[%s] %s/%s/%s" % (
            run.choices.test_datastore or "",
            run.tenant.test_directory,
            vm.name,
            vm.vmx.rsplit("/", 1)[-1] if vm.vmx else vm.name + ".vmx",
        )
        vm.prod = projected_row(vm, vmx, run.choices.host_moid, [])
    vm.permission = False


def isolated_network_missing(run: Run) -> tuple[bool, str]:
    host, tenant = run.choices.host_moid, run.tenant
    if host in run.production.isolated_on:
        return False, "%s already on %s" % (tenant.isolated_portgroup, run.production.host_name(host))
    return True, "vSwitch %s (no uplink) with portgroup %s on %s" % (
        tenant.isolated_vswitch,
        tenant.isolated_portgroup,
        run.production.host_name(host),
    )


def isolated(run: Run) -> None:
    if run.choices.host_moid:
        run.production.isolated_on = run.production.isolated_on | {run.choices.host_moid}


NO_COPY = "no registered copy"

TEST = Flow(
    "test",
    (
        ReadStep("read the VMs on the replication targets (left untouched)"),
        SharedStep(
            "mount",
            "mount the tenant NFS datastore read-only on the production host",
            "production",
            when=nfs_needed_by(to_copy),
            effect=mounted,
            action=actions.mount_nfs,
        ),
        SharedStep(
            "isolate",
            "create the isolated test network (a vSwitch with no uplink)",
            "production",
            when=isolated_network_missing,
            effect=isolated,
            action=actions.create_isolated_network,
        ),
        VMStep(
            "copy",
            "copy the VMs' files to a production datastore",
            "production",
            when=to_copy,
            effect=copied,
            action=actions.copy_files,
        ),
        SharedStep(
            "unmount",
            "unmount the NFS datastore (the copies do not need it)",
            "production",
            when=nfs_unused,
            effect=unmounted,
            action=actions.unmount_nfs,
        ),
        VMStep(
            "register",
            "register the copies in the tenant's test folder",
            "production",
            when=not_in_production("copy already registered"),
            effect=copy_registered,
            action=actions.register_copies,
        ),
        VMStep(
            "network",
            "connect the copies to the isolated network only",
            "production",
            when=in_production(network_differs, NO_COPY),
            effect=on_portgroup,
            action=actions.reconfigure_network,
        ),
        VMStep(
            "permissions",
            "grant the tenant's production account its permissions",
            "production",
            when=in_production(permission_missing, NO_COPY),
            effect=granted,
            action=actions.grant_permissions,
        ),
        VMStep(
            "power_on",
            "power the copies on, in boot order",
            "production",
            when=in_production(powered_off, NO_COPY),
            effect=running,
            action=actions.power_on_in_waves,
        ),
    ),
)


# ============================================================================ failback
def back_on_target(run: Run, vm: VM) -> str | None:
    return "already registered on %s" % vm.origin if vm.target is not None else None


def registered_on_target(run: Run, vm: VM) -> None:
    if vm.target is None:
        vm.target = projected_row(vm, vm.vmx, None, [])


def in_production_only(run: Run, vm: VM) -> str | None:
    return None if vm.prod is not None else "not registered in production"


def off_nfs(run: Run, vm: VM) -> str | None:
    on_nfs = vm.prod is not None and vm.prod.datastores == [run.production.nfs_key]
    return "already on %s" % run.tenant.datastore if on_nfs else None


def on_nfs(run: Run, vm: VM) -> None:
    """On the NFS datastore, on a host that mounts it."""
    if vm.prod is not None:
        vm.prod.datastores = [run.production.nfs_key]
        if vm.prod.host not in run.production.mounted_on:
            vm.prod.host = run.choices.host_moid


FAILBACK = Flow(
    "failback",
    (
        ReadStep("read the VMs in production and record where they came from"),
        SharedStep(
            "mount",
            "mount the tenant NFS datastore on the production host",
            "production",
            when=nfs_needed_by(in_production(off_nfs), back_on_target),
            effect=mounted,
            action=actions.mount_nfs,
        ),
        VMStep(
            "relocate",
            "storage vMotion the VMs back to the tenant NFS datastore",
            "production",
            when=in_production(off_nfs),
            effect=on_nfs,
            action=actions.relocate_to_nfs,
        ),
        VMStep(
            "power_off",
            "power the VMs off",
            "production",
            when=in_production(powered_on),
            effect=stopped,
            action=actions.power_off,
        ),
        VMStep(
            "register",
            "register the VMs on their replication target",
            "target",
            when=back_on_target,
            effect=registered_on_target,
            action=actions.register_on_targets,
        ),
        VMStep(
            "unregister",
            "unregister the VMs from production",
            "production",
            when=in_production_only,
            effect=off_production,
            action=actions.unregister_from_production,
        ),
        SharedStep(
            "unmount",
            "unmount the NFS datastore from the production host",
            "production",
            when=nfs_unused,
            effect=unmounted,
            action=actions.unmount_nfs,
        ),
    ),
)


# ============================================================================= cleanup
def a_copy(run: Run, vm: VM) -> str | None:
    return None


def network_present(run: Run) -> tuple[bool, str]:
    hosts = run.production.isolated_on
    if not hosts:
        return False, "no isolated network"
    return True, "remove %s and vSwitch %s from %s" % (
        run.tenant.isolated_portgroup,
        run.tenant.isolated_vswitch,
        ", ".join(sorted(run.production.host_name(h) for h in hosts)),
    )


def network_removed(run: Run) -> None:
    run.production.isolated_on = set()


def leftovers(run: Run) -> tuple[bool, str]:
    things = []
    if run.choices.test_datastore and run.production.test_dir:
        things.append("[%s] %s" % (run.choices.test_datastore, run.tenant.test_directory))
    if run.production.test_folder:
        things.append("folder %s" % run.tenant.test_folder)
    return (True, "remove " + " and ".join(things)) if things else (False, "nothing left")


def tidied(run: Run) -> None:
    run.production.test_folder = False
    run.production.test_dir = False


CLEANUP = Flow(
    "cleanup",
    (
        ReadStep("read the test copies in the tenant's test folder", "production"),
        VMStep(
            "power_off",
            "power the copies off",
            "production",
            when=in_production(powered_on, NO_COPY),
            effect=stopped,
            action=actions.power_off,
        ),
        VMStep(
            "destroy",
            "delete the copies and their files",
            "production",
            when=in_production(a_copy, NO_COPY),
            effect=off_production,
            action=actions.destroy_copies,
        ),
        SharedStep(
            "unisolate",
            "remove the isolated test network",
            "production",
            when=network_present,
            effect=network_removed,
            action=actions.remove_isolated_network,
        ),
        SharedStep(
            "tidy",
            "remove the test folder and what is left of the copies' directory",
            "production",
            when=leftovers,
            effect=tidied,
            action=actions.remove_test_leftovers,
        ),
        SharedStep(
            "unmount",
            "unmount the NFS datastore if a test left it mounted",
            "production",
            when=nfs_unused,
            effect=unmounted,
            action=actions.unmount_nfs,
        ),
    ),
)

FLOWS: dict[str, Flow] = {flow.name: flow for flow in (FAILOVER, TEST, FAILBACK, CLEANUP)}
STEPS: dict[str, tuple[Step, ...]] = {name: flow.steps for name, flow in FLOWS.items()}

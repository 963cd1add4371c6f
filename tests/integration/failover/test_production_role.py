"""Least privilege after a failover (issue 12, section 6), proved on the strict simulator.

The failover grants the tenant's production account the collection's role (``PRODUCTION_ROLE``) on each
of its VMs.  Logged in to the production vCenter **as that account** (a directory account of the
vcenter-mode simulator, privileges enforced as vSphere does): it powers its VMs off and on, opens a
console (a ticket), takes, reverts and removes snapshots (on its test copy, which gets the
same role); it cannot change its VM's network or
unregister it, touch a port group or a host, another tenant's folder or VM, or permissions
(``NoPermission``).  ``Admin`` is refused unless ``allow_admin_role`` says so.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import failoverlab as fl
import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim
from support import vsphere as vs

from tenantry.lab import add_directory_user

pytestmark = pytest.mark.integration


def account_of(t: Any, lab_state_dir: Path) -> tuple[str, str]:
    """The tenant's production account, made in the simulator's directory (vCenter's SSO stand-in)."""
    user, password = f"{t.name}-ops@vsphere.local", secrets.token_urlsafe(12)
    add_directory_user(lab_state_dir, "vcenter", user, password)
    t.spec["production"]["account"] = user
    return user, password


def refused(call: Callable[[], Any], *privileges: str) -> None:
    """``call`` fails with NoPermission naming one of ``privileges`` (the first one vSphere checks)."""
    with pytest.raises(vim.fault.NoPermission) as caught:
        result = call()
        if isinstance(result, vim.Task):
            WaitForTask(result)
    assert caught.value.privilegeId in privileges


def test_the_tenant_operates_its_vms_and_nothing_else(lab_tenant: Any, lab_state_dir: Path) -> None:
    t = lab_tenant("pr", vms=2)
    other = lab_tenant("pro", vms=1)
    user, password = account_of(t, lab_state_dir)
    account_of(other, lab_state_dir)
    for tenant, over in ((t, {"vms": [t.vms[0]]}), (other, {})):
        rc, out = tenant.run(check_account=True, **over)  # the directory knows the account now
        assert rc == 0, out
    assert any("production role: tenantry-tenant-production" in line for line in out["preflight_lines"])
    # Its second VM in a test failover: the copy gets the same role (and its files really are on a
    # production datastore: the simulator's storage vMotion moves no files, so a failed-over VM's
    # snapshot files would point at the unmounted NFS datastore).
    rc, out = t.run(mode="test", vms=[t.vms[1]], check_account=True)
    assert rc == 0, out

    session = vs.login(t.vcenter, user, password)
    content = session.RetrieveContent()
    index = content.searchIndex
    mine = index.FindByInventoryPath(f"provider/vm/tenants/{t.name}/{t.vms[0]}")
    copy = index.FindByInventoryPath(f"provider/vm/tenants/{t.name}/test-failover/{t.vms[1]}")
    theirs = index.FindByInventoryPath(f"provider/vm/tenants/{other.name}/{other.vms[0]}")
    their_folder = index.FindByInventoryPath(f"provider/vm/tenants/{other.name}")
    assert mine is not None and theirs is not None

    # Operate and console its own VM; snapshots.
    WaitForTask(mine.PowerOffVM_Task())
    WaitForTask(mine.PowerOnVM_Task())
    assert mine.runtime.powerState == "poweredOn"
    ticket = mine.AcquireTicket(ticketType="webmks")
    assert ticket.ticket and ticket.cfgFile == mine.config.files.vmPathName
    WaitForTask(copy.PowerOffVM_Task())
    WaitForTask(copy.CreateSnapshot_Task(name="before-change", memory=False, quiesce=False))
    snapshot = copy.snapshot.rootSnapshotList[0].snapshot
    WaitForTask(snapshot.RevertToSnapshot_Task())
    WaitForTask(snapshot.RemoveSnapshot_Task(removeChildren=False))
    assert copy.snapshot is None or not copy.snapshot.rootSnapshotList
    WaitForTask(copy.PowerOnVM_Task())

    # Nothing more on its VM: its network, its registration, its permissions.
    nic = next(d for d in mine.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard))
    nic.backing = vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName="VM Network")
    edit = vim.vm.ConfigSpec(deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="edit", device=nic)])
    refused(lambda: mine.ReconfigVM_Task(edit), "VirtualMachine.Config.EditDevice", "Network.Assign")
    refused(mine.UnregisterVM, "VirtualMachine.Inventory.Unregister")
    grant = vim.AuthorizationManager.Permission(principal=user, group=False, roleId=-1, propagate=True)
    refused(
        lambda: content.authorizationManager.SetEntityPermissions(entity=mine, permission=[grant]),
        "Authorization.ModifyPermissions",
    )

    # Nothing on hosts and networks.
    host = mine.runtime.host
    portgroup = vim.host.PortGroup.Specification(
        name="rogue-pg", vlanId=4000, vswitchName="vSwitch0", policy=vim.host.NetworkPolicy()
    )
    refused(lambda: host.configManager.networkSystem.AddPortGroup(portgrp=portgroup), "Host.Config.Network")
    refused(
        lambda: host.configManager.networkSystem.RemovePortGroup(pgName=f"tenant-{other.name}-vlan2000"),
        "Host.Config.Network",
    )
    refused(lambda: host.EnterMaintenanceMode_Task(timeout=0), "Host.Config.Maintenance")
    refused(
        lambda: host.configManager.datastoreSystem.CreateNasDatastore(fl.nas_spec(other.spec)), "Host.Config.Storage"
    )

    # Nothing on another tenant: its folder, its VM.
    refused(lambda: their_folder.CreateFolder("mine-now"), "Folder.Create")
    refused(theirs.PowerOffVM_Task, "VirtualMachine.Interact.PowerOff")
    refused(lambda: theirs.AcquireTicket(ticketType="webmks"), "VirtualMachine.Interact.ConsoleInteract")
    refused(
        lambda: theirs.CreateSnapshot_Task(name="x", memory=False, quiesce=False),
        "VirtualMachine.State.CreateSnapshot",
    )
    assert theirs.runtime.powerState == "poweredOn"
    assert "rogue-pg" not in [p.spec.name for p in host.config.network.portgroup]


def test_admin_is_refused_unless_allowed(lab_tenant: Any) -> None:
    t = lab_tenant("adm", vms=1)
    rc, out = t.run(production_role="Admin")
    assert rc == 1 and out["msg"].startswith("refused before any change"), out
    assert "production_role Admin gives the tenant's account every privilege" in out["msg"]
    assert "allow_admin_role (role variable failover_allow_admin_role)" in out["msg"]
    assert t.placement() == {t.vms[0]: {"target"}}
    rc, out = t.run(production_role="Admin", allow_admin_role=True)
    assert rc == 0, out
    vm = t.production_vms()[t.vms[0]]
    perms = t.vc_si.RetrieveContent().authorizationManager.RetrieveEntityPermissions(vm, False)
    assert [(p.principal, p.roleId) for p in perms] == [("admin", -1)]

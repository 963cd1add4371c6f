"""The tenant account on its nested target can replicate, and nothing more (issue 12, section 2).

The real tenantry.msp.nested_host module configures an ESX-mode simulator (the nested target): tenant
network, NFS datastore, the built-in tenant role, the tenant's local account and its permissions.  Then,
logged in as the tenant with pyVmomi on the strict simulator (privileges enforced as vSphere does):

- a replication job's sequence succeeds: create the replica on the tenant datastore, upload its disk
  files, browse, attach the disks, snapshot, revert, remove a snapshot, power on and off, unregister,
  register again, delete leftover files, delete the replica;
- every privilege of the role is needed: without it, its step fails with NoPermission naming it;
- changing the host fails with NoPermission: port groups, the vSwitch security policy, VMkernel NICs,
  SSH (service and firewall), the NFS mount, another tenant's datastore, the advanced options, the
  account list, roles and permissions; and the host reads back unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim
from support import run_module
from support import vsphere as vs

from ansible_collections.tenantry.msp.plugins.module_utils._tenant_role import TENANT_PRIVILEGES

pytestmark = pytest.mark.integration

MODULE = "tenantry.msp.nested_host"
USER = "tenant-t6"
PASSWORD = "Tenant-Secret-6e2b"
DS = "nfs-t6"
KB = 1024


@pytest.fixture
def target(
    tmp_path: Path, esx_factory: Callable[..., Any], vsphere_connect: Callable[[Any], Any]
) -> tuple[Any, vs.EsxParts, vs.EsxParts]:
    """(endpoint, the provider's view, the tenant's view) of a nested target configured by nested_host."""
    ep = esx_factory("t6")
    args = {
        "hostname": ep.hostname,
        "port": ep.port,
        "username": ep.username,
        "password": ep.password,
        "ca_file": str(ep.ca_file),
        "vmkernel": {"ip": "10.206.0.100/24", "mac": "00:50:56:00:0c:86"},
        "nfs": {"server": "192.168.50.10", "path": "/exports/tenants/t6", "datastore": DS},
        "tenant_access": {"user": USER, "password": PASSWORD},
    }
    run = run_module(tmp_path, MODULE, args)
    assert run.rc == 0 and run.result["changed"] is True, run.stdout[-3000:]
    admin = vs.esx_parts(vsphere_connect(ep))
    tenant = vs.esx_parts(vs.login(ep, USER, PASSWORD))
    return ep, admin, tenant


def datastore(parts: vs.EsxParts, name: str) -> Any:
    return next(d for d in parts.host.datastore if d.name == name)


def controller_key(vm: Any) -> int:
    return next(d.key for d in vm.config.hardware.device if isinstance(d, vim.vm.device.ParaVirtualSCSIController))


def snapshot(vm: Any, name: str) -> Any:
    def walk(trees: Any) -> Any:
        for tree in trees or []:
            if tree.name == name:
                return tree.snapshot
            found = walk(tree.childSnapshotList)
            if found is not None:
                return found
        return None

    return walk(vm.snapshot.rootSnapshotList if vm.snapshot else [])


def search(browser_parts: vs.EsxParts, folder: str) -> list[str]:
    task = datastore(browser_parts, DS).browser.SearchDatastore_Task(
        datastorePath=f"[{DS}] {folder}", searchSpec=vim.host.DatastoreBrowser.SearchSpec(matchPattern=["*"])
    )
    WaitForTask(task)
    return sorted(f.path for f in task.info.result.file)


def test_the_tenant_runs_a_replication_job(target: tuple[Any, vs.EsxParts, vs.EsxParts]) -> None:
    ep, admin, tenant = target
    # Create the replica VM on the tenant NFS datastore.
    replica = vs.create_vm(tenant, "replica-01", DS, [vs.scsi()], guest="otherGuest64", numCPUs=2, memoryMB=128)
    assert replica.config.files.vmPathName == f"[{DS}] replica-01/replica-01.vmx"

    # Upload its disk files (descriptor and extent) over the datastore HTTP interface, browse and read back.
    tenant_si = tenant.content.rootFolder  # any object of the session carries its cookie
    for name, data in (
        ("replica-01/disk-1.vmdk", vs.descriptor("disk-1-flat.vmdk", KB)),
        ("replica-01/disk-1-flat.vmdk", b"\0" * 4096),
    ):
        assert vs.datastore_file(ep, tenant_si, "PUT", DS, name, data)[0] in (200, 201)
    assert {"disk-1.vmdk", "disk-1-flat.vmdk", "replica-01.vmx"} <= set(search(tenant, "replica-01"))
    status, body = vs.datastore_file(ep, tenant_si, "GET", DS, "replica-01/disk-1.vmdk")
    assert status == 200 and b"disk-1-flat.vmdk" in body

    # Attach the uploaded disk.
    disk = vs.existing_disk(f"[{DS}] replica-01/disk-1.vmdk", KB, controller_key(replica))
    WaitForTask(replica.ReconfigVM_Task(vim.vm.ConfigSpec(deviceChange=[disk])))
    assert vs.disks_of(replica) == [(f"[{DS}] replica-01/disk-1.vmdk", KB)]

    # Restore points: snapshot, snapshot, revert to the first, remove the second.
    for name in ("restore-point-1", "restore-point-2"):
        WaitForTask(replica.CreateSnapshot_Task(name=name, memory=False, quiesce=False))
    WaitForTask(snapshot(replica, "restore-point-1").RevertToSnapshot_Task())
    WaitForTask(snapshot(replica, "restore-point-2").RemoveSnapshot_Task(removeChildren=False))
    assert [t.name for t in replica.snapshot.rootSnapshotList] == ["restore-point-1"]

    # Power on and off (a failover test on the target).
    WaitForTask(replica.PowerOnVM_Task())
    WaitForTask(replica.PowerOffVM_Task())

    # Unregister, register again from the .vmx: same host and path, so no question; the disk comes back.
    uuid, vmx = replica.config.uuid, replica.config.files.vmPathName
    replica.UnregisterVM()
    replica = vs.register(tenant.folder, vmx, tenant.pool, tenant.host)
    assert (replica.name, replica.config.uuid) == ("replica-01", uuid)
    assert vs.disks_of(replica) == [(f"[{DS}] replica-01/disk-1.vmdk", KB)]
    WaitForTask(replica.PowerOnVM_Task())
    assert replica.runtime.question is None
    WaitForTask(replica.PowerOffVM_Task())

    # Delete a leftover file, then the replica with its files.
    assert vs.datastore_file(ep, tenant_si, "PUT", DS, "replica-01/old-restore-point.log", b"x")[0] in (200, 201)
    WaitForTask(
        tenant.content.fileManager.DeleteDatastoreFile_Task(
            name=f"[{DS}] replica-01/old-restore-point.log", datacenter=tenant.dc
        )
    )
    WaitForTask(replica.Destroy_Task())
    assert [vm.name for vm in admin.folder.childEntity] == []


def test_every_privilege_of_the_role_is_needed(target: tuple[Any, vs.EsxParts, vs.EsxParts]) -> None:
    ep, admin, tenant = target
    tenant_si = tenant.content.rootFolder  # any object of the session carries its cookie
    auth = admin.content.authorizationManager
    role = next(r for r in auth.roleList if r.name == "tenantry-tenant")
    vs.datastore_file(ep, admin.content.rootFolder, "PUT", DS, "files/keep.log", b"x")

    def mine(vm: Any) -> Any:
        return vim.VirtualMachine(vm._moId, tenant.content.rootFolder._stub)

    def prepared(name: str, power: bool = False, snap: bool = False) -> Any:
        vm = vs.create_vm(admin, name, DS, [vs.scsi()])
        if snap:
            WaitForTask(vm.CreateSnapshot_Task(name="s1", memory=False, quiesce=False))
        if power:
            WaitForTask(vm.PowerOnVM_Task())
        return vm

    def register(_: Any) -> Any:
        vm = prepared("reg")
        vmx = vm.config.files.vmPathName
        vm.UnregisterVM()
        return tenant.folder.RegisterVM_Task(path=vmx, asTemplate=False, pool=tenant.pool, host=tenant.host)

    def attach(_: Any) -> Any:
        vm = prepared("attach")
        spec = vs.existing_disk(f"[{DS}] files/keep.vmdk", KB, controller_key(vm))
        return mine(vm).ReconfigVM_Task(vim.vm.ConfigSpec(deviceChange=[spec]))

    steps: dict[str, Callable[[Any], Any]] = {
        "Datastore.AllocateSpace": lambda _: vs.create_vm(tenant, "new", DS),
        "Datastore.Browse": lambda _: search(tenant, "files"),
        "Datastore.FileManagement": lambda _: tenant.content.fileManager.MakeDirectory(
            name=f"[{DS}] made", datacenter=tenant.dc
        ),
        "Datastore.DeleteFile": lambda _: tenant.content.fileManager.DeleteDatastoreFile_Task(
            name=f"[{DS}] files/keep.log", datacenter=tenant.dc
        ),
        "Resource.AssignVMToPool": lambda _: vs.create_vm(tenant, "new", DS),
        "VirtualMachine.Inventory.Create": lambda _: vs.create_vm(tenant, "new", DS),
        "VirtualMachine.Inventory.Register": register,
        "VirtualMachine.Inventory.Unregister": lambda _: mine(prepared("unreg")).UnregisterVM(),
        "VirtualMachine.Inventory.Delete": lambda _: mine(prepared("del")).Destroy_Task(),
        "VirtualMachine.Config.AddExistingDisk": attach,
        "VirtualMachine.State.CreateSnapshot": lambda _: mine(prepared("snap")).CreateSnapshot_Task(
            name="s", memory=False, quiesce=False
        ),
        "VirtualMachine.State.RevertToSnapshot": lambda _: mine(
            prepared("rev", snap=True)
        ).RevertToCurrentSnapshot_Task(),
        "VirtualMachine.State.RemoveSnapshot": lambda _: mine(prepared("rem", snap=True)).RemoveAllSnapshots_Task(),
        "VirtualMachine.Interact.PowerOn": lambda _: mine(prepared("on")).PowerOnVM_Task(),
        "VirtualMachine.Interact.PowerOff": lambda _: mine(prepared("off", power=True)).PowerOffVM_Task(),
    }
    assert set(steps) == set(TENANT_PRIVILEGES)
    try:
        for privilege, step in steps.items():
            others = [p for p in TENANT_PRIVILEGES if p != privilege]
            auth.UpdateAuthorizationRole(roleId=role.roleId, newName=role.name, privIds=others)
            fault = vs.no_permission(lambda step=step: step(None))
            assert fault.privilegeId == privilege, (privilege, fault.privilegeId, fault.object)
        # The upload itself (HTTP) is refused without Datastore.FileManagement too.
        auth.UpdateAuthorizationRole(
            roleId=role.roleId,
            newName=role.name,
            privIds=[p for p in TENANT_PRIVILEGES if p != "Datastore.FileManagement"],
        )
        assert vs.datastore_file(ep, tenant_si, "PUT", DS, "files/x.vmdk", b"x")[0] == 403
    finally:
        auth.UpdateAuthorizationRole(roleId=role.roleId, newName=role.name, privIds=list(TENANT_PRIVILEGES))


def test_the_tenant_cannot_change_the_host(target: tuple[Any, vs.EsxParts, vs.EsxParts], tmp_path: Path) -> None:
    ep, admin, tenant = target
    tenant_si = tenant.content.rootFolder  # any object of the session carries its cookie
    # Another tenant's datastore, mounted on this target by the provider, with a VM folder on it.
    admin.host.configManager.datastoreSystem.CreateNasDatastore(
        vs.nas_spec(str(tmp_path / "nfs-other"), "/exports/other")
    )
    other = vs.create_vm(admin, "other-replica", "nfs-other")
    other_vmx = other.config.files.vmPathName
    other.UnregisterVM()

    def read(parts: vs.EsxParts) -> dict[str, Any]:
        host, content = parts.host, parts.content
        net = host.config.network
        return {
            "portgroups": sorted((p.spec.name, p.spec.vlanId) for p in net.portgroup),
            "vswitches": sorted(
                (s.name, s.spec.policy.security.allowPromiscuous if s.spec.policy and s.spec.policy.security else None)
                for s in net.vswitch
            ),
            "vmknics": sorted(v.device for v in net.vnic),
            "services": sorted((s.key, s.running, s.policy) for s in host.config.service.service),
            "ssh firewall": next(r.enabled for r in host.config.firewall.ruleset if r.key == "sshServer"),
            "datastores": sorted(d.name for d in host.datastore),
            "follow": host.configManager.advancedOption.QueryOptions("Net.FollowHardwareMac")[0].value,
            "users": sorted(
                u.principal
                for u in content.userDirectory.RetrieveUserGroups(
                    searchStr="", exactMatch=False, findUsers=True, findGroups=False
                )
            ),
            "roles": sorted((r.name, tuple(sorted(r.privilege or []))) for r in content.authorizationManager.roleList),
            "permissions": sorted(
                (p.entity._moId, p.principal, p.roleId) for p in content.authorizationManager.RetrieveAllPermissions()
            ),
        }

    before = read(admin)
    host = tenant.host
    ns = host.configManager.networkSystem
    vswitch1 = next(s for s in host.config.network.vswitch if s.name == "vSwitch1")
    promiscuous = vswitch1.spec
    promiscuous.policy = vim.host.NetworkPolicy(
        security=vim.host.NetworkPolicy.SecurityPolicy(allowPromiscuous=True, macChanges=True, forgedTransmits=True)
    )
    ip = vim.host.IpConfig(dhcp=False, ipAddress="10.206.0.99", subnetMask="255.255.255.0")
    long = type(admin.host.configManager.advancedOption.QueryOptions("Net.FollowHardwareMac")[0].value)
    own_ds = datastore(tenant, DS)
    attempts: dict[str, tuple[Callable[[], Any], str]] = {
        "add a port group": (
            lambda: ns.AddPortGroup(
                portgrp=vim.host.PortGroup.Specification(
                    name="sniff", vlanId=4095, vswitchName="vSwitch1", policy=vim.host.NetworkPolicy()
                )
            ),
            "Host.Config.Network",
        ),
        "vSwitch security policy": (
            lambda: ns.UpdateVirtualSwitch(vswitchName="vSwitch1", spec=promiscuous),
            "Host.Config.Network",
        ),
        "a VMkernel NIC": (
            lambda: ns.AddVirtualNic(portgroup="tenant", nic=vim.host.VirtualNic.Specification(ip=ip)),
            "Host.Config.Network",
        ),
        "SSH service policy": (
            lambda: host.configManager.serviceSystem.UpdateServicePolicy(id="TSM-SSH", policy="on"),
            "Host.Config.NetService",
        ),
        "SSH service start": (
            lambda: host.configManager.serviceSystem.StartService(id="TSM-SSH"),
            "Host.Config.NetService",
        ),
        "SSH firewall": (
            lambda: host.configManager.firewallSystem.EnableRuleset(id="sshServer"),
            "Host.Config.NetService",
        ),
        "unmount the NFS datastore": (
            lambda: host.configManager.datastoreSystem.RemoveDatastore(datastore=own_ds),
            "Host.Config.Storage",
        ),
        "mount another export": (
            lambda: host.configManager.datastoreSystem.CreateNasDatastore(vs.nas_spec("nfs-evil", "/exports/other")),
            "Host.Config.Storage",
        ),
        "advanced option": (
            lambda: host.configManager.advancedOption.UpdateOptions(
                changedValue=[vim.option.OptionValue(key="Net.FollowHardwareMac", value=long(0))]
            ),
            "Host.Config.AdvancedConfig",
        ),
        "another tenant's folder: create": (
            lambda: vs.create_vm(tenant, "intruder", "nfs-other"),
            "Datastore.AllocateSpace",
        ),
        "another tenant's folder: browse": (
            lambda: datastore(tenant, "nfs-other").browser.SearchDatastore_Task(
                datastorePath="[nfs-other] other-replica",
                searchSpec=vim.host.DatastoreBrowser.SearchSpec(matchPattern=["*"]),
            ),
            "Datastore.Browse",
        ),
        "another tenant's folder: delete": (
            lambda: tenant.content.fileManager.DeleteDatastoreFile_Task(
                name="[nfs-other] other-replica", datacenter=tenant.dc
            ),
            "Datastore.DeleteFile",
        ),
        "another tenant's folder: register": (
            lambda: tenant.folder.RegisterVM_Task(path=other_vmx, asTemplate=False, pool=tenant.pool, host=tenant.host),
            "System.Read",
        ),
        "a replica NIC on the management network": (
            lambda: vs.create_vm(tenant, "nic", DS, [vs.nic()]),
            "Network.Assign",
        ),
        "NFC import lease": (
            lambda: tenant.pool.ImportVApp(
                spec=vim.vm.VmImportSpec(
                    configSpec=vim.vm.ConfigSpec(
                        name="imp", guestId="otherGuest64", files=vim.vm.FileInfo(vmPathName=f"[{DS}]")
                    )
                ),
                folder=tenant.folder,
                host=host,
            ),
            "VApp.Import",
        ),
        "create an account": (
            lambda: tenant.content.accountManager.CreateUser(
                user=vim.host.LocalAccountManager.AccountSpecification(id="backdoor", password="Back-door-1")
            ),
            "Host.Local.ManageUserGroups",
        ),
        "change an account": (
            lambda: tenant.content.accountManager.UpdateUser(
                user=vim.host.LocalAccountManager.AccountSpecification(id="root", password="Owned-1")
            ),
            "Host.Local.ManageUserGroups",
        ),
        "remove an account": (
            lambda: tenant.content.accountManager.RemoveUser(userName="root"),
            "Host.Local.ManageUserGroups",
        ),
        "grant itself Admin": (
            lambda: tenant.content.authorizationManager.SetEntityPermissions(
                entity=tenant.content.rootFolder,
                permission=[
                    vim.AuthorizationManager.Permission(
                        entity=tenant.content.rootFolder, principal=USER, group=False, roleId=-1, propagate=True
                    )
                ],
            ),
            "Authorization.ModifyPermissions",
        ),
        "widen its role": (
            lambda: tenant.content.authorizationManager.UpdateAuthorizationRole(
                roleId=next(
                    r.roleId for r in tenant.content.authorizationManager.roleList if r.name == "tenantry-tenant"
                ),
                newName="tenantry-tenant",
                privIds=[*TENANT_PRIVILEGES, "Host.Config.Network"],
            ),
            "Authorization.ModifyRoles",
        ),
    }
    for what, (attempt, privilege) in attempts.items():
        fault = vs.no_permission(attempt)
        assert fault.privilegeId == privilege, (what, fault.privilegeId)
        assert fault.msg == "Permission to perform this operation was denied."
    assert vs.datastore_file(ep, tenant_si, "PUT", "nfs-other", "other-replica/x.vmdk", b"x")[0] == 403
    assert vs.datastore_file(ep, tenant_si, "GET", "nfs-other", "other-replica/other-replica.vmx")[0] == 403
    assert read(admin) == before

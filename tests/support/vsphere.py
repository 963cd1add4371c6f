"""pyVmomi helpers for tests on the strict lab simulator (ESX mode): inventory, logins, datastore files."""

from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pyVim.connect import SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim


@dataclass
class EsxParts:
    """The one datacenter, compute resource, host and root pool of an ESX-mode simulator."""

    content: Any
    dc: Any
    compute: Any
    host: Any
    pool: Any

    @property
    def folder(self) -> Any:
        return self.dc.vmFolder


def esx_parts(si: Any) -> EsxParts:
    content = si.RetrieveContent()
    dc = content.rootFolder.childEntity[0]
    compute = dc.hostFolder.childEntity[0]
    return EsxParts(content, dc, compute, compute.host[0], compute.resourcePool)


def login(endpoint: Any, user: str, password: str) -> Any:
    """A session as ``user`` on the endpoint's simulator (certificate verified with the lab CA)."""
    return SmartConnect(
        host=endpoint.hostname, port=endpoint.port, user=user, pwd=password, sslContext=endpoint.ssl_context()
    )


def nas_spec(local_path: str, export: str) -> Any:
    return vim.host.NasVolume.Specification(
        remoteHost="192.168.50.10", remotePath=export, localPath=local_path, accessMode="readWrite", type="NFS"
    )


def nic(mac: str | None = None, address_type: str = "generated", network: str = "VM Network", key: int = -1) -> Any:
    return vim.vm.device.VirtualDeviceSpec(
        operation="add",
        device=vim.vm.device.VirtualVmxnet3(
            key=key,
            addressType=address_type,
            macAddress=mac,
            backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName=network),
        ),
    )


def scsi(key: int = -2) -> Any:
    return vim.vm.device.VirtualDeviceSpec(
        operation="add", device=vim.vm.device.ParaVirtualSCSIController(key=key, busNumber=0, sharedBus="noSharing")
    )


def new_disk(datastore: str, kb: int, controller: int = -2, unit: int = 0) -> Any:
    return vim.vm.device.VirtualDeviceSpec(
        operation="add",
        fileOperation="create",
        device=vim.vm.device.VirtualDisk(
            key=-3,
            controllerKey=controller,
            unitNumber=unit,
            capacityInKB=kb,
            backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(diskMode="persistent", fileName=f"[{datastore}]"),
        ),
    )


def existing_disk(file_name: str, kb: int, controller_key: int, unit: int = 0) -> Any:
    return vim.vm.device.VirtualDeviceSpec(
        operation="add",
        device=vim.vm.device.VirtualDisk(
            key=-5,
            controllerKey=controller_key,
            unitNumber=unit,
            capacityInKB=kb,
            backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(diskMode="persistent", fileName=file_name),
        ),
    )


def create_vm(
    parts: EsxParts, name: str, datastore: str, devices: Sequence[Any] = (), guest: str = "otherGuest64", **config: Any
) -> Any:
    """Create a VM (powered off) and return it; raises the task's fault."""
    spec = vim.vm.ConfigSpec(
        name=name,
        guestId=guest,
        numCPUs=config.pop("numCPUs", 1),
        memoryMB=config.pop("memoryMB", 64),
        files=vim.vm.FileInfo(vmPathName=f"[{datastore}]"),
        deviceChange=list(devices),
        **config,
    )
    task = parts.folder.CreateVM_Task(config=spec, pool=parts.pool, host=parts.host)
    WaitForTask(task)
    return task.info.result


def register(folder: Any, path: str, pool: Any, host: Any, name: str | None = None) -> Any:
    task = folder.RegisterVM_Task(path=path, name=name, asTemplate=False, pool=pool, host=host)
    WaitForTask(task)
    return task.info.result


def nics_of(vm: Any) -> list[tuple[str, str, str, str]]:
    """(type, MAC, address type, network) of each NIC."""
    return [
        (type(d).__name__.rsplit(".", 1)[-1], d.macAddress, d.addressType, getattr(d.backing, "deviceName", ""))
        for d in vm.config.hardware.device
        if isinstance(d, vim.vm.device.VirtualEthernetCard)
    ]


def disks_of(vm: Any) -> list[tuple[str, int]]:
    return [
        (d.backing.fileName, d.capacityInKB)
        for d in vm.config.hardware.device
        if isinstance(d, vim.vm.device.VirtualDisk)
    ]


def session_cookie(si: Any) -> str:
    """The session cookie of a ServiceInstance, or of any managed object of that session."""
    match = re.search(r'vmware_soap_session=("?)([^";]+)', si._stub.cookie)
    assert match, si._stub.cookie
    return f'vmware_soap_session="{match.group(2)}"'


def datastore_file(
    endpoint: Any, si: Any | None, method: str, datastore: str, path: str, data: bytes | None = None
) -> tuple[int, bytes]:
    """HTTP access to a datastore file (/folder), with the session's cookie; returns (status, body)."""
    query = urllib.parse.urlencode({"dcPath": "ha-datacenter", "dsName": datastore})
    url = f"https://{endpoint.hostname}:{endpoint.port}/folder/{urllib.parse.quote(path)}?{query}"
    request = urllib.request.Request(url, data=data, method=method)
    if si is not None:
        request.add_header("Cookie", session_cookie(si))
    try:
        with urllib.request.urlopen(request, context=endpoint.ssl_context(), timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def descriptor(flat: str, kb: int) -> bytes:
    """A monolithic-flat VMDK descriptor for ``flat`` of ``kb`` KiB."""
    return (
        '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="vmfs"\n\n'
        f'# Extent description\nRW {kb * 2} VMFS "{flat}"\n\n# The Disk Data Base\nddb.adapterType = "pvscsi"\n'
    ).encode()


def no_permission(call: Callable[[], Any]) -> Any:
    """Run ``call`` (waiting if it returns a task) and return the NoPermission it raises."""
    try:
        result = call()
        if isinstance(result, vim.Task):
            WaitForTask(result)
    except vim.fault.NoPermission as exc:
        return exc
    raise AssertionError("expected NoPermission, the call succeeded")


def grant(content: Any, role: str, user: str, privileges: Sequence[str], entities: Sequence[Any]) -> int:
    """As an administrator: a role with ``privileges`` for ``user`` on ``entities`` (propagating)."""
    auth = content.authorizationManager
    existing = next((r for r in auth.roleList if r.name == role), None)
    ids = list(privileges) or ["System.Anonymous"]
    if existing is None:
        role_id = auth.AddAuthorizationRole(name=role, privIds=ids)
    else:
        role_id = existing.roleId
        auth.UpdateAuthorizationRole(roleId=role_id, newName=role, privIds=ids)
    for entity in entities:
        auth.SetEntityPermissions(
            entity=entity,
            permission=[
                vim.AuthorizationManager.Permission(
                    entity=entity, principal=user, group=False, roleId=role_id, propagate=True
                )
            ],
        )
    return int(role_id)


def local_account(content: Any, user: str, password: str) -> None:
    content.accountManager.CreateUser(
        user=vim.host.LocalAccountManager.AccountSpecification(id=user, password=password, description=user)
    )

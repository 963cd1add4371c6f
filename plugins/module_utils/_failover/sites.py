# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""The two sides of a failover, read and changed through ``VSphereClient``.

Isolation is a property of *what is asked*: on the production vCenter every read is
scoped to the tenant.  Its VMs are read through a container view rooted at the tenant's
own folder; its folder, pool, NFS datastore and portgroups are looked up by name
(``SearchIndex``), never by listing their siblings; hosts and shared datastores are
provider objects.  Another tenant's VMs, folders, pools, portgroups and NFS datastore
are never named in a request (tests/integration/failover checks the SOAP traffic).
A replication target belongs to its tenant and is read whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.tenantry.msp.plugins.module_utils._failover.plan import HostInfo, Tenant
from ansible_collections.tenantry.msp.plugins.module_utils.clients.vsphere import (
    VSphereClient,
    retrieve_objects,
    vim,
    vmodl,
)

VM_PROPERTIES = (
    "name",
    "parent",
    "config.files.vmPathName",
    "config.template",
    "config.hardware.memoryMB",
    "config.hardware.device",
    "config.extraConfig",
    "runtime.powerState",
    "runtime.host",
    "datastore",
)
# Enough to know where a VM is registered and from which .vmx (a cheap re-read: no hardware).
REGISTRATION_PROPERTIES = ("name", "parent", "config.files.vmPathName", "config.extraConfig")
NAS_TYPES = ("NFS", "NFS41", "CIFS")
TAG_TENANT = "tenantry.tenant"
TAG_ORIGIN_TARGET = "tenantry.origin.target"
TAG_ORIGIN_VMX = "tenantry.origin.vmx"
TAG_TEST_RUN = "tenantry.test.run"
TAG_ORIGIN_NETWORKS = "tenantry.origin.networks"  # each NIC's network on the target (nics.tag)
# vSphere's "moved or copied?" question (msg.uuid.altered), asked at the first power-on of a VM
# registered at another host or path: the choices' labels (and summaries) to answer with.
MOVED_ANSWER = ("button.uuid.movedTheVM", "I Moved It")
COPIED_ANSWER = ("button.uuid.copiedTheVM", "I Copied It")


@dataclass
class VMRow:
    """What a run needs to know of one registered VM."""

    name: str
    obj: Any
    moid: str
    vmx: str
    power: str
    memory_mb: int
    disk_bytes: int
    nics: list[dict[str, Any]]
    extra: dict[str, str]
    host: str | None  # moid
    datastores: list[str]  # moids
    parent: str | None  # moid
    template: bool = False

    def plain(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "vmx": self.vmx,
            "power": self.power,
            "nics": [{k: v for k, v in nic.items() if k != "device"} for nic in self.nics],
        }


def datastore_of(path: str) -> str:
    """``"[nfs-acme] vm/vm.vmx"`` -> ``"nfs-acme"``."""
    return path[1 : path.index("]")] if path.startswith("[") and "]" in path else ""


def path_in_datastore(path: str) -> str:
    """``"[nfs-acme] vm/vm.vmx"`` -> ``"vm/vm.vmx"``."""
    return path.split("]", 1)[1].strip() if "]" in path else path


def vm_row(row: dict[str, Any]) -> VMRow:
    devices = row.get("config.hardware.device") or []
    nics, disk = [], 0
    for device in devices:
        if isinstance(device, vim.vm.device.VirtualEthernetCard):
            backing = device.backing
            network = getattr(backing, "network", None)
            nics.append(
                {
                    "key": device.key,
                    "label": device.deviceInfo.label if device.deviceInfo else "",
                    "mac": (device.macAddress or "").lower(),
                    "address_type": device.addressType or "",
                    "type": type(device).__name__.rsplit(".", 1)[-1],
                    "network": getattr(backing, "deviceName", None) or "",
                    "network_moid": network._moId if network is not None else "",
                    "device": device,
                }
            )
        elif isinstance(device, vim.vm.device.VirtualDisk):
            disk += int(device.capacityInBytes or (device.capacityInKB or 0) * 1024)
    extra = {
        str(o.key): str(o.value) for o in row.get("config.extraConfig") or [] if str(o.key).startswith("tenantry.")
    }
    host = row.get("runtime.host")
    parent = row.get("parent")
    return VMRow(
        name=str(row.get("name", "")),
        obj=row["obj"],
        moid=row["moid"],
        vmx=str(row.get("config.files.vmPathName") or ""),
        power=str(row.get("runtime.powerState") or "poweredOff"),
        memory_mb=int(row.get("config.hardware.memoryMB") or 0),
        disk_bytes=disk,
        nics=nics,
        extra=extra,
        host=host._moId if host is not None else None,
        datastores=[d._moId for d in row.get("datastore") or []],
        parent=parent._moId if parent is not None else None,
        template=bool(row.get("config.template")),
    )


# --------------------------------------------------------------------------- target
class TargetSite:
    """One nested replication target: a standalone ESXi on its own API, owned by the tenant."""

    def __init__(self, name: str, client: VSphereClient) -> None:
        self.name = name
        self.client = client
        self.host: Any = None
        self.pool: Any = None
        self.folder: Any = None
        self.nfs: Any = None
        self.nfs_info: dict[str, Any] = {}
        self.networks: dict[str, Any] = {}  # the host's networks (portgroups) by name
        self.vms: dict[str, VMRow] = {}

    def read(self, datastore: str) -> None:
        """The host, its root pool and VM folder, the tenant NFS datastore and every VM: one round trip."""
        rows = self.client.retrieve_types(
            {
                vim.HostSystem: ["name", "parent"],
                vim.ComputeResource: ["resourcePool"],
                vim.Datacenter: ["vmFolder"],
                vim.Network: ["name"],
                vim.Datastore: ["name", "summary.type", "summary.accessible", "info"],
                vim.VirtualMachine: VM_PROPERTIES,
            }
        )
        hosts = rows[vim.HostSystem]
        if not hosts:
            raise LookupError("replication target %s has no ESXi host" % self.name)
        self.host = hosts[0]["obj"]
        parent = hosts[0].get("parent")
        pools = [r.get("resourcePool") for r in rows[vim.ComputeResource] if parent is not None and r["obj"] == parent]
        self.pool = pools[0] if pools else None
        datacenters = rows[vim.Datacenter]
        self.folder = datacenters[0].get("vmFolder") if datacenters else None
        self.networks = {str(r.get("name")): r["obj"] for r in rows[vim.Network]}
        self.nfs, self.nfs_info = None, {}
        for row in rows[vim.Datastore]:
            if row.get("name") == datastore:
                self.nfs = row["obj"]
                nas = getattr(row.get("info"), "nas", None)
                self.nfs_info = {
                    "type": str(row.get("summary.type") or ""),
                    "accessible": bool(row.get("summary.accessible", True)),
                    "remote_host": getattr(nas, "remoteHost", None) or "",
                    "remote_path": getattr(nas, "remotePath", None) or "",
                }
        self._vms(rows[vim.VirtualMachine])

    def refresh_vms(self) -> None:
        self._vms(self.client.retrieve(vim.VirtualMachine, VM_PROPERTIES))

    def _vms(self, found: list[dict[str, Any]]) -> None:
        rows = [vm_row(r) for r in found]
        self.vms = {r.name: r for r in rows if not r.template}

    def register(self, name: str, vmx: str) -> Callable[[], Any]:
        def start() -> Any:
            return self.folder.RegisterVM_Task(path=vmx, name=name, asTemplate=False, pool=self.pool, host=self.host)

        return start


# ----------------------------------------------------------------------- production
@dataclass
class NfsState:
    obj: Any = None
    remote_host: str = ""
    remote_path: str = ""
    mounted_on: set[str] = field(default_factory=set)  # host moids


class ProductionSite:
    """The tenant's view of the provider vCenter: only its own objects, plus hosts and shared datastores."""

    def __init__(self, client: VSphereClient, datacenter: str, cluster: str, tenant: Tenant) -> None:
        self.client = client
        self.tenant = tenant
        self.datacenter_name = datacenter
        self.cluster_name = cluster
        index = client.content.searchIndex
        self.index = index
        self.dc = index.FindByInventoryPath(_inventory_path(datacenter))
        if not isinstance(self.dc, vim.Datacenter):
            raise LookupError("datacenter %s not found in the production vCenter" % datacenter)
        dc_row = retrieve_objects(client, [self.dc], ["vmFolder", "datastoreFolder", "networkFolder"])[0]
        self.vm_root, self.datastore_folder, self.network_folder = (
            dc_row["vmFolder"],
            dc_row["datastoreFolder"],
            dc_row["networkFolder"],
        )
        self.cluster = index.FindByInventoryPath(_inventory_path(datacenter, "host", cluster))
        if not isinstance(self.cluster, vim.ClusterComputeResource):
            raise LookupError("cluster %s not found in datacenter %s" % (cluster, datacenter))
        self.folder: Any = None
        self.test_folder: Any = None
        self.pool: Any = None
        self.root_pool: Any = None
        self.nfs = NfsState()
        self.hosts: dict[str, dict[str, Any]] = {}  # moid -> row
        self.locate()

    # ----------------------------------------------------------------- reads
    def locate(self) -> None:
        """The tenant folder, test folder, resource pool and NFS datastore (any may be missing)."""
        self.folder = self._find_path(_inventory_path(self.datacenter_name, "vm", *self.tenant.folder.split("/")))
        self.test_folder = (
            self._find_path(_inventory_path(self.datacenter_name, "vm", *self.tenant.test_folder.split("/")))
            if self.folder is not None
            else None
        )
        cluster_row = retrieve_objects(self.client, [self.cluster], ["resourcePool", "host"])[0]
        self.root_pool = cluster_row.get("resourcePool")
        self.pool = self._find_path(
            _inventory_path(self.datacenter_name, "host", self.cluster_name, "Resources", self.tenant.resource_pool)
        )
        rows = retrieve_objects(
            self.client,
            list(cluster_row.get("host") or []),
            [
                "name",
                "runtime.connectionState",
                "runtime.inMaintenanceMode",
                "summary.hardware.memorySize",
                "summary.quickStats.overallMemoryUsage",
                "configManager.networkSystem",
                "configManager.datastoreSystem",
            ],
        )
        self.hosts = {r["moid"]: r for r in rows}
        self.read_nfs()

    def read_nfs(self) -> None:
        self.nfs = NfsState()
        obj = self.index.FindChild(self.datastore_folder, self.tenant.datastore)
        if obj is None:
            return
        row = retrieve_objects(self.client, [obj], ["info", "host"])[0]
        nas = getattr(row.get("info"), "nas", None)
        self.nfs = NfsState(
            obj=obj,
            remote_host=getattr(nas, "remoteHost", None) or "",
            remote_path=getattr(nas, "remotePath", None) or "",
            mounted_on={m.key._moId for m in row.get("host") or [] if m.key is not None},
        )

    def _find_path(self, path: str) -> Any:
        return self.index.FindByInventoryPath(path)

    def host_name(self, moid: str | None) -> str:
        return str(self.hosts.get(moid or "", {}).get("name", moid or ""))

    def host_moid(self, name: str) -> str | None:
        for moid, row in self.hosts.items():
            if row.get("name") == name:
                return moid
        return None

    def host_obj(self, moid: str) -> Any:
        return self.hosts[moid]["obj"]

    def host_infos(self, portgroup_hosts: set[str], portgroup: str) -> list[HostInfo]:
        infos = []
        for moid, row in self.hosts.items():
            total_mb = int(row.get("summary.hardware.memorySize") or 0) // (1024 * 1024)
            used_mb = int(row.get("summary.quickStats.overallMemoryUsage") or 0)
            infos.append(
                HostInfo(
                    name=str(row.get("name")),
                    connected=str(row.get("runtime.connectionState")) == "connected",
                    maintenance=bool(row.get("runtime.inMaintenanceMode")),
                    memory_free_mb=max(0, total_mb - used_mb),
                    has_portgroup=moid in portgroup_hosts,
                )
            )
        return infos

    def network(self, name: str) -> tuple[Any, set[str]]:
        """A portgroup by name (from the network folder) and the hosts that have it."""
        obj = self.index.FindChild(self.network_folder, name)
        if obj is None:
            return None, set()
        row = retrieve_objects(self.client, [obj], ["host"])[0]
        return obj, {h._moId for h in row.get("host") or []}

    def vms(self, properties: Sequence[str] = VM_PROPERTIES) -> tuple[dict[str, VMRow], dict[str, VMRow]]:
        """The tenant's production VMs and its test copies (``<folder>/test-failover``), by name.

        With ``REGISTRATION_PROPERTIES`` the rows say only where each VM is registered (no hardware).
        """
        if self.folder is None:
            return {}, {}
        rows = [vm_row(r) for r in self.client.retrieve(vim.VirtualMachine, properties, root=self.folder)]
        test_moid = self.test_folder._moId if self.test_folder is not None else None
        production = {r.name: r for r in rows if r.parent == self.folder._moId}
        copies = {r.name: r for r in rows if test_moid and r.parent == test_moid}
        return production, copies

    def shared_datastores(self, names: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Datastores the VMs may be relocated to: ``names`` (looked up one by one), or when empty
        every datastore mounted on all connected hosts of the cluster that is not NAS-backed.

        Without ``names`` the hosts' datastore *references* are compared to find the shared ones
        (another tenant's NFS datastore, mounted on one host during its run, is one of them); only
        the shared ones are then read.
        """
        if names:
            objs = []
            for name in names:
                obj = self.index.FindChild(self.datastore_folder, name)
                if obj is None:
                    raise LookupError("production datastore %s not found in datacenter %s" % (name, self.dc.name))
                objs.append(obj)
        else:
            connected = [r["obj"] for r in self.hosts.values() if str(r.get("runtime.connectionState")) == "connected"]
            connected = retrieve_objects(self.client, connected, ["datastore"]) if connected else []
            shared: set[str] | None = None
            by_moid: dict[str, Any] = {}
            for row in connected:
                refs = {d._moId: d for d in row.get("datastore") or []}
                by_moid.update(refs)
                shared = set(refs) if shared is None else shared & set(refs)
            nfs_moid = self.nfs.obj._moId if self.nfs.obj is not None else None
            objs = [by_moid[m] for m in sorted(shared or set()) if m != nfs_moid]
        rows = retrieve_objects(
            self.client,
            objs,
            ["name", "summary.type", "summary.freeSpace", "summary.capacity", "summary.accessible"],
        )
        return {
            str(r["name"]): {
                "obj": r["obj"],
                "moid": r["moid"],
                "free": int(r.get("summary.freeSpace") or 0),
                "accessible": bool(r.get("summary.accessible", True)),
            }
            for r in rows
            if str(r.get("summary.type")) not in NAS_TYPES or names
        }

    def account(self, account: str) -> dict[str, Any] | None:
        """The directory entry of ``account`` (``user@domain``, ``DOMAIN\\user`` or a bare name)."""
        directory = self.client.content.userDirectory
        user, domain = account, None
        if "@" in account:
            user, domain = account.rsplit("@", 1)
        elif "\\" in account:
            domain, user = account.split("\\", 1)
        wanted = {account.lower(), user.lower()}
        if domain:
            wanted.add(("%s\\%s" % (domain, user)).lower())
        searches = [(domain, user), (None, account)] if domain else [(None, account)]
        for search_domain, text in searches:
            try:
                found = directory.RetrieveUserGroups(
                    domain=search_domain,
                    searchStr=text,
                    exactMatch=True,
                    findUsers=True,
                    findGroups=True,
                )
            except vmodl.MethodFault:
                continue
            for entry in found or []:
                if str(entry.principal).lower() in wanted:
                    return {"principal": str(entry.principal), "group": bool(entry.group)}
        return None

    def role(self, name: str) -> Any:
        """The role called ``name`` (``vim.AuthorizationManager.Role``), or ``None``."""
        manager = self.client.content.authorizationManager
        for role in retrieve_objects(self.client, [manager], ["roleList"])[0].get("roleList") or []:
            if role.name == name:
                return role
        return None

    def role_id(self, name: str) -> int | None:
        role = self.role(name)
        return int(role.roleId) if role is not None else None

    def has_permission(self, vm: Any, principal: str, role_id: int) -> bool:
        manager = self.client.content.authorizationManager
        for perm in manager.RetrieveEntityPermissions(entity=vm, inherited=False) or []:
            if str(perm.principal).lower() == principal.lower() and perm.roleId == role_id:
                return True
        return False

    # ----------------------------------------------------------------- writes
    def ensure_folder(self, path: str) -> Any:
        """The VM folder at ``path`` (relative to the datacenter's VM folder), created as needed."""
        parent = self.vm_root
        parts = [p for p in path.split("/") if p]
        for depth in range(len(parts)):
            found = self._find_path(_inventory_path(self.datacenter_name, "vm", *parts[: depth + 1]))
            if found is None:
                try:
                    found = parent.CreateFolder(parts[depth])
                except vim.fault.DuplicateName:
                    found = self._find_path(_inventory_path(self.datacenter_name, "vm", *parts[: depth + 1]))
            parent = found
        return parent

    def ensure_pool(self) -> Any:
        if self.pool is not None:
            return self.pool
        allocation = vim.ResourceAllocationInfo(
            reservation=0, limit=-1, expandableReservation=True, shares=vim.SharesInfo(level="normal", shares=0)
        )
        try:
            self.pool = self.root_pool.CreateResourcePool(
                self.tenant.resource_pool, vim.ResourceConfigSpec(cpuAllocation=allocation, memoryAllocation=allocation)
            )
        except vim.fault.DuplicateName:
            self.pool = self._find_path(
                _inventory_path(self.datacenter_name, "host", self.cluster_name, "Resources", self.tenant.resource_pool)
            )
        return self.pool

    def mount_nfs(self, host_moid: str, remote_host: str, remote_path: str, read_only: bool = False) -> Any:
        spec = vim.host.NasVolume.Specification(
            remoteHost=remote_host,
            remotePath=remote_path,
            localPath=self.tenant.datastore,
            accessMode="readOnly" if read_only else "readWrite",
            type="NFS",
        )
        return self.hosts[host_moid]["configManager.datastoreSystem"].CreateNasDatastore(spec)

    def unmount_nfs(self, host_moid: str) -> None:
        self.hosts[host_moid]["configManager.datastoreSystem"].RemoveDatastore(self.nfs.obj)

    def network_system(self, host_moid: str) -> Any:
        return self.hosts[host_moid]["configManager.networkSystem"]


def _escape(part: str) -> str:
    # Inventory paths escape '/' and '%' inside a name.
    return part.replace("%", "%25").replace("/", "%2f")


def _inventory_path(*parts: str) -> str:
    return "/".join(_escape(p) for p in parts if p)

# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""Read a provider site (clusters, hosts, datastores, portgroups, VMs) in a few bulk calls.

One ``retrieve`` per object type, whatever the number of objects; folder paths are
rebuilt from one read of all folders.  Plain data out, sorted, so results compare.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.tenantry.msp.plugins.module_utils.clients.vsphere import (
    NotFound,
    VSphereClient,
    vim,
)

KINDS = ("clusters", "hosts", "datastores", "portgroups", "vms")


class _Paths:
    """Inventory paths (``/provider/vm/replication-targets``) from one read of every folder and datacenter."""

    def __init__(self, client: VSphereClient) -> None:
        self._parent: dict[str, Any] = {}
        self._name: dict[str, str] = {}
        for vimtype in (vim.Folder, vim.Datacenter):
            for row in client.retrieve(vimtype, ["name", "parent"]):
                self._name[row["moid"]] = row.get("name", "")
                self._parent[row["moid"]] = row.get("parent")
        self.root = client.content.rootFolder._moId

    def path(self, obj: Any) -> str:
        return self.path_of(obj._moId) if obj is not None else "/"

    def path_of(self, moid: str | None) -> str:
        parts: list[str] = []
        while moid and moid != self.root and moid in self._name:
            parts.append(self._name[moid])
            parent = self._parent.get(moid)
            moid = parent._moId if parent is not None else None
        return "/" + "/".join(reversed(parts))

    def vm_folders(self) -> list[str]:
        """Every VM folder path: ``/<datacenter>/vm`` and what is below it."""
        found = (self.path_of(moid) for moid in self._name)
        return sorted(p for p in found if len(p.split("/")) >= 3 and p.split("/")[2] == "vm")


def _folder_matches(vm_folder: str, wanted: str) -> bool:
    """``wanted`` is a full path (``/dc/vm/a``) or one relative to a datacenter's VM folder (``a/b``)."""
    wanted = wanted.rstrip("/")
    if wanted.startswith("/"):
        return vm_folder == wanted or vm_folder.startswith(wanted + "/")
    parts = vm_folder.split("/")
    # parts: ["", dc, "vm", sub...]
    relative = "/".join(parts[3:]) if len(parts) > 3 and parts[2] == "vm" else ""
    return relative == wanted or relative.startswith(wanted + "/")


def _name_of(obj: Any, names: dict[str, str]) -> str | None:
    return names.get(obj._moId) if obj is not None else None


def _names(client: VSphereClient, vimtype: Any) -> dict[str, str]:
    return {row["moid"]: row.get("name", "") for row in client.retrieve(vimtype, ["name"])}


def gather(client: VSphereClient, kinds: tuple[str, ...] = KINDS, folder: str | None = None) -> dict[str, Any]:
    """The provider inventory as plain data: ``{kind: [ {...}, ... ]}`` for each requested kind.

    ``folder`` limits VMs to that VM folder and its subfolders; an unknown folder raises
    ``NotFound`` listing the folders that exist.
    """
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ValueError("unknown kinds %s; allowed: %s" % (", ".join(unknown), ", ".join(KINDS)))
    paths = _Paths(client)
    if folder is not None and not any(_folder_matches(p, folder) for p in paths.vm_folders()):
        raise NotFound("VM folder %r not found; existing: %s" % (folder, ", ".join(paths.vm_folders()) or "none"))

    host_names = _names(client, vim.HostSystem)
    cluster_names = _names(client, vim.ClusterComputeResource)
    datastore_names = _names(client, vim.Datastore)
    network_names = _names(client, vim.Network)
    result: dict[str, Any] = {}

    if "clusters" in kinds:
        result["clusters"] = sorted(
            (
                {
                    "name": row.get("name"),
                    "path": paths.path(row["obj"]),
                    "hosts": sorted(_name_of(h, host_names) or h._moId for h in row.get("host", [])),
                    "datastores": sorted(_name_of(d, datastore_names) or d._moId for d in row.get("datastore", [])),
                    "moid": row["moid"],
                }
                for row in client.retrieve(vim.ClusterComputeResource, ["name", "host", "datastore"])
            ),
            key=lambda c: c["path"],
        )

    if "hosts" in kinds:
        result["hosts"] = sorted(
            (
                {
                    "name": row.get("name"),
                    "cluster": _name_of(row.get("parent"), cluster_names),
                    "connection_state": str(row.get("runtime.connectionState", "")),
                    "power_state": str(row.get("runtime.powerState", "")),
                    "datastores": sorted(_name_of(d, datastore_names) or d._moId for d in row.get("datastore", [])),
                    "networks": sorted(_name_of(n, network_names) or n._moId for n in row.get("network", [])),
                    "moid": row["moid"],
                }
                for row in client.retrieve(
                    vim.HostSystem,
                    ["name", "parent", "runtime.connectionState", "runtime.powerState", "datastore", "network"],
                )
            ),
            key=lambda h: str(h["name"]),
        )

    if "datastores" in kinds:
        result["datastores"] = sorted(
            (
                {
                    "name": row.get("name"),
                    "type": row.get("summary.type"),
                    "url": row.get("summary.url"),
                    "capacity": int(row.get("summary.capacity") or 0),
                    "free_space": int(row.get("summary.freeSpace") or 0),
                    "accessible": bool(row.get("summary.accessible")),
                    "hosts": sorted(_name_of(m.key, host_names) or m.key._moId for m in row.get("host", [])),
                    "moid": row["moid"],
                }
                for row in client.retrieve(
                    vim.Datastore,
                    [
                        "name",
                        "summary.type",
                        "summary.url",
                        "summary.capacity",
                        "summary.freeSpace",
                        "summary.accessible",
                        "host",
                    ],
                )
            ),
            key=lambda d: str(d["name"]),
        )

    if "portgroups" in kinds:
        result["portgroups"] = _portgroups(client, host_names)

    if "vms" in kinds:
        vms = []
        for row in client.retrieve(
            vim.VirtualMachine,
            [
                "name",
                "parent",
                "runtime.powerState",
                "runtime.host",
                "config.template",
                "config.uuid",
                "config.hardware.device",
                "datastore",
            ],
        ):
            vm_folder = paths.path(row.get("parent"))
            if folder is not None and not _folder_matches(vm_folder, folder):
                continue
            nics = [
                {
                    "label": dev.deviceInfo.label if dev.deviceInfo else str(dev.key),
                    "mac": dev.macAddress,
                    "address_type": dev.addressType,
                    "network": _nic_network(dev, network_names),
                    "connected": bool(dev.connectable and dev.connectable.connected),
                }
                for dev in row.get("config.hardware.device", [])
                if isinstance(dev, vim.vm.device.VirtualEthernetCard)
            ]
            vms.append(
                {
                    "name": row.get("name"),
                    "folder": vm_folder,
                    "power_state": str(row.get("runtime.powerState", "")),
                    "host": _name_of(row.get("runtime.host"), host_names),
                    "template": bool(row.get("config.template")),
                    "uuid": row.get("config.uuid"),
                    "datastores": sorted(_name_of(d, datastore_names) or d._moId for d in row.get("datastore", [])),
                    "nics": sorted(nics, key=lambda n: str(n["label"])),
                    "macs": [n["mac"] for n in sorted(nics, key=lambda n: str(n["label"])) if n["mac"]],
                    "moid": row["moid"],
                }
            )
        result["vms"] = sorted(vms, key=lambda v: (v["folder"], str(v["name"])))
    return result


def _nic_network(dev: Any, network_names: dict[str, str]) -> str | None:
    backing = dev.backing
    if isinstance(backing, vim.vm.device.VirtualEthernetCard.NetworkBackingInfo):
        if backing.network is not None:
            return _name_of(backing.network, network_names)
        return backing.deviceName or None
    if isinstance(backing, vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo):
        return backing.port.portgroupKey if backing.port else None
    return None


def _portgroups(client: VSphereClient, host_names: dict[str, str]) -> list[dict[str, Any]]:
    """Standard portgroups (merged across hosts, with VLAN and vSwitch) and distributed ones."""
    merged: dict[str, dict[str, Any]] = {}
    for row in client.retrieve(vim.HostSystem, ["name", "config.network.portgroup"]):
        for pg in row.get("config.network.portgroup", []) or []:
            spec = pg.spec
            entry = merged.setdefault(
                spec.name,
                {
                    "name": spec.name,
                    "type": "standard",
                    "vlan_id": spec.vlanId,
                    "vswitch": spec.vswitchName,
                    "hosts": [],
                },
            )
            entry["hosts"].append(row.get("name") or host_names.get(row["moid"], row["moid"]))
    for row in client.retrieve(vim.dvs.DistributedVirtualPortgroup, ["name", "config.defaultPortConfig"]):
        vlan = getattr(getattr(row.get("config.defaultPortConfig"), "vlan", None), "vlanId", None)
        merged.setdefault(
            row.get("name", row["moid"]),
            {
                "name": row.get("name"),
                "type": "distributed",
                "vlan_id": vlan if isinstance(vlan, int) else None,
                "vswitch": None,
                "hosts": [],
            },
        )
    for entry in merged.values():
        entry["hosts"] = sorted(entry["hosts"])
    return sorted(merged.values(), key=lambda p: str(p["name"]))

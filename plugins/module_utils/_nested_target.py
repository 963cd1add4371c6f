# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""Nested ESXi replication targets on the provider vCenter, many per call.

One flow (STYLE rule 3): check the input, read the site in a few bulk calls (two rounds
of concurrent reads), validate everything against it, build the desired state of every
target, portgroup and folder in memory, compare, and only then (not in check mode) apply:
folders and portgroups with concurrent calls, clones / reconfigurations / power changes /
deletions as concurrent vSphere tasks waited on by one property collector.

Knows nothing of AnsibleModule: ``plan`` and ``apply`` take plain data and a client and
raise ``NestedTargetError`` (bad input) or the client's typed errors.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ansible_collections.tenantry.msp.plugins.module_utils._tenant_model import portgroup_name
from ansible_collections.tenantry.msp.plugins.module_utils.clients.vsphere import (
    InvalidRequest,
    VSphereClient,
    retrieve_objects,
    run_calls,
    vim,
)

# VMware accepts static (manual) MACs only in this range.
_MANUAL_MAC_LOW = 0x005056000000
_MANUAL_MAC_HIGH = 0x0050563FFFFF
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")

POWER_STATES = ("poweredon", "poweredoff")

TARGET_OPTIONS: dict[str, Any] = {
    "name": {"type": "str", "required": True},
    "tenant": {"type": "str", "required": True},
    "mgmt_mac": {"type": "str"},
    "tenant_mac": {"type": "str"},
    "vlan": {"type": "int"},
    "portgroup": {"type": "str"},
    "cpus": {"type": "int", "default": 4},
    "memory_mb": {"type": "int", "default": 8192},
    "disk_gb": {"type": "int", "default": 32},
}

ARGUMENT_SPEC: dict[str, Any] = {
    "targets": {"type": "list", "elements": "dict", "required": True, "options": TARGET_OPTIONS},
    "template": {"type": "str", "default": "nested-esxi-template"},
    "datacenter": {"type": "str"},
    "cluster": {"type": "str", "default": "production"},
    "folder": {"type": "str", "default": "replication-targets"},
    "resource_pool": {"type": "str", "default": "replication-targets"},
    "datastore": {"type": "str"},
    "management_portgroup": {"type": "str", "default": "management"},
    "vswitch": {"type": "str", "default": "vSwitch0"},
    "management_portgroup_security": {"type": "bool", "default": True},
    "power_state": {"type": "str", "default": "poweredon", "choices": list(POWER_STATES)},
    "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
    "max_parallel": {"type": "int", "default": 16},
}

_VM_LIGHT = ["name", "parent", "config.template", "network"]
_VM_DETAIL = [
    "name",
    "parent",
    "config.template",
    "config.hardware.numCPU",
    "config.hardware.memoryMB",
    "config.hardware.device",
    "config.nestedHVEnabled",
    "runtime.powerState",
    "network",
]


# The security policy of a target's provider-side portgroups: the nested ESXi sends only from the static MACs
# of its vNICs (Net.FollowHardwareMac), so nothing it needs is lost when all three are rejected.
SECURE = {"allow_promiscuous": False, "mac_changes": False, "forged_transmits": False}


def security_of(spec: Any) -> dict[str, Any]:
    """A standard portgroup's own security policy (``None`` where it inherits its switch's)."""
    security = getattr(getattr(spec, "policy", None), "security", None)
    return {
        "allow_promiscuous": getattr(security, "allowPromiscuous", None),
        "mac_changes": getattr(security, "macChanges", None),
        "forged_transmits": getattr(security, "forgedTransmits", None),
    }


def _secure_policy(policy: Any = None) -> Any:
    policy = policy or vim.host.NetworkPolicy()
    policy.security = vim.host.NetworkPolicy.SecurityPolicy(
        allowPromiscuous=False, macChanges=False, forgedTransmits=False
    )
    return policy


class NestedTargetError(InvalidRequest):
    """The input, or the site it points at, does not allow the change; ``errors`` lists every problem."""


# --------------------------------------------------------------------------- input


def check_input(params: dict[str, Any]) -> list[dict[str, Any]]:
    """Validate the options without touching vCenter; return the targets normalised.

    Every problem is collected, each naming the target and the field.
    """
    errors: list[str] = []
    present = params["state"] == "present"
    if params["max_parallel"] < 1:
        errors.append("max_parallel %d must be 1 or more" % params["max_parallel"])
    folder = params["folder"].strip("/")
    if not folder:
        errors.append("folder must name a VM folder such as replication-targets")
    targets: list[dict[str, Any]] = []
    names: dict[str, int] = {}
    macs: dict[str, str] = {}
    vlans: dict[str, tuple[int, str]] = {}
    for i, raw in enumerate(params["targets"]):
        t = dict(raw)
        label = "targets[%d] (%s)" % (i, t["name"])
        if not _NAME.match(t["name"]):
            errors.append("%s: name %r must be 1-80 letters, digits, '.', '_' or '-'" % (label, t["name"]))
        if not _NAME.match(t["tenant"]):
            errors.append("%s: tenant %r must be 1-80 letters, digits, '.', '_' or '-'" % (label, t["tenant"]))
        if t["name"] in names:
            errors.append("%s: name %s is also targets[%d]" % (label, t["name"], names[t["name"]]))
        names.setdefault(t["name"], i)
        if t["vlan"] is not None and not 1 <= t["vlan"] <= 4094:
            errors.append("%s: vlan %d is outside 1-4094" % (label, t["vlan"]))
        if t["portgroup"] is None and t["vlan"] is not None:
            t["portgroup"] = portgroup_name(t["tenant"], t["vlan"])
        if present:
            for key in ("mgmt_mac", "tenant_mac", "vlan"):
                if t[key] is None:
                    errors.append("%s: %s is required with state=present" % (label, key))
            for key in ("mgmt_mac", "tenant_mac"):
                if t[key] is None:
                    continue
                mac = str(t[key]).strip().lower().replace("-", ":")
                t[key] = mac
                if not _MAC.match(mac):
                    errors.append("%s: %s %r is not a MAC address like 00:50:56:00:10:00" % (label, key, raw[key]))
                elif not _MANUAL_MAC_LOW <= int(mac.replace(":", ""), 16) <= _MANUAL_MAC_HIGH:
                    errors.append(
                        "%s: %s %s is outside VMware's static MAC range 00:50:56:00:00:00-00:50:56:3f:ff:ff"
                        % (label, key, mac)
                    )
                elif mac in macs:
                    errors.append("%s: %s %s is already the MAC of %s" % (label, key, mac, macs[mac]))
                else:
                    macs[mac] = "%s %s" % (t["name"], key)
            for key, low in (("cpus", 1), ("memory_mb", 1024), ("disk_gb", 1)):
                if t[key] < low:
                    errors.append("%s: %s %d is below the minimum %d" % (label, key, t[key], low))
            if t["portgroup"] == params["management_portgroup"]:
                errors.append("%s: portgroup %s is the management portgroup" % (label, t["portgroup"]))
            if t["portgroup"] and t["vlan"] is not None:
                seen = vlans.setdefault(t["portgroup"], (t["vlan"], t["name"]))
                if seen[0] != t["vlan"]:
                    errors.append(
                        "%s: portgroup %s has vlan %d, but %s gives it vlan %d"
                        % (label, t["portgroup"], t["vlan"], seen[1], seen[0])
                    )
        targets.append(t)
    if errors:
        raise NestedTargetError(errors)
    return targets


# --------------------------------------------------------------------------- site


@dataclass
class Site:
    """What one call needs to know about the provider vCenter, read in bulk."""

    datacenter: Any
    cluster: Any
    hosts: list[dict[str, Any]]
    skipped_hosts: list[str]
    pool: Any
    root_folder: Any
    root_path: str
    tenant_folders: dict[str, dict[str, Any]]  # tenant -> folder row (with childEntity)
    template: dict[str, Any] | None
    datastore: Any
    networks: dict[str, Any]  # name -> Network object
    vms: list[dict[str, Any]]  # every VM, light properties
    targets: dict[str, dict[str, Any]]  # name -> VM row (detailed) under the root folder
    folder_path: dict[str, str] = field(default_factory=dict)  # folder moid -> path below the root


def _one(rows: list[dict[str, Any]], what: str, name: str, where: str = "") -> dict[str, Any]:
    found = [r for r in rows if r.get("name") == name]
    if len(found) == 1:
        return found[0]
    if not found:
        known = sorted({str(r.get("name")) for r in rows})
        raise NestedTargetError(["%s %r not found%s; existing: %s" % (what, name, where, ", ".join(known) or "none")])
    raise NestedTargetError(["%s %r is ambiguous%s: %d objects have that name" % (what, name, where, len(found))])


def read_site(client: VSphereClient, params: dict[str, Any], targets: list[dict[str, Any]]) -> Site:
    """Read the datacenter, cluster, hosts, pool, folders, template, networks and targets (two rounds)."""
    present = params["state"] == "present"
    first: dict[str, Callable[[], Any]] = {
        "datacenters": lambda: client.retrieve(vim.Datacenter, ["name", "vmFolder"]),
        "clusters": lambda: client.retrieve(vim.ClusterComputeResource, ["name", "parent", "resourcePool"]),
        "folders": lambda: client.retrieve(vim.Folder, ["name", "parent", "childEntity"]),
        "pools": lambda: client.retrieve(vim.ResourcePool, ["name", "owner"]),
        "networks": lambda: client.retrieve(vim.Network, ["name"]),
        "vms": lambda: client.retrieve(vim.VirtualMachine, _VM_LIGHT),
    }
    if params["datastore"]:
        first["datastores"] = lambda: client.retrieve(vim.Datastore, ["name"])
    got = run_calls(first.items(), max_parallel=len(first))

    folders = {r["moid"]: r for r in got["folders"]}
    datacenters: list[dict[str, Any]] = got["datacenters"]

    def datacenter_of(obj: Any) -> dict[str, Any] | None:
        moid = obj._moId if obj is not None else None
        parents = {r["moid"]: r.get("parent") for r in got["folders"] + got["clusters"]}
        while moid is not None:
            for dc in datacenters:
                if dc["moid"] == moid:
                    return dc
            parent = parents.get(moid)
            moid = parent._moId if parent is not None else None
        return None

    clusters = got["clusters"]
    if params["datacenter"]:
        dc_row = _one(datacenters, "datacenter", params["datacenter"])
        clusters = [c for c in clusters if (datacenter_of(c["obj"]) or {}).get("moid") == dc_row["moid"]]
    cluster = _one(clusters, "cluster", params["cluster"])
    dc_row = datacenter_of(cluster["obj"]) or _one(datacenters, "datacenter", str(params["datacenter"]))
    where = " in datacenter %s" % dc_row["name"]

    # The root folder: a path below the datacenter's VM folder (or a full inventory path).
    path = params["folder"].strip("/")
    prefix = "%s/vm/" % dc_row["name"]
    if path.startswith(prefix):
        path = path[len(prefix) :]
    root = dc_row["vmFolder"]
    for part in path.split("/"):
        children = [f for f in folders.values() if f.get("parent") is not None and f["parent"]._moId == root._moId]
        match = [f for f in children if f.get("name") == part]
        if not match:
            known = sorted(str(f.get("name")) for f in children)
            raise NestedTargetError(
                [
                    "VM folder %r not found%s (no %r below %s); existing: %s"
                    % (params["folder"], where, part, root._moId, ", ".join(known) or "none")
                ]
            )
        root = match[0]["obj"]
    below: dict[str, str] = {root._moId: ""}
    changed = True
    while changed:  # every folder below the root, with its path relative to the root
        changed = False
        for f in folders.values():
            parent = f.get("parent")
            if f["moid"] not in below and parent is not None and parent._moId in below:
                below[f["moid"]] = (below[parent._moId] + "/" + f.get("name", "")).lstrip("/")
                changed = True
    tenant_folders = {
        path_: folders[moid] for moid, path_ in below.items() if path_ and "/" not in path_ and moid in folders
    }

    pools = [p for p in got["pools"] if p.get("owner") is not None and p["owner"]._moId == cluster["moid"]]
    if params["resource_pool"]:
        pool = _one(pools, "resource pool", params["resource_pool"], " in cluster %s" % cluster["name"])["obj"]
    else:
        pool = cluster.get("resourcePool")

    template = None
    dc_vms = [v for v in got["vms"] if _under(v, dc_row["vmFolder"]._moId, folders)]
    if present:
        template = _one(dc_vms, "template", params["template"], where)
    datastore = None
    if params["datastore"]:
        datastore = _one(got["datastores"], "datastore", params["datastore"])["obj"]

    second: dict[str, Callable[[], Any]] = {
        "hosts": lambda: client.retrieve(
            vim.HostSystem,
            [
                "name",
                "runtime.connectionState",
                "runtime.inMaintenanceMode",
                "config.network.portgroup",
                "config.network.vswitch",
                "configManager.networkSystem",
            ],
            cluster["obj"],
        ),
        "targets": lambda: client.retrieve(vim.VirtualMachine, _VM_DETAIL, root),
    }
    if template is not None:
        second["template"] = lambda: retrieve_objects(client, [template["obj"]], _VM_DETAIL)
    got2 = run_calls(second.items(), max_parallel=len(second))

    hosts = [h for h in got2["hosts"] if str(h.get("runtime.connectionState")) == "connected"]
    skipped = sorted(str(h.get("name")) for h in got2["hosts"] if h not in hosts)
    if not hosts:
        raise NestedTargetError(["cluster %s has no connected host" % cluster["name"]])
    wanted = {t["name"] for t in targets}
    found: dict[str, dict[str, Any]] = {}
    for vm in got2["targets"]:
        if vm.get("name") in wanted and not vm.get("config.template"):
            if vm["name"] in found:
                raise NestedTargetError(
                    ["two VMs called %s below folder %s; remove one by hand" % (vm["name"], params["folder"])]
                )
            found[vm["name"]] = vm
    return Site(
        datacenter=dc_row["obj"],
        cluster=cluster["obj"],
        hosts=sorted(hosts, key=lambda h: str(h.get("name"))),
        skipped_hosts=skipped,
        pool=pool,
        root_folder=root,
        root_path=params["folder"].strip("/"),
        tenant_folders=tenant_folders,
        template=got2["template"][0] if template is not None else None,
        datastore=datastore,
        networks={r.get("name"): r["obj"] for r in got["networks"]},
        vms=dc_vms,
        targets=found,
        folder_path=below,
    )


def _under(row: dict[str, Any], ancestor: str, folders: dict[str, dict[str, Any]]) -> bool:
    parent = row.get("parent")
    while parent is not None:
        if parent._moId == ancestor:
            return True
        parent = folders.get(parent._moId, {}).get("parent")
    return False


# --------------------------------------------------------------------------- state as data


def _nics(devices: list[Any]) -> list[Any]:
    return sorted((d for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard)), key=lambda d: d.key)


def _disks(devices: list[Any]) -> list[Any]:
    return sorted((d for d in devices if isinstance(d, vim.vm.device.VirtualDisk)), key=lambda d: d.key)


def _nic_network(nic: Any, networks: dict[str, Any]) -> str | None:
    """The network name of a vNIC, from the bulk-read ``networks`` (name -> object): no round trip per NIC."""
    backing = nic.backing
    if isinstance(backing, vim.vm.device.VirtualEthernetCard.NetworkBackingInfo):
        if backing.network is not None:
            moid = backing.network._moId
            for name, obj in networks.items():
                if obj._moId == moid:
                    return name
        return str(backing.deviceName) if backing.deviceName else None
    if isinstance(backing, vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo):
        return "dvportgroup:%s" % (backing.port.portgroupKey if backing.port else "?")
    return None


def describe_vm(vm: dict[str, Any], site: Site) -> dict[str, Any]:
    """A target VM as plain data (what the diff and the result show)."""
    devices = vm.get("config.hardware.device") or []
    disks = _disks(devices)
    parent = vm.get("parent")
    return {
        "name": vm.get("name"),
        "folder": "%s/%s" % (site.root_path, site.folder_path.get(parent._moId, "?")) if parent else None,
        "cpus": vm.get("config.hardware.numCPU"),
        "memory_mb": vm.get("config.hardware.memoryMB"),
        "disk_gb": (disks[0].capacityInKB // (1024 * 1024)) if disks else 0,
        "nested_hv": bool(vm.get("config.nestedHVEnabled")),
        "nics": [
            {
                "network": _nic_network(n, site.networks),
                "mac": (n.macAddress or "").lower(),
                "address_type": n.addressType,
            }
            for n in _nics(devices)
        ],
        "power_state": str(vm.get("runtime.powerState", "")).lower(),
    }


def desired_vm(t: dict[str, Any], params: dict[str, Any], site: Site) -> dict[str, Any]:
    return {
        "name": t["name"],
        "folder": "%s/%s" % (site.root_path, t["tenant"]),
        "cpus": t["cpus"],
        "memory_mb": t["memory_mb"],
        "disk_gb": t["disk_gb"],
        "nested_hv": True,
        "nics": [
            {"network": params["management_portgroup"], "mac": t["mgmt_mac"], "address_type": "manual"},
            {"network": t["portgroup"], "mac": t["tenant_mac"], "address_type": "manual"},
        ],
        "power_state": params["power_state"],
    }


def _same(current: dict[str, Any], desired: dict[str, Any]) -> bool:
    if current["disk_gb"] >= desired["disk_gb"]:  # disks grow, never shrink: a bigger one is fine
        current = {**current, "disk_gb": desired["disk_gb"]}
    return {**current, "nics": current["nics"][:2]} == desired


# --------------------------------------------------------------------------- vSphere specs


def _connect_info() -> Any:
    return vim.vm.device.VirtualDevice.ConnectInfo(startConnected=True, connected=True, allowGuestControl=True)


def _nic_changes(devices: list[Any], wanted: list[dict[str, Any]], networks: dict[str, Any]) -> list[Any]:
    """Device changes that make vNIC 0 and 1 of ``devices`` match ``wanted`` (edit or add)."""
    changes = []
    current = _nics(devices)
    for i, want in enumerate(wanted):
        backing = vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(
            deviceName=want["network"], network=networks.get(want["network"])
        )
        if i < len(current):
            have = current[i]
            if (
                _nic_network(have, networks) == want["network"]
                and (have.macAddress or "").lower() == want["mac"]
                and have.addressType == "manual"
            ):
                continue
            device = type(have)(
                key=have.key,
                controllerKey=have.controllerKey,
                unitNumber=have.unitNumber,
                deviceInfo=vim.Description(label=have.deviceInfo.label if have.deviceInfo else "", summary=""),
                backing=backing,
                addressType="manual",
                macAddress=want["mac"],
                connectable=_connect_info(),
                wakeOnLanEnabled=have.wakeOnLanEnabled,
            )
            changes.append(vim.vm.device.VirtualDeviceSpec(operation="edit", device=device))
        else:
            device = vim.vm.device.VirtualVmxnet3(
                key=-100 - i, backing=backing, addressType="manual", macAddress=want["mac"], connectable=_connect_info()
            )
            changes.append(vim.vm.device.VirtualDeviceSpec(operation="add", device=device))
    return changes


def _disk_change(devices: list[Any], disk_gb: int) -> Any | None:
    disks = _disks(devices)
    if not disks or disks[0].capacityInKB >= disk_gb * 1024 * 1024:
        return None
    have = disks[0]
    device = vim.vm.device.VirtualDisk(
        key=have.key,
        controllerKey=have.controllerKey,
        unitNumber=have.unitNumber,
        deviceInfo=vim.Description(label=have.deviceInfo.label if have.deviceInfo else "", summary=""),
        backing=have.backing,
        capacityInKB=disk_gb * 1024 * 1024,
    )
    return vim.vm.device.VirtualDeviceSpec(operation="edit", device=device)


def reconfig_spec(vm: dict[str, Any], want: dict[str, Any], networks: dict[str, Any]) -> Any | None:
    """The ConfigSpec that brings an existing VM to ``want``; ``None`` when only power differs."""
    devices = vm.get("config.hardware.device") or []
    spec = vim.vm.ConfigSpec()
    needed = False
    if vm.get("config.hardware.numCPU") != want["cpus"]:
        spec.numCPUs, needed = want["cpus"], True
    if vm.get("config.hardware.memoryMB") != want["memory_mb"]:
        spec.memoryMB, needed = want["memory_mb"], True
    if not vm.get("config.nestedHVEnabled"):
        spec.nestedHVEnabled, needed = True, True
    changes = _nic_changes(devices, want["nics"], networks)
    disk = _disk_change(devices, want["disk_gb"])
    if disk is not None:
        changes.append(disk)
    if changes:
        spec.deviceChange, needed = changes, True
    return spec if needed else None


def clone_spec(site: Site, want: dict[str, Any], networks: dict[str, Any], host: Any) -> tuple[Any, bool]:
    """The CloneSpec of one target (hardware, nested HV, both vNICs with their static MACs).

    Returns the spec and whether it powers the clone on.  A disk bigger than the template's is
    grown by a reconfiguration after the clone, so such clones are powered on after it.
    """
    template = site.template or {}
    devices = template.get("config.hardware.device") or []
    grow = _disk_change(devices, want["disk_gb"]) is not None
    power_on = want["power_state"] == "poweredon" and not grow
    relocate = vim.vm.RelocateSpec(pool=site.pool, host=host)
    if site.datastore is not None:
        relocate.datastore = site.datastore
    config = vim.vm.ConfigSpec(
        numCPUs=want["cpus"],
        memoryMB=want["memory_mb"],
        nestedHVEnabled=True,
        deviceChange=_nic_changes(devices, want["nics"], networks),
    )
    return vim.vm.CloneSpec(location=relocate, config=config, powerOn=power_on, template=False), power_on


# --------------------------------------------------------------------------- plan


@dataclass
class Plan:
    """Everything one call will change, computed before any change."""

    before: dict[str, Any]
    after: dict[str, Any]
    create_folders: list[str] = field(default_factory=list)  # tenants
    remove_folders: list[str] = field(default_factory=list)  # tenants
    add_portgroups: dict[str, tuple[int, list[dict[str, Any]]]] = field(default_factory=dict)  # name -> (vlan, hosts)
    remove_portgroups: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # name -> hosts
    secure_portgroups: dict[str, list[tuple[dict[str, Any], Any]]] = field(default_factory=dict)  # name -> (host, spec)
    clone: list[dict[str, Any]] = field(default_factory=list)  # desired states
    reconfigure: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)  # (vm row, desired)
    move: list[tuple[dict[str, Any], str]] = field(default_factory=list)  # (vm row, tenant)
    power_on: list[dict[str, Any]] = field(default_factory=list)
    power_off: list[dict[str, Any]] = field(default_factory=list)
    destroy: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.before != self.after


def _host_portgroups(site: Site) -> dict[str, dict[str, Any]]:
    """portgroup name -> {host name: spec} over the cluster's connected hosts."""
    out: dict[str, dict[str, Any]] = {}
    for host in site.hosts:
        for pg in host.get("config.network.portgroup") or []:
            out.setdefault(pg.spec.name, {})[str(host.get("name"))] = pg.spec
    return out


def make_plan(params: dict[str, Any], targets: list[dict[str, Any]], site: Site) -> Plan:
    present = params["state"] == "present"
    pgs = _host_portgroups(site)
    host_names = [str(h.get("name")) for h in site.hosts]
    errors: list[str] = []
    warnings = (
        ["skipped hosts that are not connected: %s" % ", ".join(site.skipped_hosts)] if site.skipped_hosts else []
    )

    before_targets = {name: describe_vm(vm, site) for name, vm in site.targets.items()}
    after_targets: dict[str, Any] = {}
    plan = Plan(before={}, after={}, warnings=warnings)
    tenants = sorted({t["tenant"] for t in targets})

    if present:
        if params["management_portgroup"] not in site.networks:
            errors.append(
                "management portgroup %s does not exist; existing networks: %s"
                % (params["management_portgroup"], ", ".join(sorted(site.networks)) or "none")
            )
        for host in site.hosts:
            switches = {s.name for s in host.get("config.network.vswitch") or []}
            if params["vswitch"] not in switches:
                errors.append(
                    "host %s has no virtual switch %s (it has %s)"
                    % (host.get("name"), params["vswitch"], ", ".join(sorted(switches)) or "none")
                )
        for t in targets:
            want = desired_vm(t, params, site)
            after_targets[t["name"]] = want
            vm = site.targets.get(t["name"])
            if vm is None:
                plan.clone.append({**want, "tenant": t["tenant"]})
                continue
            if before_targets[t["name"]]["folder"] != want["folder"]:
                plan.move.append((vm, t["tenant"]))
            if reconfig_spec(vm, want, site.networks) is not None:
                plan.reconfigure.append((vm, want))
            power = before_targets[t["name"]]["power_state"]
            if want["power_state"] == "poweredon" and power != "poweredon":
                plan.power_on.append(vm)
            elif want["power_state"] == "poweredoff" and power == "poweredon":
                plan.power_off.append(vm)
        plan.create_folders = [t for t in tenants if t not in site.tenant_folders]
        wanted_pgs = {t["portgroup"]: t["vlan"] for t in targets}
        for name, vlan in sorted(wanted_pgs.items()):
            have = pgs.get(name, {})
            for host_name, spec in sorted(have.items()):
                if spec.vlanId != vlan:
                    errors.append(
                        "portgroup %s on host %s has VLAN %d, the targets want VLAN %d; "
                        "correct the tenant file or the portgroup" % (name, host_name, spec.vlanId, vlan)
                    )
            missing = [h for h in site.hosts if str(h.get("name")) not in have]
            if missing:
                plan.add_portgroups[name] = (vlan, missing)
        before_pgs = {n: sorted(pgs.get(n, {})) for n in wanted_pgs}
        after_pgs = {n: host_names for n in wanted_pgs}
        secured = sorted(wanted_pgs)
        if params["management_portgroup_security"]:
            secured.append(params["management_portgroup"])
        before_security: dict[str, dict[str, Any]] = {}
        after_security: dict[str, dict[str, Any]] = {}
        by_name = {str(h.get("name")): h for h in site.hosts}
        for name in secured:
            for host_name in host_names:
                spec = pgs.get(name, {}).get(host_name)
                if spec is None and name not in wanted_pgs:
                    continue  # the management portgroup is the provider's: not on this host, not ours to add
                before_security.setdefault(name, {})[host_name] = security_of(spec) if spec is not None else None
                after_security.setdefault(name, {})[host_name] = dict(SECURE)
                if spec is not None and security_of(spec) != SECURE:
                    plan.secure_portgroups.setdefault(name, []).append((by_name[host_name], spec))
        before_folders = sorted(t for t in tenants if t in site.tenant_folders)
        after_folders = tenants
        plan.before["portgroup_security"] = before_security
        plan.after["portgroup_security"] = after_security
    else:
        destroyed = {vm["moid"] for vm in site.targets.values()}
        plan.destroy = list(site.targets.values())
        plan.power_off = [vm for vm in site.targets.values() if str(vm.get("runtime.powerState")) == "poweredOn"]
        candidates = {t["portgroup"] for t in targets if t["portgroup"]}
        for vm in site.targets.values():
            for nic in _nics(vm.get("config.hardware.device") or []):
                network = _nic_network(nic, site.networks)
                if network and network != params["management_portgroup"] and network in pgs:
                    candidates.add(network)
        keep: dict[str, list[str]] = {}
        for name in sorted(candidates):
            if name not in pgs or name == params["management_portgroup"]:
                continue
            network = site.networks.get(name)
            users = sorted(
                str(vm.get("name"))
                for vm in site.vms
                if vm["moid"] not in destroyed and network is not None and network in (vm.get("network") or [])
            )
            if users:
                keep[name] = users
            else:
                plan.remove_portgroups[name] = [h for h in site.hosts if str(h.get("name")) in pgs[name]]
        for name, users in keep.items():
            warnings.append("portgroup %s is kept: still used by %s" % (name, ", ".join(users)))
        for tenant in tenants:
            folder = site.tenant_folders.get(tenant)
            if folder is None:
                continue
            children = {c._moId for c in folder.get("childEntity") or []}
            if children <= destroyed:
                plan.remove_folders.append(tenant)
        before_pgs = {n: sorted(pgs.get(n, {})) for n in sorted(candidates) if n in pgs}
        after_pgs = {n: hosts for n, hosts in before_pgs.items() if n not in plan.remove_portgroups}
        before_folders = sorted(t for t in tenants if t in site.tenant_folders)
        after_folders = [t for t in before_folders if t not in plan.remove_folders]
    if errors:
        raise NestedTargetError(errors)

    names = sorted(t["name"] for t in targets)
    plan.before = {
        "targets": {n: before_targets.get(n) for n in names},
        "portgroups": before_pgs,
        "tenant_folders": ["%s/%s" % (site.root_path, t) for t in before_folders],
        **plan.before,
    }
    plan.after = {
        "targets": {n: after_targets.get(n) for n in names},
        "portgroups": after_pgs,
        "tenant_folders": ["%s/%s" % (site.root_path, t) for t in after_folders],
        **plan.after,
    }
    # A bigger disk than desired stays (disks never shrink): show it as it is.
    for name, want in plan.after["targets"].items():
        have = plan.before["targets"].get(name)
        if want is not None and have is not None and _same(have, want):
            plan.after["targets"][name] = have
    return plan


# --------------------------------------------------------------------------- apply


def apply(client: VSphereClient, params: dict[str, Any], targets: list[dict[str, Any]], site: Site, plan: Plan) -> None:
    """Make the changes of ``plan``: concurrent calls and tasks, one wait for each round."""
    limit = params["max_parallel"]
    by_name = {t["name"]: t for t in targets}

    if plan.create_folders:
        created = run_calls(
            ((tenant, partial(site.root_folder.CreateFolder, tenant)) for tenant in plan.create_folders),
            max_parallel=limit,
        )
        for tenant, folder in created.items():
            site.tenant_folders[tenant] = {"obj": folder, "moid": folder._moId}
    if plan.add_portgroups:
        # A new portgroup goes on its first host alone, then on the others at once: vCenter makes one
        # Network object of it, and the lab simulator does that racily when hosts add it concurrently.
        for wave in (slice(0, 1), slice(1, None)):
            calls = [
                ("%s@%s" % (name, host.get("name")), _add_portgroup(host, name, vlan, params["vswitch"]))
                for name, (vlan, hosts) in plan.add_portgroups.items()
                for host in hosts[wave]
            ]
            if calls:
                run_calls(calls, max_parallel=limit)
        site.networks = {str(r.get("name")): r["obj"] for r in client.retrieve(vim.Network, ["name"])}
    if plan.secure_portgroups:
        run_calls(
            [
                ("%s@%s" % (name, host.get("name")), _secure_portgroup(host, spec))
                for name, hosts in plan.secure_portgroups.items()
                for host, spec in hosts
            ],
            max_parallel=limit,
        )

    if plan.move:
        client.run_tasks(
            (
                (
                    str(vm.get("name")),
                    partial(site.tenant_folders[tenant]["obj"].MoveIntoFolder_Task, [vm["obj"]]),
                )
                for vm, tenant in plan.move
            ),
            max_parallel=limit,
        )

    if plan.power_off:
        client.run_tasks(
            ((str(vm.get("name")), vm["obj"].PowerOffVM_Task) for vm in plan.power_off), max_parallel=limit
        )

    if plan.destroy:
        client.run_tasks(((str(vm.get("name")), vm["obj"].Destroy_Task) for vm in plan.destroy), max_parallel=limit)
    if plan.remove_portgroups:
        # The last host of each portgroup goes alone (it removes the Network object), as for adding.
        for wave in (slice(0, -1), slice(-1, None)):
            calls = [
                ("%s@%s" % (name, host.get("name")), partial(host["configManager.networkSystem"].RemovePortGroup, name))
                for name, hosts in plan.remove_portgroups.items()
                for host in hosts[wave]
            ]
            if calls:
                run_calls(calls, max_parallel=limit)
    if plan.remove_folders:
        client.run_tasks(
            ((tenant, site.tenant_folders[tenant]["obj"].Destroy_Task) for tenant in plan.remove_folders),
            max_parallel=limit,
        )

    template = site.template
    if plan.clone and template is not None:
        hosts = [h["obj"] for h in site.hosts if not h.get("runtime.inMaintenanceMode")] or [site.hosts[0]["obj"]]

        def start_clone(want: dict[str, Any], host: Any) -> Callable[[], Any]:
            spec = clone_spec(site, want, site.networks, host)[0]
            folder = site.tenant_folders[want["tenant"]]["obj"]
            return lambda: template["obj"].CloneVM_Task(folder=folder, name=want["name"], spec=spec)

        client.run_tasks(
            ((want["name"], start_clone(want, hosts[i % len(hosts)])) for i, want in enumerate(plan.clone)),
            max_parallel=limit,
        )
        # What the clone did not set (a disk to grow, or a vCenter that ignores part of the
        # spec) is found by reading the clones back once and completed below.
        clones = [
            vm
            for vm in client.retrieve(vim.VirtualMachine, _VM_DETAIL, site.root_folder)
            if vm.get("name") in {w["name"] for w in plan.clone} and not vm.get("config.template")
        ]
        for vm in clones:
            want = desired_vm(by_name[vm["name"]], params, site)
            if reconfig_spec(vm, want, site.networks) is not None:
                plan.reconfigure.append((vm, want))
            if want["power_state"] == "poweredon" and str(vm.get("runtime.powerState")) != "poweredOn":
                plan.power_on.append(vm)

    if plan.reconfigure:
        client.run_tasks(
            ((str(vm.get("name")), _reconfigure(vm, want, site.networks)) for vm, want in plan.reconfigure),
            max_parallel=limit,
        )
    if plan.power_on:
        client.run_tasks(((str(vm.get("name")), vm["obj"].PowerOnVM_Task) for vm in plan.power_on), max_parallel=limit)


def _add_portgroup(host: dict[str, Any], name: str, vlan: int, vswitch: str) -> Callable[[], Any]:
    spec = vim.host.PortGroup.Specification(name=name, vlanId=vlan, vswitchName=vswitch, policy=_secure_policy())
    return lambda: host["configManager.networkSystem"].AddPortGroup(portgrp=spec)


def _secure_portgroup(host: dict[str, Any], have: Any) -> Callable[[], Any]:
    """UpdatePortGroup with the portgroup's own spec (VLAN, switch, other policies kept) and all three rejected."""
    spec = vim.host.PortGroup.Specification(
        name=have.name, vlanId=have.vlanId, vswitchName=have.vswitchName, policy=_secure_policy(have.policy)
    )
    return lambda: host["configManager.networkSystem"].UpdatePortGroup(pgName=have.name, portgrp=spec)


def _reconfigure(vm: dict[str, Any], want: dict[str, Any], networks: dict[str, Any]) -> Callable[[], Any]:
    spec = reconfig_spec(vm, want, networks)
    return lambda: vm["obj"].ReconfigVM_Task(spec=spec)


def run_nested_target(client: VSphereClient, params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    """The whole flow for one module call; returns the module result (``changed``, ``diff``...)."""
    targets = check_input(params)
    site = read_site(client, params, targets)
    plan = make_plan(params, targets, site)
    if plan.changed and not check_mode:
        apply(client, params, targets, site, plan)
    after = plan.after
    return {
        "changed": plan.changed,
        "targets": [
            {**state, "tenant": next(t["tenant"] for t in targets if t["name"] == name)}
            for name, state in sorted(after["targets"].items())
            if state is not None
        ],
        "portgroups": after["portgroups"],
        "portgroup_security": after.get("portgroup_security", {}),
        "tenant_folders": after["tenant_folders"],
        "actions": {
            "cloned": sorted(w["name"] for w in plan.clone),
            "reconfigured": sorted({str(pair[0].get("name")) for pair in plan.reconfigure}),
            "moved": sorted(str(pair[0].get("name")) for pair in plan.move),
            "powered_on": sorted({str(vm.get("name")) for vm in plan.power_on}),
            "powered_off": sorted(str(vm.get("name")) for vm in plan.power_off),
            "destroyed": sorted(str(vm.get("name")) for vm in plan.destroy),
            "portgroups_added": {
                n: sorted(str(h.get("name")) for h in hs) for n, (_vlan, hs) in plan.add_portgroups.items()
            },
            "portgroups_removed": {
                n: sorted(str(h.get("name")) for h in hs) for n, hs in plan.remove_portgroups.items()
            },
            "portgroups_secured": {
                n: sorted(str(h.get("name")) for h, _spec in hs) for n, hs in plan.secure_portgroups.items()
            },
            "folders_created": plan.create_folders,
            "folders_removed": plan.remove_folders,
        },
        "check_mode": check_mode,
        "warnings": plan.warnings,
        "diff": {"before": plan.before, "after": plan.after},
    }

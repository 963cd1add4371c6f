# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""One nested ESXi replication target configured through its own API.

One flow (STYLE rule 3): check the input, read the host in one round of concurrent
reads, build the desired state as plain data, compare, and only then (not in check
mode) apply.  Independent parts (network, NFS datastore, role and account, advanced
option, services) are applied concurrently; permissions follow, as they need the
datastore and the role.

Knows nothing of AnsibleModule: ``run_nested_host`` takes plain data and a client and
raises ``NestedHostError`` (bad input) or the client's typed errors.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ansible_collections.tenantry.msp.plugins.module_utils._tenant_model import ROUTE_INTERFACES, ROUTES_SPEC
from ansible_collections.tenantry.msp.plugins.module_utils.clients.vsphere import (
    InvalidRequest,
    VSphereClient,
    fault_message,
    run_calls,
    vim,
    vmodl,
)

try:
    from pyVmomi import VmomiSupport

    _LONG: Any = VmomiSupport.vmodlTypes["long"]
except ImportError:  # pragma: no cover - the module reports missing pyVmomi first
    _LONG = int

FOLLOW_HARDWARE_MAC = "Net.FollowHardwareMac"

# What a tenant may do on its nested target: put replicas on its own datastore, register and
# unregister them, power them on and off.  No Host.* privilege: no host configuration.
DEFAULT_PRIVILEGES = [
    "Datastore.AllocateSpace",
    "Datastore.Browse",
    "Datastore.FileManagement",
    "Resource.AssignVMToPool",
    "VirtualMachine.Interact.PowerOff",
    "VirtualMachine.Interact.PowerOn",
    "VirtualMachine.Interact.Reset",
    "VirtualMachine.Interact.Suspend",
    "VirtualMachine.Inventory.Register",
    "VirtualMachine.Inventory.Unregister",
]
# vSphere adds these to every role; they are not compared.
SYSTEM_PRIVILEGES = frozenset({"System.Anonymous", "System.Read", "System.View"})
ENTITIES = ("datastore", "vm_folder", "resource_pool")

ARGUMENT_SPEC: dict[str, Any] = {
    "follow_hardware_mac": {"type": "bool", "default": True},
    "vmkernel": {
        "type": "dict",
        "options": {
            "ip": {"type": "str", "required": True},
            "portgroup": {"type": "str", "default": "tenant"},
            "vswitch": {"type": "str", "default": "vSwitch1"},
            "uplinks": {"type": "list", "elements": "str", "default": ["vmnic1"]},
            "vlan": {"type": "int", "default": 0},
            "mac": {"type": "str"},
            "mtu": {"type": "int", "default": 1500},
        },
    },
    "nfs": {
        "type": "dict",
        "options": {
            "server": {"type": "str", "required": True},
            "path": {"type": "str", "required": True},
            "datastore": {"type": "str", "required": True},
            "read_only": {"type": "bool", "default": False},
        },
    },
    "tenant_access": {
        "type": "dict",
        "options": {
            "user": {"type": "str", "required": True},
            "password": {"type": "str", "no_log": True},
            "update_password": {"type": "str", "default": "on_create", "choices": ["on_create", "always"]},
            "description": {"type": "str", "default": "tenant replication account"},
            "role": {"type": "str", "default": "tenantry-tenant"},
            "privileges": {"type": "list", "elements": "str", "default": DEFAULT_PRIVILEGES},
            "entities": {
                "type": "list",
                "elements": "str",
                "choices": list(ENTITIES),
                "default": list(ENTITIES),
            },
        },
    },
    "management_portgroup": {"type": "str", "default": "Management Network"},
    "management_network": {"type": "str"},
    "default_gateway": {
        "type": "dict",
        "options": {
            "gateway": {"type": "str", "required": True},
            "interface": {"type": "str", "default": "tenant", "choices": list(ROUTE_INTERFACES)},
        },
    },
    "routes": ROUTES_SPEC,
    "disabled_services": {"type": "list", "elements": "str", "default": ["TSM-SSH", "TSM"]},
    "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
}


class NestedHostError(InvalidRequest):
    """The input, or the host it points at, does not allow the change; ``errors`` lists every problem."""


# --------------------------------------------------------------------------- input


def _route(network: str, gateway: str, interface: str) -> dict[str, str]:
    return {
        "network": str(ipaddress.ip_network(network, strict=False)),
        "gateway": str(ipaddress.ip_address(gateway)),
        "interface": interface,
    }


def _check_gateway(field: str, gateway: str, interface: str, networks: dict[str, Any], errors: list[str]) -> None:
    """A gateway must be reachable on the interface it names (the network of that VMkernel NIC)."""
    network = networks.get(interface)
    if network is None:
        return  # tenant: reported as missing vmkernel; management: checked against the host
    if ipaddress.ip_address(gateway) not in network or ipaddress.ip_address(gateway) in (
        network.network_address,
        network.broadcast_address,
    ):
        errors.append(
            "%s %s is not reachable on interface %s: it is not a host address of %s"
            % (field, gateway, interface, network)
        )


def check_input(params: dict[str, Any]) -> dict[str, Any]:
    """Validate the options without touching the host; return normalised copies of the parts."""
    errors: list[str] = []
    out: dict[str, Any] = {"vmkernel": None, "routes": [], "default_gateway": None, "management_network": None}
    vmk = params["vmkernel"]
    if vmk is not None:
        try:
            iface = ipaddress.ip_interface(vmk["ip"])
            if iface.version != 4 or "/" not in vmk["ip"] or iface.network.prefixlen >= 31:
                raise ValueError("an IPv4 address with a prefix length below 31")
            out["vmkernel"] = {**vmk, "interface": iface}
        except ValueError as exc:
            errors.append("vmkernel.ip %r is not an address like 10.210.0.100/24 (%s)" % (vmk["ip"], exc))
        if not 0 <= vmk["vlan"] <= 4095:
            errors.append("vmkernel.vlan %d is outside 0-4095" % vmk["vlan"])
        if vmk["mac"] is not None:
            vmk["mac"] = vmk["mac"].lower()
    if params["management_network"] is not None:
        try:
            net = ipaddress.ip_network(params["management_network"])
            if net.version != 4 or "/" not in params["management_network"]:
                raise ValueError("an IPv4 network in CIDR form")
            out["management_network"] = net
        except ValueError as exc:
            errors.append(
                "management_network %r is not a network like 10.0.16.0/20 (%s)" % (params["management_network"], exc)
            )
    networks = {
        "management": out["management_network"],
        "tenant": out["vmkernel"]["interface"].network if out["vmkernel"] is not None else None,
    }
    gateways = [("routes[%d]" % i, r) for i, r in enumerate(params["routes"])]
    if params["default_gateway"] is not None:
        gateways.append(("default_gateway", params["default_gateway"]))
    for field, item in gateways:
        if item["interface"] == "tenant" and vmk is None:
            errors.append("%s.interface tenant needs vmkernel (the tenant VMkernel NIC it leaves by)" % field)
        try:
            gateway = str(ipaddress.IPv4Address(item["gateway"]))
        except ValueError:
            errors.append("%s.gateway %r is not an IPv4 address" % (field, item["gateway"]))
            continue
        _check_gateway(field + ".gateway", gateway, item["interface"], networks, errors)
        if field == "default_gateway":
            out["default_gateway"] = {"gateway": gateway, "interface": item["interface"]}
            continue
        try:
            route = _route(item["network"], gateway, item["interface"])
        except ValueError as exc:
            errors.append("%s.network: %s" % (field, exc))
            continue
        if route["network"] == "0.0.0.0/0":
            errors.append("%s.network 0.0.0.0/0 is the default route; set default_gateway instead" % field)
        elif route["network"] in {r["network"] for r in out["routes"]}:
            errors.append("%s.network %s is given twice" % (field, route["network"]))
        else:
            out["routes"].append(route)
    nfs = params["nfs"]
    if nfs is not None and not nfs["path"].startswith("/"):
        errors.append("nfs.path %r must be an absolute export path" % nfs["path"])
    access = params["tenant_access"]
    if access is not None:
        host_privileges = sorted(p for p in access["privileges"] if p.startswith("Host."))
        if host_privileges:
            errors.append(
                "tenant_access.privileges %s would let the tenant configure the host; leave them out"
                % ", ".join(host_privileges)
            )
        if "datastore" in access["entities"] and nfs is None and params["state"] == "present":
            errors.append("tenant_access.entities has datastore, which needs nfs (the tenant's datastore)")
    if errors:
        raise NestedHostError(errors)
    return out


# --------------------------------------------------------------------------- read


@dataclass
class Host:
    """What one call knows about the nested ESXi, read in one round of concurrent reads."""

    row: dict[str, Any]
    datastores: list[dict[str, Any]]
    roles: list[Any]
    privileges: set[str]
    permissions: list[Any]
    vm_folder: Any
    resource_pool: Any
    user_exists: bool | None
    option: Any

    @property
    def network(self) -> Any:
        return self.row.get("config.network")

    def manager(self, name: str) -> Any:
        return self.row.get("configManager.%s" % name)


def read_host(client: VSphereClient, params: dict[str, Any]) -> Host:
    if client.is_vcenter:
        raise NestedHostError(
            [
                "%s is a vCenter; point nested_host at the nested ESXi's own API (tenantry_target_api_*)"
                % client.params.hostname
            ]
        )
    content = client.content
    auth = content.authorizationManager
    access = params["tenant_access"]
    reads: dict[str, Callable[[], Any]] = {
        "host": lambda: client.retrieve(
            vim.HostSystem,
            [
                "name",
                "config.network",
                "config.service",
                "configManager.networkSystem",
                "configManager.datastoreSystem",
                "configManager.advancedOption",
                "configManager.serviceSystem",
                "datastore",
            ],
        ),
        "datastores": lambda: client.retrieve(vim.Datastore, ["name", "info", "host"]),
        "roles": lambda: auth.roleList,
        "privileges": lambda: [p.privId for p in auth.privilegeList or []],
        "permissions": auth.RetrieveAllPermissions,
        "datacenters": lambda: client.retrieve(vim.Datacenter, ["vmFolder"]),
        "computes": lambda: client.retrieve(vim.ComputeResource, ["resourcePool"]),
    }
    if access is not None:
        reads["user"] = lambda: content.userDirectory.RetrieveUserGroups(
            searchStr=access["user"], exactMatch=True, findUsers=True, findGroups=False
        )
    got = run_calls(reads.items(), max_parallel=len(reads))
    if len(got["host"]) != 1:
        raise NestedHostError(
            ["expected one ESXi host behind %s, found %d" % (client.params.hostname, len(got["host"]))]
        )
    row = got["host"][0]
    try:
        option = row["configManager.advancedOption"].QueryOptions(FOLLOW_HARDWARE_MAC)[0]
    except vim.fault.InvalidName as exc:
        raise NestedHostError(
            ["the host has no advanced option %s: %s" % (FOLLOW_HARDWARE_MAC, fault_message(exc))]
        ) from exc
    user_exists = None
    if access is not None:
        user_exists = any(getattr(u, "principal", None) == access["user"] for u in got["user"] or [])
    return Host(
        row=row,
        datastores=got["datastores"],
        roles=list(got["roles"] or []),
        privileges=set(got["privileges"]),
        permissions=list(got["permissions"] or []),
        vm_folder=got["datacenters"][0]["vmFolder"] if got["datacenters"] else None,
        resource_pool=got["computes"][0].get("resourcePool") if got["computes"] else None,
        user_exists=user_exists,
        option=option,
    )


# --------------------------------------------------------------------------- state as data


def _vswitch(host: Host, name: str) -> Any | None:
    return next((s for s in host.network.vswitch or [] if s.name == name), None)


def _portgroup(host: Host, name: str) -> Any | None:
    return next((p for p in host.network.portgroup or [] if p.spec.name == name), None)


def _vnic(host: Host, portgroup: str) -> Any | None:
    return next((v for v in host.network.vnic or [] if v.portgroup == portgroup), None)


def _uplinks(vswitch: Any) -> list[str]:
    bridge = vswitch.spec.bridge if vswitch is not None and vswitch.spec is not None else None
    return sorted(getattr(bridge, "nicDevice", None) or [])


def _nas(host: Host, name: str) -> dict[str, Any] | None:
    for ds in host.datastores:
        if ds.get("name") == name:
            return ds
    return None


def _mount(host: Host, ds: dict[str, Any] | None) -> Any | None:
    """This host's mount of a datastore, or ``None`` when it does not mount it."""
    if ds is None:
        return None
    return next((m for m in ds.get("host") or [] if m.key == host.row["obj"]), None)


def _services(host: Host) -> dict[str, Any]:
    info = host.row.get("config.service")
    return {s.key: s for s in (info.service if info is not None else None) or []}


def _role(host: Host, name: str) -> Any | None:
    return next((r for r in host.roles if r.name == name), None)


def _entities(host: Host, access: dict[str, Any], datastore: Any) -> dict[str, Any]:
    objects = {"datastore": datastore, "vm_folder": host.vm_folder, "resource_pool": host.resource_pool}
    return {key: objects[key] for key in access["entities"]}


def interface_devices(host: Host, params: dict[str, Any]) -> dict[str, str]:
    """interface name (management, tenant) -> the VMkernel NIC that carries it now."""
    devices = {}
    mgmt = _vnic(host, params["management_portgroup"])
    if mgmt is not None:
        devices["management"] = mgmt.device
    tenant = _vnic(host, (params["vmkernel"] or {}).get("portgroup") or "tenant")
    if tenant is not None:
        devices["tenant"] = tenant.device
    return devices


def _routes(host: Host, params: dict[str, Any]) -> list[dict[str, str]]:
    """The host's static routes that leave by the management or the tenant interface (no default, no connected)."""
    interfaces = {device: name for name, device in interface_devices(host, params).items()}
    table = host.network.routeTableInfo
    out = []
    for entry in (table.ipRoute if table is not None else None) or []:
        interface = interfaces.get(entry.deviceName or "")
        if interface is None or entry.gateway in (None, "", "0.0.0.0") or entry.prefixLength == 0:
            continue
        try:
            out.append(_route("%s/%d" % (entry.network, entry.prefixLength), entry.gateway, interface))
        except ValueError:
            continue
    return sorted(out, key=lambda r: (r["network"], r["gateway"], r["interface"]))


def _default_gateway(host: Host, params: dict[str, Any]) -> dict[str, Any] | None:
    config = host.network.ipRouteConfig
    gateway = getattr(config, "defaultGateway", None) or None
    if gateway is None:
        return None
    interfaces = {device: name for name, device in interface_devices(host, params).items()}
    device = getattr(config, "gatewayDevice", None) or ""
    return {"gateway": gateway, "interface": interfaces.get(device, device or None)}


def current_state(host: Host, params: dict[str, Any], parts: dict[str, Any]) -> dict[str, Any]:
    """The managed parts of the host as plain data (no secrets)."""
    state: dict[str, Any] = {}
    present = params["state"] == "present"
    if present:
        state["follow_hardware_mac"] = int(host.option.value)
    vmk = parts["vmkernel"]
    if vmk is not None:
        nic = _vnic(host, vmk["portgroup"])
        pg = _portgroup(host, vmk["portgroup"])
        state["vmkernel"] = None
        if nic is not None or pg is not None:
            ip = nic.spec.ip if nic is not None else None
            state["vmkernel"] = {
                "portgroup": vmk["portgroup"] if pg is not None else None,
                "vswitch": pg.spec.vswitchName if pg is not None else None,
                "uplinks": _uplinks(_vswitch(host, pg.spec.vswitchName)) if pg is not None else [],
                "vlan": pg.spec.vlanId if pg is not None else None,
                "ip": str(ipaddress.ip_interface("%s/%s" % (ip.ipAddress, ip.subnetMask)))
                if ip is not None and ip.ipAddress and not ip.dhcp
                else None,
                "mac": (nic.spec.mac or "").lower() if nic is not None else None,
                "mtu": nic.spec.mtu if nic is not None else None,
            }
    nfs = params["nfs"]
    if nfs is not None:
        ds = _nas(host, nfs["datastore"])
        state["nfs"] = None
        mount = _mount(host, ds)
        if ds is not None and mount is not None:
            nas = getattr(ds.get("info"), "nas", None)
            state["nfs"] = {
                "datastore": ds.get("name"),
                "server": getattr(nas, "remoteHost", None),
                "path": getattr(nas, "remotePath", None),
                "read_only": getattr(mount.mountInfo, "accessMode", "readWrite") == "readOnly",
            }
    access = params["tenant_access"]
    if access is not None:
        role = _role(host, access["role"])
        state["role"] = (
            {"name": role.name, "privileges": sorted(set(role.privilege or []) - SYSTEM_PRIVILEGES)}
            if role is not None
            else None
        )
        state["account"] = {"user": access["user"]} if host.user_exists else None
        ds = _nas(host, nfs["datastore"]) if nfs is not None else None
        entities = _entities(host, access, ds["obj"] if ds is not None else None)
        names = {r.roleId: r.name for r in host.roles}
        perms = []
        for key, entity in sorted(entities.items()):
            for perm in host.permissions:
                if entity is not None and perm.entity == entity and perm.principal == access["user"] and not perm.group:
                    perms.append(
                        {"entity": key, "role": names.get(perm.roleId, str(perm.roleId)), "propagate": perm.propagate}
                    )
        state["permissions"] = perms
    routes = _routes(host, params)
    if present:
        # With the tenant VMkernel NIC managed the routes are managed whole ("tight"): any other static route
        # through the management or tenant interface is removed.  Without it, only the listed routes are added.
        state["routes"] = routes if vmk is not None else [r for r in routes if r in parts["routes"]]
        if parts["default_gateway"] is not None:
            state["default_gateway"] = _default_gateway(host, params)
        services = _services(host)
        state["services"] = {
            key: {"running": bool(services[key].running), "policy": services[key].policy}
            for key in params["disabled_services"]
            if key in services
        }
    else:
        state["routes"] = [r for r in routes if r in parts["routes"]]
        gateway = _default_gateway(host, params)
        if vmk is not None and gateway is not None and gateway["interface"] == "tenant":
            state["default_gateway"] = gateway  # it leaves by the NIC that goes: removed with it
    return state


def desired_state(params: dict[str, Any], parts: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    if params["state"] == "absent":
        for key in ("vmkernel", "nfs", "role", "account"):
            if key in current:
                state[key] = None
        if "permissions" in current:
            state["permissions"] = []
        state["routes"] = []
        if "default_gateway" in current:
            state["default_gateway"] = None
        return state
    state["follow_hardware_mac"] = 1 if params["follow_hardware_mac"] else 0
    vmk = parts["vmkernel"]
    if vmk is not None:
        have = current.get("vmkernel") or {}
        state["vmkernel"] = {
            "portgroup": vmk["portgroup"],
            "vswitch": vmk["vswitch"],
            "uplinks": sorted(vmk["uplinks"]),
            "vlan": vmk["vlan"],
            "ip": str(vmk["interface"]),
            "mac": vmk["mac"] if vmk["mac"] is not None else have.get("mac"),
            "mtu": vmk["mtu"],
        }
    nfs = params["nfs"]
    if nfs is not None:
        state["nfs"] = {
            "datastore": nfs["datastore"],
            "server": nfs["server"],
            "path": nfs["path"],
            "read_only": nfs["read_only"],
        }
    access = params["tenant_access"]
    if access is not None:
        state["role"] = {"name": access["role"], "privileges": sorted(set(access["privileges"]) - SYSTEM_PRIVILEGES)}
        state["account"] = {"user": access["user"]}
        state["permissions"] = [
            {"entity": key, "role": access["role"], "propagate": True} for key in sorted(access["entities"])
        ]
    state["routes"] = sorted(parts["routes"], key=lambda r: (r["network"], r["gateway"], r["interface"]))
    if parts["default_gateway"] is not None:
        state["default_gateway"] = parts["default_gateway"]
    state["services"] = {key: {"running": False, "policy": "off"} for key in current.get("services", {})}
    return state


def _check_management(host: Host, params: dict[str, Any], parts: dict[str, Any], errors: list[str]) -> list[str]:
    """Routes through the management interface need its VMkernel NIC and a gateway on its network."""
    items = [("routes[%d]" % i, r) for i, r in enumerate(parts["routes"]) if r["interface"] == "management"]
    if parts["default_gateway"] is not None and parts["default_gateway"]["interface"] == "management":
        items.append(("default_gateway", parts["default_gateway"]))
    if not items or params["state"] != "present":
        return []
    nic = _vnic(host, params["management_portgroup"])
    if nic is None:
        errors.append(
            "%s leaves by interface management, but no VMkernel NIC is on portgroup %r (management_portgroup)"
            % (items[0][0], params["management_portgroup"])
        )
        return []
    ip = nic.spec.ip
    live = None
    if ip is not None and ip.ipAddress and ip.subnetMask:
        live = ipaddress.ip_interface("%s/%s" % (ip.ipAddress, ip.subnetMask))
    declared = parts["management_network"]
    if declared is not None:
        if live is None or live.ip not in declared:
            return [
                "%s (management) has %s, not an address in management_network %s: is its DHCP reservation in "
                "effect? Its routes are set as declared." % (nic.device, live or "no address", declared)
            ]
        return []
    for field, item in items:
        if live is None or ipaddress.ip_address(item["gateway"]) not in live.network:
            errors.append(
                "%s.gateway %s is not reachable on interface management: %s has %s"
                % (field, item["gateway"], nic.device, live or "no address")
            )
    return []


def check_against_host(host: Host, params: dict[str, Any], parts: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Problems only the host can reveal, found before any change; returns warnings."""
    errors: list[str] = []
    warnings = _check_management(host, params, parts, errors)
    present = params["state"] == "present"
    nfs = params["nfs"]
    have = current.get("nfs")
    if (
        present
        and nfs is not None
        and have is not None
        and (have["server"], have["path"]) != (nfs["server"], nfs["path"])
    ):
        errors.append(
            "datastore %s exists with export %s:%s, not %s:%s; unmount it first or name another datastore"
            % (nfs["datastore"], have["server"], have["path"], nfs["server"], nfs["path"])
        )
    elif present and nfs is not None and have is not None and have["read_only"] != nfs["read_only"]:
        errors.append(
            "datastore %s is mounted %s; unmount it to change read_only"
            % (nfs["datastore"], "read-only" if have["read_only"] else "read-write")
        )
    access = params["tenant_access"]
    if present and access is not None:
        if host.privileges:
            unknown = sorted(set(access["privileges"]) - host.privileges)
            if unknown:
                errors.append("tenant_access.privileges unknown to the host: %s" % ", ".join(unknown))
        if not host.user_exists and not access["password"]:
            errors.append("tenant_access.password is required to create the account %s" % access["user"])
        role = _role(host, access["role"])
        if role is not None and role.system:
            errors.append("tenant_access.role %s is a system role; name another role" % access["role"])
    if present:
        known = set(_services(host))
        missing = [s for s in params["disabled_services"] if s not in known]
        if missing:
            errors.append(
                "the host has no service %s; it has %s" % (", ".join(missing), ", ".join(sorted(known)) or "none")
            )
    if errors:
        raise NestedHostError(errors)
    return warnings


# --------------------------------------------------------------------------- apply


def _apply_network(
    host: Host, params: dict[str, Any], parts: dict[str, Any], before: dict[str, Any], after: dict[str, Any]
) -> None:
    ns = host.manager("networkSystem")
    vmk = parts["vmkernel"]
    present = params["state"] == "present"
    devices = interface_devices(host, params)
    if present:
        if vmk is not None and before.get("vmkernel") != after.get("vmkernel"):
            vswitch = _vswitch(host, vmk["vswitch"])
            bridge = vim.host.VirtualSwitch.BondBridge(nicDevice=vmk["uplinks"]) if vmk["uplinks"] else None
            if vswitch is None:
                ns.AddVirtualSwitch(
                    vswitchName=vmk["vswitch"],
                    spec=vim.host.VirtualSwitch.Specification(numPorts=128, bridge=bridge, mtu=vmk["mtu"]),
                )
            elif _uplinks(vswitch) != sorted(vmk["uplinks"]):
                spec = vswitch.spec
                spec.bridge = bridge
                ns.UpdateVirtualSwitch(vswitchName=vmk["vswitch"], spec=spec)
            pg = _portgroup(host, vmk["portgroup"])
            pg_spec = vim.host.PortGroup.Specification(
                name=vmk["portgroup"], vlanId=vmk["vlan"], vswitchName=vmk["vswitch"], policy=vim.host.NetworkPolicy()
            )
            if pg is None:
                ns.AddPortGroup(portgrp=pg_spec)
            elif pg.spec.vlanId != vmk["vlan"] or pg.spec.vswitchName != vmk["vswitch"]:
                ns.UpdatePortGroup(pgName=vmk["portgroup"], portgrp=pg_spec)
            ip = vim.host.IpConfig(
                dhcp=False, ipAddress=str(vmk["interface"].ip), subnetMask=str(vmk["interface"].netmask)
            )
            nic = _vnic(host, vmk["portgroup"])
            if nic is None:
                spec = vim.host.VirtualNic.Specification(ip=ip, mtu=vmk["mtu"])
                if vmk["mac"]:
                    spec.mac = vmk["mac"]
                devices["tenant"] = ns.AddVirtualNic(portgroup=vmk["portgroup"], nic=spec)
            else:
                want = after["vmkernel"]
                have = before.get("vmkernel") or {}
                spec = vim.host.VirtualNic.Specification()
                if have.get("ip") != want["ip"]:
                    spec.ip = ip
                if have.get("mtu") != want["mtu"]:
                    spec.mtu = want["mtu"]
                if vmk["mac"] and have.get("mac") != want["mac"]:
                    spec.mac = want["mac"]
                if spec.ip is not None or spec.mtu is not None or spec.mac is not None:
                    ns.UpdateVirtualNic(device=nic.device, nic=spec)
        _apply_routes(ns, before.get("routes", []), after.get("routes", []), devices)
        if before.get("default_gateway") != after.get("default_gateway") and after.get("default_gateway"):
            gateway = after["default_gateway"]
            _update_route_config(ns, gateway["gateway"], devices[gateway["interface"]])
        return
    # absent: routes, a default gateway through the tenant NIC, then the NIC, its portgroup and an emptied switch
    _apply_routes(ns, before.get("routes", []), [], devices)
    if before.get("default_gateway") is not None:
        _update_route_config(ns, "", "")
    if vmk is not None and before.get("vmkernel") is not None:
        nic = _vnic(host, vmk["portgroup"])
        if nic is not None:
            ns.RemoveVirtualNic(device=nic.device)
        pg = _portgroup(host, vmk["portgroup"])
        if pg is not None:
            ns.RemovePortGroup(pgName=vmk["portgroup"])
            vswitch = _vswitch(host, pg.spec.vswitchName)
            others = [
                p for p in host.network.portgroup or [] if p.spec.vswitchName == pg.spec.vswitchName and p is not pg
            ]
            if vswitch is not None and not others and vswitch.name != "vSwitch0":
                ns.RemoveVirtualSwitch(vswitchName=vswitch.name)


def _apply_routes(ns: Any, before: list[dict[str, str]], after: list[dict[str, str]], devices: dict[str, str]) -> None:
    """One UpdateIpRouteTableConfig: removals first, then additions, each with the VMkernel NIC it leaves by."""
    ops = []
    for route, op in [(r, "remove") for r in before if r not in after] + [(r, "add") for r in after if r not in before]:
        net = ipaddress.ip_network(route["network"])
        ops.append(
            vim.host.IpRouteOp(
                changeOperation=op,
                route=vim.host.IpRouteEntry(
                    network=str(net.network_address),
                    prefixLength=net.prefixlen,
                    gateway=route["gateway"],
                    deviceName=devices.get(route["interface"]),
                ),
            )
        )
    if ops:
        try:
            ns.UpdateIpRouteTableConfig(config=vim.host.IpRouteTableConfig(ipRoute=ops))
        except vmodl.fault.MethodNotFound as exc:
            raise NestedHostError(
                ["the host does not implement HostNetworkSystem.UpdateIpRouteTableConfig (%s)" % fault_message(exc)]
            ) from exc


def _update_route_config(ns: Any, gateway: str, device: str) -> None:
    """The default gateway of the default TCP/IP stack, and the VMkernel NIC it leaves by."""
    try:
        ns.UpdateIpRouteConfig(config=vim.host.IpRouteConfig(defaultGateway=gateway, gatewayDevice=device))
    except vmodl.fault.MethodNotFound as exc:
        raise NestedHostError(
            ["the host does not implement HostNetworkSystem.UpdateIpRouteConfig (%s)" % fault_message(exc)]
        ) from exc


def _probe_routes(host: Host) -> None:
    """Fail before any change when the host cannot change its routes (an empty change is a no-op).

    UpdateIpRouteConfig has no such no-op (re-sending the current gateway fails where it is no longer
    reachable), so a host without it fails when the default gateway is set, naming the method.
    """
    try:
        host.manager("networkSystem").UpdateIpRouteTableConfig(config=vim.host.IpRouteTableConfig())
    except vmodl.fault.MethodNotFound as exc:
        raise NestedHostError(
            [
                "the host does not implement HostNetworkSystem.UpdateIpRouteTableConfig, so routes cannot be set; "
                "nothing was changed (%s)" % fault_message(exc)
            ]
        ) from exc


def _apply_nfs(host: Host, params: dict[str, Any], before: dict[str, Any], after: dict[str, Any]) -> None:
    nfs = params["nfs"]
    if nfs is None or before.get("nfs") == after.get("nfs"):
        return
    dss = host.manager("datastoreSystem")
    ds = _nas(host, nfs["datastore"])
    if after.get("nfs") is None:
        if ds is not None and _mount(host, ds) is not None:
            dss.RemoveDatastore(datastore=ds["obj"])
        return
    if _mount(host, ds) is None:
        spec = vim.host.NasVolume.Specification(
            remoteHost=nfs["server"],
            remotePath=nfs["path"],
            localPath=nfs["datastore"],
            accessMode="readOnly" if nfs["read_only"] else "readWrite",
            type="NFS",
        )
        dss.CreateNasDatastore(spec=spec)


@dataclass
class Managers:
    auth: Any
    accounts: Any


def _role_and_account(
    managers: Managers, host: Host, params: dict[str, Any], before: dict[str, Any], after: dict[str, Any]
) -> None:
    access = params["tenant_access"]
    if access is None or params["state"] != "present":
        return
    role = _role(host, access["role"])
    if role is None:
        managers.auth.AddAuthorizationRole(name=access["role"], privIds=access["privileges"])
    elif before.get("role") != after.get("role"):
        managers.auth.UpdateAuthorizationRole(roleId=role.roleId, newName=access["role"], privIds=access["privileges"])
    spec = vim.host.LocalAccountManager.AccountSpecification(
        id=access["user"], password=access["password"], description=access["description"]
    )
    if not host.user_exists:
        managers.accounts.CreateUser(user=spec)
    elif access["update_password"] == "always" and access["password"]:
        managers.accounts.UpdateUser(user=spec)


def _permissions(managers: Managers, client: VSphereClient, host: Host, params: dict[str, Any]) -> None:
    """Set (present) or remove (absent) the account's permissions; re-reads roles and datastores it needs."""
    access = params["tenant_access"]
    if access is None:
        return
    nfs = params["nfs"]
    present = params["state"] == "present"
    datastore = None
    if nfs is not None:
        rows = client.retrieve(vim.Datastore, ["name"]) if present else host.datastores
        datastore = next((r["obj"] for r in rows if r.get("name") == nfs["datastore"]), None)
    entities = _entities(host, access, datastore)
    if not present:
        for perm in host.permissions:
            if perm.principal == access["user"] and not perm.group and perm.entity in entities.values():
                managers.auth.RemoveEntityPermission(entity=perm.entity, user=access["user"], isGroup=False)
        return
    role = next((r for r in managers.auth.roleList or [] if r.name == access["role"]), None)
    if role is None:
        raise NestedHostError(["role %s was not created" % access["role"]])
    for key, entity in sorted(entities.items()):
        if entity is None:
            raise NestedHostError(["no %s to grant %s on" % (key.replace("_", " "), access["user"])])
        have = [p for p in host.permissions if p.entity == entity and p.principal == access["user"] and not p.group]
        if len(have) == 1 and have[0].roleId == role.roleId and have[0].propagate:
            continue
        perm = vim.AuthorizationManager.Permission(
            entity=entity, principal=access["user"], group=False, roleId=role.roleId, propagate=True
        )
        managers.auth.SetEntityPermissions(entity=entity, permission=[perm])
    for perm in host.permissions:
        if perm.principal == access["user"] and not perm.group and perm.entity not in entities.values():
            managers.auth.RemoveEntityPermission(entity=perm.entity, user=access["user"], isGroup=False)


def _remove_account_and_role(managers: Managers, host: Host, params: dict[str, Any], before: dict[str, Any]) -> None:
    access = params["tenant_access"]
    if access is None:
        return
    if before.get("account") is not None:
        managers.accounts.RemoveUser(userName=access["user"])
    role = _role(host, access["role"])
    if role is not None:
        managers.auth.RemoveAuthorizationRole(roleId=role.roleId, failIfUsed=False)


def _apply_option(host: Host, before: dict[str, Any], after: dict[str, Any]) -> None:
    if before.get("follow_hardware_mac") == after.get("follow_hardware_mac"):
        return
    value = _LONG(after["follow_hardware_mac"])
    host.manager("advancedOption").UpdateOptions(
        changedValue=[vim.option.OptionValue(key=FOLLOW_HARDWARE_MAC, value=value)]
    )


def _apply_services(host: Host, before: dict[str, Any], after: dict[str, Any]) -> None:
    services = host.manager("serviceSystem")
    for key, want in after.get("services", {}).items():
        have = before.get("services", {}).get(key, {})
        if have.get("policy") != want["policy"]:
            services.UpdateServicePolicy(id=key, policy=want["policy"])
        if have.get("running") and not want["running"]:
            services.StopService(id=key)


def apply(
    client: VSphereClient,
    host: Host,
    params: dict[str, Any],
    parts: dict[str, Any],
    before: dict[str, Any],
    after: dict[str, Any],
) -> None:
    managers = Managers(auth=client.content.authorizationManager, accounts=client.content.accountManager)
    if params["state"] == "present":
        run_calls(
            [
                ("network", lambda: _apply_network(host, params, parts, before, after)),
                ("nfs", lambda: _apply_nfs(host, params, before, after)),
                ("role and account", lambda: _role_and_account(managers, host, params, before, after)),
                (FOLLOW_HARDWARE_MAC, lambda: _apply_option(host, before, after)),
                ("services", lambda: _apply_services(host, before, after)),
            ],
            max_parallel=5,
        )
        if before.get("permissions") != after.get("permissions"):
            _permissions(managers, client, host, params)
        return
    if before.get("permissions"):
        _permissions(managers, client, host, params)
    run_calls(
        [
            ("network", lambda: _apply_network(host, params, parts, before, after)),
            ("nfs", lambda: _apply_nfs(host, params, before, after)),
            ("account and role", lambda: _remove_account_and_role(managers, host, params, before)),
        ],
        max_parallel=3,
    )


def run_nested_host(client: VSphereClient, params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    """The whole flow for one module call; returns the module result (``changed``, ``diff``...)."""
    parts = check_input(params)
    host = read_host(client, params)
    before = current_state(host, params, parts)
    warnings = check_against_host(host, params, parts, before)
    after = desired_state(params, parts, before)
    changed = before != after
    access = params["tenant_access"]
    if (
        params["state"] == "present"
        and access is not None
        and access["update_password"] == "always"
        and host.user_exists
    ):
        changed = True  # a password cannot be read back, so it is set (and reported) every time
    if changed and not check_mode:
        if before.get("routes", []) != after.get("routes", []):
            _probe_routes(host)
        apply(client, host, params, parts, before, after)
    vmk = parts["vmkernel"]
    device = None
    if vmk is not None and not check_mode and changed and params["state"] == "present":
        row = client.retrieve(vim.HostSystem, ["config.network.vnic"])[0]
        device = next((v.device for v in row.get("config.network.vnic") or [] if v.portgroup == vmk["portgroup"]), None)
    elif vmk is not None:
        nic = _vnic(host, vmk["portgroup"])
        device = nic.device if nic is not None else None
    return {
        "changed": changed,
        "host": host.row.get("name"),
        "state": after,
        "vmkernel_device": device,
        "warnings": warnings,
        "diff": {"before": before, "after": after},
    }

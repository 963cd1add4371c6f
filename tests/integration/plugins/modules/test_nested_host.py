"""tenantry.msp.nested_host against an ESX-mode simulator (one per nested target), through ansible-playbook.

Every outcome is read back from the simulated ESXi with pyVmomi.

The simulator stores permissions but does not enforce them (any user may do anything), so the
restricted account is tested by what was configured: the role's exact privilege list, the
account in the host's user directory, and the permission entries (entity, principal, role,
propagate) - not by logging in as the tenant and being refused.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim, vmodl
from support import run_module, run_playbook

pytestmark = pytest.mark.integration

MODULE = "tenantry.msp.nested_host"
PASSWORD = "Tenant-Secret-7f3a"
SYSTEM = {"System.Anonymous", "System.Read", "System.View"}
PRIVILEGES = {
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
}
# The seed's routing: the default gateway on the customer network, tight routes back to the provider's
# infrastructure through the management network (vmk0), and a route of the tenant's own on its network.
MANAGEMENT_NETWORK = "10.0.16.0/20"
ROUTES = [
    {"network": "10.0.0.0/24", "gateway": "10.0.16.1", "interface": "management", "description": "provider vCenter"},
    {"network": "10.0.8.0/24", "gateway": "10.0.16.1", "description": "provider DNS and AD"},  # management: default
    {"network": "172.16.0.0/16", "gateway": "10.210.0.254", "interface": "tenant", "description": "customer site"},
]
DEFAULT_GATEWAY = {"gateway": "10.210.0.1"}  # interface tenant: the default


def conn(ep: Any, **over: Any) -> dict[str, Any]:
    args = {
        "hostname": ep.hostname,
        "port": ep.port,
        "username": ep.username,
        "password": ep.password,
        "ca_file": str(ep.ca_file),
    }
    args.update(over)
    return args


def config(ep: Any, routes: list[dict[str, str]] | None = None, **over: Any) -> dict[str, Any]:
    args = conn(
        ep,
        vmkernel={"ip": "10.210.0.100/24", "mac": "00:50:56:00:0C:81"},
        nfs={"server": "192.168.50.10", "path": "/exports/tenants/t5host", "datastore": "nfs-t5host"},
        tenant_access={"user": "tenant-t5host", "password": PASSWORD},
        management_network=MANAGEMENT_NETWORK,
        routes=routes or [],
    )
    args.update(over)
    return args


def host_of(si: Any) -> Any:
    return si.RetrieveContent().rootFolder.childEntity[0].hostFolder.childEntity[0].host[0]


def lease(si: Any, address: str = "10.0.16.12", mask: str = "255.255.240.0") -> None:
    """vmk0 as its DHCP reservation leaves it (the simulator's starts with 127.0.0.1/8)."""
    ip = vim.host.IpConfig(dhcp=True, ipAddress=address, subnetMask=mask)
    host_of(si).configManager.networkSystem.UpdateVirtualNic(
        device="vmk0", nic=vim.host.VirtualNic.Specification(ip=ip)
    )


def services_supported(si: Any) -> bool:
    """Whether the simulator registers the HostServiceSystem its host's configManager names."""
    try:
        return host_of(si).configManager.serviceSystem.serviceInfo is not None
    except vmodl.fault.ManagedObjectNotFound:
        return False


def read_back(si: Any) -> dict[str, Any]:
    """The host as plain data, from pyVmomi."""
    content = si.RetrieveContent()
    host = host_of(si)
    net = host.config.network
    auth = content.authorizationManager
    role = next((r for r in auth.roleList if r.name == "tenantry-tenant"), None)
    users = content.userDirectory.RetrieveUserGroups(
        searchStr="tenant-t5host", exactMatch=True, findUsers=True, findGroups=False
    )
    ds = next((d for d in host.datastore if d.name == "nfs-t5host"), None)
    dc = content.rootFolder.childEntity[0]
    entities = {"datastore": ds, "vm_folder": dc.vmFolder, "resource_pool": dc.hostFolder.childEntity[0].resourcePool}
    perms = [p for p in auth.RetrieveAllPermissions() if p.principal == "tenant-t5host"]
    vmk = next((v for v in net.vnic if v.portgroup == "tenant"), None)
    return {
        "follow": host.configManager.advancedOption.QueryOptions("Net.FollowHardwareMac")[0].value,
        "vmk": (vmk.spec.ip.ipAddress, vmk.spec.ip.subnetMask, vmk.spec.mac) if vmk else None,
        "portgroup": next(
            ((p.spec.vswitchName, p.spec.vlanId) for p in net.portgroup if p.spec.name == "tenant"), None
        ),
        "uplinks": next((list(s.spec.bridge.nicDevice) for s in net.vswitch if s.name == "vSwitch1"), None),
        "nfs": (ds.info.nas.remoteHost, ds.info.nas.remotePath) if ds else None,
        "role": set(role.privilege) if role else None,
        "users": [u.principal for u in users or []],
        "permissions": sorted(
            (next(k for k, e in entities.items() if e == p.entity), p.roleId == role.roleId, p.propagate, p.group)
            for p in perms
        )
        if role
        else perms,
        "routes": sorted(
            (f"{r.network}/{r.prefixLength}", r.gateway, r.deviceName)
            for r in net.routeTableInfo.ipRoute
            if r.prefixLength and r.gateway not in ("0.0.0.0", "")
        ),
        "default_gateway": (net.ipRouteConfig.defaultGateway or "", net.ipRouteConfig.gatewayDevice or ""),
        "default_route": [(r.gateway, r.deviceName) for r in net.routeTableInfo.ipRoute if r.prefixLength == 0],
        "services": {s.key: (s.running, s.policy) for s in host.config.service.service if s.key in ("TSM", "TSM-SSH")},
    }


def test_configures_idempotently_and_removes(
    tmp_path: Path, esx_factory: Callable[..., Any], vsphere_connect: Callable[[Any], Any]
) -> None:
    ep = esx_factory("t5host")
    si = vsphere_connect(ep)
    lease(si)
    args = config(ep, ROUTES, default_gateway=DEFAULT_GATEWAY)
    empty = read_back(si)
    assert empty["default_gateway"] == ("127.0.0.1", "") and empty["routes"] == []

    runs = [run_module(tmp_path, MODULE, args, check=True, diff=True)]
    assert read_back(si) == empty  # check mode changed nothing
    runs += [run_module(tmp_path, MODULE, args, check=check, diff=True) for check in (False, True, False)]
    assert [(r.rc, r.result.get("changed")) for r in runs] == [(0, True), (0, True), (0, False), (0, False)], runs[
        1
    ].stdout[-3000:]

    got = read_back(si)
    assert got["follow"] == 1
    assert got["vmk"] == ("10.210.0.100", "255.255.255.0", "00:50:56:00:0c:81")
    assert got["portgroup"] == ("vSwitch1", 0)
    assert got["uplinks"] == ["vmnic1"]
    assert got["nfs"] == ("192.168.50.10", "/exports/tenants/t5host")
    # Permissions are stored, not enforced, by the simulator: assert the configuration itself.
    assert got["role"] == PRIVILEGES | SYSTEM
    assert not any(p.startswith("Host.") for p in got["role"])
    assert got["users"] == ["tenant-t5host"]
    assert got["permissions"] == [
        ("datastore", True, True, False),
        ("resource_pool", True, True, False),
        ("vm_folder", True, True, False),
    ]
    assert got["services"] == {"TSM": (False, "off"), "TSM-SSH": (False, "off")}
    # Routing read back from the host: each route through the VMkernel NIC of the interface it names, the
    # default gateway on the customer network through the tenant NIC.
    assert got["routes"] == [
        ("10.0.0.0/24", "10.0.16.1", "vmk0"),
        ("10.0.8.0/24", "10.0.16.1", "vmk0"),
        ("172.16.0.0/16", "10.210.0.254", "vmk1"),
    ]
    assert got["default_gateway"] == ("10.210.0.1", "vmk1") and got["default_route"] == [("10.210.0.1", "vmk1")]
    assert runs[0].result["diff"]["after"]["default_gateway"] == {"gateway": "10.210.0.1", "interface": "tenant"}
    assert runs[0].result["diff"]["before"]["default_gateway"] == {"gateway": "127.0.0.1", "interface": None}
    assert runs[1].result["vmkernel_device"] == "vmk1"
    assert not runs[1].result.get("warnings")  # vmk0 has its reserved address in the management network

    # Tight routes: a route added by hand through the management NIC is removed; a changed default gateway is
    # put back.
    ns = host_of(si).configManager.networkSystem
    stray = vim.host.IpRouteEntry(network="10.99.0.0", prefixLength=16, gateway="10.0.16.1", deviceName="vmk0")
    ns.UpdateIpRouteTableConfig(
        config=vim.host.IpRouteTableConfig(ipRoute=[vim.host.IpRouteOp(changeOperation="add", route=stray)])
    )
    ns.UpdateIpRouteConfig(config=vim.host.IpRouteConfig(defaultGateway="10.0.16.1", gatewayDevice="vmk0"))
    fix = run_module(tmp_path, MODULE, args, diff=True)
    assert fix.rc == 0 and fix.result["changed"] is True
    assert {"network": "10.99.0.0/16", "gateway": "10.0.16.1", "interface": "management"} in fix.result["diff"][
        "before"
    ]["routes"]
    assert (read_back(si)["routes"], read_back(si)["default_gateway"]) == (got["routes"], got["default_gateway"])

    # The password is never printed, not in the diff either.
    diff = runs[1].result["diff"]
    assert diff["before"]["account"] is None and diff["after"]["account"] == {"user": "tenant-t5host"}
    for run in runs:
        assert PASSWORD not in run.stdout + run.stderr
        assert ep.password not in run.stdout + run.stderr

    # A changed privilege list is corrected in place.
    content = si.RetrieveContent()
    role = next(r for r in content.authorizationManager.roleList if r.name == "tenantry-tenant")
    content.authorizationManager.UpdateAuthorizationRole(
        roleId=role.roleId, newName=role.name, privIds=["Datastore.Browse", "VirtualMachine.Interact.PowerOn"]
    )
    fix = run_module(tmp_path, MODULE, args, diff=True)
    assert fix.rc == 0 and fix.result["changed"] is True
    assert read_back(si)["role"] == PRIVILEGES | SYSTEM

    # absent removes what present added, and leaves the hardening alone.
    absent = dict(args, state="absent")
    gone = [run_module(tmp_path, MODULE, absent, check=check) for check in (True, False, True, False)]
    assert [(r.rc, r.result.get("changed")) for r in gone] == [(0, True), (0, True), (0, False), (0, False)]
    got = read_back(si)
    assert (got["vmk"], got["portgroup"], got["uplinks"], got["nfs"], got["role"], got["users"]) == (
        None,
        None,
        None,
        None,
        None,
        [],
    )
    assert got["permissions"] == [] and got["routes"] == []
    assert got["default_gateway"] == ("", "") and got["default_route"] == []  # it left by the NIC that is gone
    assert got["follow"] == 1


def test_management_routes_check_the_management_nic(
    tmp_path: Path, esx_factory: Callable[..., Any], vsphere_connect: Callable[[Any], Any]
) -> None:
    """vmk0 without its reserved address: a declared management network warns, an undeclared one refuses."""
    ep = esx_factory("t5mgmt")
    si = vsphere_connect(ep)  # vmk0 still has the simulator's 127.0.0.1/8: no DHCP reservation in effect
    before = read_back(si)
    refused = run_module(tmp_path, MODULE, config(ep, ROUTES[:1], management_network=None))
    assert refused.result.get("failed") is True
    assert (
        "routes[0].gateway 10.0.16.1 is not reachable on interface management: vmk0 has 127.0.0.1/8"
        in (refused.result["msg"])
    )
    assert read_back(si) == before
    warned = run_module(tmp_path, MODULE, config(ep, ROUTES[:1]))
    assert warned.rc == 0 and warned.result["changed"] is True
    assert any("vmk0 (management) has 127.0.0.1/8, not an address in management_network 10.0.16.0/20" in w
               for w in warned.result["warnings"])  # fmt: skip
    assert read_back(si)["routes"] == [("10.0.0.0/24", "10.0.16.1", "vmk0")]


def test_stops_and_disables_ssh_and_shell(
    tmp_path: Path, esx_factory: Callable[..., Any], vsphere_connect: Callable[[Any], Any]
) -> None:
    ep = esx_factory("t5ssh")
    si = vsphere_connect(ep)
    if not services_supported(si):
        # The stock ESX model names configManager.serviceSystem but registers no such object; its
        # TSM and TSM-SSH start stopped and off, which the idempotence test above checks.
        pytest.skip("the simulator has no HostServiceSystem: SSH cannot be turned on to be turned off")
    services = host_of(si).configManager.serviceSystem
    for key in ("TSM", "TSM-SSH"):
        services.UpdateServicePolicy(id=key, policy="on")
        services.StartService(id=key)
    args = conn(ep)
    runs = [run_module(tmp_path, MODULE, args, check=check, diff=True) for check in (True, False, True, False)]
    assert [(r.rc, r.result.get("changed")) for r in runs] == [(0, True), (0, True), (0, False), (0, False)]
    assert runs[1].result["diff"]["before"]["services"]["TSM-SSH"] == {"running": True, "policy": "on"}
    assert read_back(si)["services"] == {"TSM": (False, "off"), "TSM-SSH": (False, "off")}


def test_bad_input_fails_before_any_change(
    tmp_path: Path, esx_factory: Callable[..., Any], vsphere_connect: Callable[[Any], Any], vcenter: Any
) -> None:
    ep = esx_factory("t5bad")
    si = vsphere_connect(ep)
    before = read_back(si)
    cases = {
        "prefix": config(ep, vmkernel={"ip": "10.210.0.100"}),
        "gateway": config(ep, routes=[{"network": "10.0.0.0/24", "gateway": "10.99.0.1"}]),
        "tenant gateway": config(
            ep, routes=[{"network": "10.0.0.0/24", "gateway": "10.99.0.1", "interface": "tenant"}]
        ),
        "default route": config(ep, routes=[{"network": "0.0.0.0/0", "gateway": "10.0.16.1"}]),
        "default gateway": config(ep, default_gateway={"gateway": "10.0.16.1"}),
        "host privilege": config(
            ep, tenant_access={"user": "tenant-t5host", "password": PASSWORD, "privileges": ["Host.Config.Network"]}
        ),
        "no password": config(ep, tenant_access={"user": "tenant-t5host"}),
        "unknown service": config(ep, disabled_services=["TSM-SSH", "no-such-service"]),
        "vcenter": conn(vcenter),
    }
    play = [
        {
            "name": "bad input",
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [{"name": name, MODULE: args, "ignore_errors": True} for name, args in cases.items()],
        }
    ]
    path = tmp_path / "bad.yml"
    path.write_text(json.dumps(play))
    path.chmod(0o600)
    run = run_playbook(path, "-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable)
    results = dict(zip(cases, run.results, strict=True))
    expected = {
        "prefix": "vmkernel.ip '10.210.0.100' is not an address like 10.210.0.100/24",
        "gateway": "routes[0].gateway 10.99.0.1 is not reachable on interface management: it is not a host address "
        "of 10.0.16.0/20",
        "tenant gateway": "routes[0].gateway 10.99.0.1 is not reachable on interface tenant: it is not a host "
        "address of 10.210.0.0/24",
        "default route": "routes[0].network 0.0.0.0/0 is the default route; set default_gateway instead",
        "default gateway": "default_gateway.gateway 10.0.16.1 is not reachable on interface tenant",
        "host privilege": "tenant_access.privileges Host.Config.Network would let the tenant configure the host",
        "no password": "tenant_access.password is required to create the account tenant-t5host",
        "unknown service": "the host has no service no-such-service",
        "vcenter": "is a vCenter; point nested_host at the nested ESXi's own API",
    }
    for name, text in expected.items():
        assert results[name].get("failed") is True, (name, results[name])
        assert text in results[name]["msg"], (name, results[name]["msg"])
    assert read_back(si) == before
    assert PASSWORD not in run.stdout + run.stderr

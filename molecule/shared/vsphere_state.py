"""What a delegated vSphere scenario's verify reads back: the lab instance's simulators, seen with pyVmomi.

    vsphere_state.py STATE_DIR nested TENANT TARGET...   the tenant's nested targets (vCenter and each target)
    vsphere_state.py STATE_DIR failover TENANT TARGET     where the tenant's VMs are registered, and their NICs

Prints one JSON object.  Reads the endpoints from the lab's state files (vcenter.json, esx/<name>.json);
prints no password.  Read-only.
"""

from __future__ import annotations

import json
import ssl
import sys
from pathlib import Path
from typing import Any

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim


def connect(path: Path) -> Any:
    ep = json.loads(path.read_text())
    context = ssl.create_default_context(cafile=ep["ca_file"])
    return SmartConnect(
        host=ep["hostname"], port=ep["port"], user=ep["username"], pwd=ep["password"], sslContext=context
    )


def vms_under(content: Any, root: Any) -> dict[str, Any]:
    view = content.viewManager.CreateContainerView(root, [vim.VirtualMachine], True)
    try:
        return {vm.name: vm for vm in view.view}
    finally:
        view.Destroy()


def nics(vm: Any) -> list[dict[str, Any]]:
    return [
        {"address_type": d.addressType, "mac": d.macAddress, "network": getattr(d.backing, "deviceName", None)}
        for d in vm.config.hardware.device
        if isinstance(d, vim.vm.device.VirtualEthernetCard)
    ]


def provider_portgroups(content: Any, prefix: str) -> dict[str, list[Any]]:
    """Portgroups named prefix* on the production cluster's hosts: name -> [VLAN, security flags]."""
    cluster = content.searchIndex.FindByInventoryPath("provider/host/production")
    out: dict[str, list[Any]] = {}
    for host in cluster.host:
        for pg in host.config.network.portgroup:
            if pg.spec.name.startswith(prefix):
                sec = pg.spec.policy.security
                out[pg.spec.name] = [pg.spec.vlanId, [sec.allowPromiscuous, sec.macChanges, sec.forgedTransmits]]
    return out


def nested_host(si: Any) -> dict[str, Any]:
    content = si.RetrieveContent()
    host = content.rootFolder.childEntity[0].hostFolder.childEntity[0].host[0]
    vmk = next((v for v in host.config.network.vnic if v.portgroup == "tenant"), None)
    role = next((r for r in content.authorizationManager.roleList if r.name == "tenantry-tenant"), None)
    routes = host.config.network.routeTableInfo.ipRoute
    return {
        "follow_hardware_mac": host.configManager.advancedOption.QueryOptions("Net.FollowHardwareMac")[0].value,
        "tenant_vmk": [vmk.spec.ip.ipAddress, vmk.spec.mac] if vmk else None,
        "datastores": sorted(d.name for d in host.datastore),
        "role_privileges": sorted(role.privilege) if role else None,
        "permissions": sorted(
            p.principal
            for p in content.authorizationManager.RetrieveAllPermissions()
            if p.principal.startswith("tenant-")
        ),
        "routes": sorted(
            [f"{r.network}/{r.prefixLength}", r.gateway, r.deviceName]
            for r in routes
            if r.prefixLength and r.gateway != "0.0.0.0"
        ),
        "default_gateway": [
            host.config.network.ipRouteConfig.defaultGateway,
            host.config.network.ipRouteConfig.gatewayDevice,
        ],
        "services": {s.key: [s.running, s.policy] for s in host.config.service.service if s.key in ("TSM", "TSM-SSH")},
    }


def nested(state: Path, tenant: str, targets: list[str]) -> dict[str, Any]:
    vc = connect(state / "vcenter.json")
    try:
        content = vc.RetrieveContent()
        folder = content.searchIndex.FindByInventoryPath(f"provider/vm/replication-targets/{tenant}")
        vms = vms_under(content, folder) if folder is not None else {}
        out: dict[str, Any] = {
            "vcenter_targets": {
                name: {"power": str(vm.runtime.powerState), "nested_hv": vm.config.nestedHVEnabled, "nics": nics(vm)}
                for name, vm in sorted(vms.items())
            },
            "portgroups": provider_portgroups(content, f"tenant-{tenant}-"),
            "management_portgroup": provider_portgroups(content, "management"),
        }
    finally:
        Disconnect(vc)
    out["targets"] = {}
    for name in targets:
        si = connect(state / "esx" / f"{name}.json")
        try:
            out["targets"][name] = nested_host(si)
        finally:
            Disconnect(si)
    return out


def failover(state: Path, tenant: str, target: str) -> dict[str, Any]:
    vc = connect(state / "vcenter.json")
    si = connect(state / "esx" / f"{target}.json")
    try:
        content = vc.RetrieveContent()
        folder = content.searchIndex.FindByInventoryPath(f"provider/vm/tenants/{tenant}")
        production = {n: vm for n, vm in (vms_under(content, folder) if folder else {}).items() if vm.parent == folder}
        on_target = vms_under(si.RetrieveContent(), si.RetrieveContent().rootFolder)
        perms = content.authorizationManager
        return {
            "production": {
                name: {
                    "power": str(vm.runtime.powerState),
                    "networks": sorted(n.name for n in vm.network),
                    "datastores": sorted(d.name for d in vm.datastore),
                    "permissions": sorted(
                        (p.principal, next((r.name for r in perms.roleList if r.roleId == p.roleId), str(p.roleId)))
                        for p in perms.RetrieveEntityPermissions(vm, False)
                    ),
                }
                for name, vm in sorted(production.items())
            },
            "target": {name: str(vm.runtime.powerState) for name, vm in sorted(on_target.items())},
            "production_datastores": sorted(
                d.name for d in content.searchIndex.FindByInventoryPath("provider").datastore
            ),
        }
    finally:
        Disconnect(vc)
        Disconnect(si)


def main(argv: list[str]) -> int:
    state, what, tenant, *targets = argv
    result = nested(Path(state), tenant, targets) if what == "nested" else failover(Path(state), tenant, targets[0])
    print(json.dumps(result, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The role tenantry.msp.nested_esxi_target end to end: tenants inventory -> provider vCenter -> nested ESXis.

A temporary inventory holds two tenant files (read by the real tenantry.msp.tenants plugin), the
provider vCenter's connection (the session simulator) and one ESX-mode simulator per target as
that target's own API.  Outcomes are read back from the simulators with pyVmomi.

Permissions are stored but not enforced by the simulator: the nested hosts are checked for the
configured role and permission entries, not by logging in as the tenant.
"""

from __future__ import annotations

import shutil
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from pyVmomi import vim
from support import REPO, PlaybookRun, run_playbook

pytestmark = pytest.mark.integration

TENANTS = {
    "r5north": {"id": 71, "vlan": 3601, "count": 2, "net": "10.236.1"},
    "r5south": {"id": 72, "vlan": 3602, "count": 1, "net": "10.236.2"},
}
TARGETS = ["r5north-target-01", "r5north-target-02", "r5south-target-01"]
PASSWORD = "Tenant-Role-Secret-1"


def tenant_file(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    net = spec["net"]
    return {
        "name": name,
        "id": spec["id"],
        "vlan": spec["vlan"],
        "network": {"cidr": f"{net}.0/24", "gateway": f"{net}.1", "pool": f"{net}.100-{net}.149"},
        "targets": {"count": spec["count"], "cpus": 2, "memory_mb": 4096, "disk_gb": 20},
        "nfs": {"server": "192.168.50.10", "path": f"/exports/tenants/{name}"},
        "production": {"account": f"{name}-ops@vsphere.local"},
        # The seed's routing: default gateway on the customer network, a tight route back to the provider's
        # vCenter through the management network (10.0.16.0/20, the lab's management_pool).
        "default_gateway": f"{net}.1",
        "routes": [
            {
                "network": "10.0.0.0/24",
                "gateway": "10.0.16.1",
                "interface": "management",
                "description": "provider vCenter",
            }
        ],
    }


def endpoint_vars(prefix: str, ep: Any) -> dict[str, Any]:
    return {
        f"{prefix}_hostname": ep.hostname,
        f"{prefix}_port": ep.port,
        f"{prefix}_username": ep.username,
        f"{prefix}_password": ep.password,
        f"{prefix}_ca_file": str(ep.ca_file),
    }


@dataclass
class Site:
    inventory: Path
    playbook: Path
    esx: dict[str, Any]  # target name -> pyVmomi ServiceInstance of its own simulator

    def run(self, *args: str) -> PlaybookRun:
        flags = ["-i", str(self.inventory), "-e", "ansible_python_interpreter=" + sys.executable]
        return run_playbook(self.playbook, *flags, *args)


@pytest.fixture
def site(tmp_path: Path, vcenter: Any, esx_factory: Callable[..., Any], vsphere_connect: Callable[[Any], Any]) -> Site:
    inventory = tmp_path / "inventory"
    (inventory / "tenants").mkdir(parents=True)
    shutil.copy(REPO / "inventories" / "lab" / "tenants.tenantry.yaml", inventory)
    for name, spec in TENANTS.items():
        (inventory / "tenants" / f"{name}.yml").write_text(yaml.safe_dump(tenant_file(name, spec)))
    esx = {}
    for target in TARGETS:
        ep = esx_factory(target)
        esx[target] = vsphere_connect(ep)
        write(inventory / "host_vars" / f"{target}.yml", endpoint_vars("tenantry_target_api", ep))
    write(inventory / "group_vars" / "all.yml", endpoint_vars("tenantry_vcenter", vcenter))
    write(inventory / "group_vars" / "nested_targets.yml", {"nested_esxi_target_account_password": PASSWORD})
    playbook = tmp_path / "stamp.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Nested replication targets",
                    "hosts": "nested_targets",
                    "gather_facts": False,
                    "roles": [{"role": "tenantry.msp.nested_esxi_target"}],
                }
            ]
        )
    )
    return Site(inventory, playbook, esx)


def write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    path.chmod(0o600)


def changed(run: PlaybookRun) -> int:
    return sum(1 for r in run.results if r.get("changed"))


def failed(run: PlaybookRun) -> list[str]:
    """Messages of failed tasks, and of the failed items of failed loops."""
    out = []
    for result in (r for r in run.results if r.get("failed")):
        out.append(str(result.get("msg")))
        out += [str(i.get("msg")) for i in result.get("results", []) if i.get("failed")]
    return out


def targets_on_vcenter(si: Any) -> dict[str, Any]:
    root = si.RetrieveContent().searchIndex.FindByInventoryPath("provider/vm/replication-targets")
    out = {}
    for folder in root.childEntity:
        if isinstance(folder, vim.Folder) and folder.name in TENANTS:
            for vm in folder.childEntity:
                out[vm.name] = vm
    return out


def tenant_portgroups(si: Any) -> set[str]:
    cluster = si.RetrieveContent().searchIndex.FindByInventoryPath("provider/host/production")
    return {
        pg.spec.name for h in cluster.host for pg in h.config.network.portgroup if pg.spec.name.startswith("tenant-r5")
    }


def nested_state(si: Any) -> dict[str, Any]:
    content = si.RetrieveContent()
    host = content.rootFolder.childEntity[0].hostFolder.childEntity[0].host[0]
    vmk = next((v for v in host.config.network.vnic if v.portgroup == "tenant"), None)
    role = next((r for r in content.authorizationManager.roleList if r.name == "tenantry-tenant"), None)
    perms = content.authorizationManager.RetrieveAllPermissions()
    return {
        "follow": host.configManager.advancedOption.QueryOptions("Net.FollowHardwareMac")[0].value,
        "vmk": (vmk.spec.ip.ipAddress, vmk.spec.mac) if vmk else None,
        "datastores": sorted(d.name for d in host.datastore),
        "role": bool(role) and not any(p.startswith("Host.") for p in role.privilege),
        "permissions": sorted(p.principal for p in perms if p.principal.startswith("tenant-")),
        "routes": sorted(
            (f"{r.network}/{r.prefixLength}", r.gateway, r.deviceName)
            for r in host.config.network.routeTableInfo.ipRoute
            if r.prefixLength and r.gateway != "0.0.0.0"
        ),
        "default_gateway": (
            host.config.network.ipRouteConfig.defaultGateway,
            host.config.network.ipRouteConfig.gatewayDevice,
        ),
    }


def test_stamp_out_idempotent_limit_and_teardown(site: Site, vsphere_si: Any) -> None:
    runs = [site.run("--check")]
    assert runs[0].rc == 0, runs[0].stdout[-3000:]
    assert targets_on_vcenter(vsphere_si) == {}  # check mode changed nothing
    runs += [site.run(*(["--check"] if check else [])) for check in (False, True, False)]
    assert [r.rc for r in runs] == [0, 0, 0, 0], [failed(r) for r in runs]
    counts = [changed(r) for r in runs]
    # changed, changed, not changed, not changed (STYLE rule 21); in check mode only the vCenter stage
    # reports, as targets that do not exist yet have no API to ask.
    assert counts[0] >= 1 and counts[1] == 1 + len(TARGETS) and counts[2:] == [0, 0], counts

    vms = targets_on_vcenter(vsphere_si)
    assert sorted(vms) == TARGETS
    inventory_vars = yaml.safe_load(
        (site.inventory / "tenants" / "r5north.yml").read_text()
    )  # the MACs come from the inventory plugin's allocation: the vNICs carry manual MACs
    assert inventory_vars["vlan"] == 3601
    for vm in vms.values():
        assert vm.runtime.powerState == "poweredOn" and vm.config.nestedHVEnabled is True
        cards = [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)]
        assert [c.addressType for c in cards] == ["manual", "manual"]
        assert cards[0].backing.deviceName == "management"
    assert tenant_portgroups(vsphere_si) == {"tenant-r5north-vlan3601", "tenant-r5south-vlan3602"}

    north = nested_state(site.esx["r5north-target-02"])
    assert north["follow"] == 1
    assert north["vmk"][0] == "10.236.1.101"  # the second address of the tenant's pool
    assert north["datastores"] == ["LocalDS_0", "nfs-r5north"]
    # Stored, not enforced by the simulator: the restricted role and its permission entries.
    assert north["role"] is True and north["permissions"] == ["tenant-r5north"] * 3
    # Routing read back from the nested host: one tight route through vmk0 (management), the default gateway
    # on the customer network through the tenant NIC.
    assert north["routes"] == [("10.0.0.0/24", "10.0.16.1", "vmk0")]
    assert north["default_gateway"] == ("10.236.1.1", "vmk1")
    # The provider-side portgroups of the targets reject promiscuous mode, MAC changes and forged transmits.
    cluster = vsphere_si.RetrieveContent().searchIndex.FindByInventoryPath("provider/host/production")
    for host in cluster.host:
        for pg in host.config.network.portgroup:
            if pg.spec.name in ("management", "tenant-r5north-vlan3601", "tenant-r5south-vlan3602"):
                sec = pg.spec.policy.security
                assert (sec.allowPromiscuous, sec.macChanges, sec.forgedTransmits) == (False, False, False)
    assert nested_state(site.esx["r5south-target-01"])["datastores"] == ["LocalDS_0", "nfs-r5south"]
    for run in runs:
        assert PASSWORD not in run.stdout + run.stderr

    # --limit: tearing one tenant down leaves the other alone.
    south_gone = site.run("--limit", "tenant_r5south", "-e", "nested_esxi_target_state=absent")
    assert south_gone.rc == 0 and changed(south_gone) == 1, failed(south_gone)
    assert sorted(targets_on_vcenter(vsphere_si)) == TARGETS[:2]
    assert tenant_portgroups(vsphere_si) == {"tenant-r5north-vlan3601"}

    gone = site.run("-e", "nested_esxi_target_state=absent")
    assert gone.rc == 0 and changed(gone) == 1, failed(gone)
    assert targets_on_vcenter(vsphere_si) == {} and tenant_portgroups(vsphere_si) == set()
    folders = vsphere_si.RetrieveContent().searchIndex.FindByInventoryPath("provider/vm/replication-targets")
    assert not {f.name for f in folders.childEntity} & set(TENANTS)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_bad_input_fails_before_any_change(site: Site, vsphere_si: Any) -> None:
    def unchanged() -> None:
        assert targets_on_vcenter(vsphere_si) == {} and tenant_portgroups(vsphere_si) == set()
        assert all(nested_state(si)["vmk"] is None for si in site.esx.values())

    # A tenant file with a bad field: the inventory refuses it, naming file and field.
    bad = site.inventory / "tenants" / "r5south.yml"
    good = bad.read_text()
    bad.write_text(good.replace("vlan: 3602", "vlan: 5000"))
    run = site.run()
    assert run.rc != 0
    assert "r5south.yml: vlan: 5000 is outside 1-4094" in run.stdout + run.stderr
    bad.write_text(good)
    unchanged()

    # The MAC pool is exhausted: the allocation fails in the inventory.
    config = site.inventory / "tenants.tenantry.yaml"
    original = config.read_text()
    config.write_text(original + "mac_pool: 00:50:56:00:00:00-00:50:56:00:00:ff\n")
    run = site.run()
    assert run.rc != 0 and "exhausted" in run.stdout + run.stderr
    config.write_text(original)
    unchanged()

    # A template that does not exist, and an unreachable vCenter: preflight stops every target.
    run = site.run("-e", "nested_esxi_target_template=no-such-template")
    assert run.rc != 0
    assert any("template 'no-such-template' not found" in m for m in failed(run)), failed(run)
    unchanged()
    run = site.run("-e", f"tenantry_vcenter_port={free_port()}")
    assert run.rc != 0 and any("cannot reach vCenter" in m for m in failed(run)), failed(run)
    unchanged()

    # No account password: refused before the vCenter is touched.
    run = site.run("-e", "nested_esxi_target_account_password=")
    assert run.rc != 0 and any("nested_esxi_target_account_password" in m for m in failed(run)), failed(run)
    unchanged()

"""The inventory-to-role glue filters, fed the lab's real tenant files through the tenant model."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from support import REPO

from ansible_collections.tenantry.msp.plugins.filter import site
from ansible_collections.tenantry.msp.plugins.module_utils._switch import ios
from ansible_collections.tenantry.msp.plugins.module_utils._switch.bindings import build_config
from ansible_collections.tenantry.msp.plugins.module_utils._switch.ios_templates import interface_name
from ansible_collections.tenantry.msp.plugins.module_utils._tenant_model import load_all


@pytest.fixture(scope="module")
def inventory() -> tuple[dict[str, Any], dict[str, list[str]]]:
    """hostvars and groups shaped as the tenants inventory plugin makes them."""
    folder = REPO / "inventories" / "lab" / "tenants"
    docs = [(str(p), yaml.safe_load(p.read_text())) for p in sorted(folder.glob("*.yml"))]
    hostvars: dict[str, Any] = {}
    groups: dict[str, list[str]] = {"all": []}
    for tenant in load_all(docs, {"management_pool": "10.0.16.0/20", "management_vlan": 16}):
        targets = tenant.pop("targets_allocated")
        groups[f"tenant_{tenant['name']}"] = [t["name"] for t in targets]
        for t in targets:
            hostvars[t["name"]] = {
                "tenantry_tenant": tenant["name"],
                "tenantry_tenant_spec": tenant,
                "tenantry_target_name": t["name"],
                **{
                    f"tenantry_target_{k}": t[k]
                    for k in (
                        "mgmt_mac",
                        "mgmt_ip",
                        "mgmt_network",
                        "mgmt_vlan",
                        "tenant_mac",
                        "tenant_ip",
                        "switch_port",
                    )
                },
            }
    return hostvars, groups


def test_tenant_names(inventory: Any) -> None:
    _, groups = inventory
    assert site.tenant_names(groups) == ["acme", "globex"]
    assert site.tenant_names(groups, "acme") == ["acme"]
    with pytest.raises(AnsibleFilterError, match="unknown tenant 'initech'; the tenant files define: acme, globex"):
        site.tenant_names(groups, "initech")


def test_director_tenants(inventory: Any) -> None:
    hostvars, groups = inventory
    (acme,) = site.director_tenants(site.tenant_specs(["acme"], hostvars, groups))
    assert acme == {
        "name": "acme",
        "kind": "remote",
        "description": "Acme Manufacturing, two sites",
        "contact": "noc@acme.example",
        "workload_quota": 50,
    }


def test_dhcp_and_arp_inputs(inventory: Any) -> None:
    hostvars, groups = inventory
    reservations = site.dhcp_reservations_of(["acme", "globex"], hostvars, groups)
    assert [r["hostname"] for r in reservations] == ["acme-target-01", "acme-target-02", "globex-target-01"]
    assert reservations[0] == {"hostname": "acme-target-01", "mac": "00:50:56:00:0c:80", "ip": "10.0.22.65"}
    bindings = site.arp_bindings_of(["acme", "globex"], hostvars, groups, "lab-bridge")
    assert {b["port"] for b in bindings} == {"vt-acme-1", "vt-acme-2", "vt-globex-1"}
    assert bindings[0] == {
        "tenant": "acme", "port": "vt-acme-1", "mac": "00:50:56:00:0c:81", "ip": "10.210.0.100",
        "network": "10.210.0.0/24", "vlan": 210,
    }  # fmt: skip
    assert site.arp_bindings_of(["acme"], hostvars, groups, "another-switch") == []


def test_management_ports_get_bindings_too(inventory: Any) -> None:
    """The management vNIC's MAC bound to its reserved IP on its own switch port (issue 12, section 5)."""
    hostvars, groups = inventory
    bindings = site.arp_bindings_of(["acme", "globex"], hostvars, groups, "lab-mgmt")
    assert [b["port"] for b in bindings] == ["vm-acme-1", "vm-acme-2", "vm-globex-1"]
    assert bindings[0] == {
        "tenant": "acme", "port": "vm-acme-1", "mac": "00:50:56:00:0c:80", "ip": "10.0.22.65",
        "network": "10.0.16.0/20", "vlan": 16,
    }  # fmt: skip
    # On one Cisco IOS switch with both sides: port security, DAI (one ARP access list per VLAN) and IP source
    # guard hold the management binding exactly as the tenant binding.
    both = [*site.arp_bindings_of(["acme"], hostvars, groups, "lab-bridge")[:1], bindings[0]]
    both[0] = dict(both[0], port="Gi1/0/10")
    both[1] = dict(both[1], port="Gi1/0/30")
    lines = ios.render(build_config({"bindings": both, "uplinks": ["Gi1/0/48"]}, port_name=interface_name,
                                    require_vlan=True))  # fmt: skip
    for expected in (
        "description tenantry tenant=acme network=10.0.16.0/20",
        "switchport access vlan 16",
        "switchport port-security mac-address 0050.5600.0c80",
        "arp access-list TENANTRY-ARP-V16",
        "permit ip host 10.0.22.65 mac host 0050.5600.0c80",
        "ip arp inspection filter TENANTRY-ARP-V16 vlan 16 static",
        "ip source binding 0050.5600.0c80 vlan 16 10.0.22.65 interface GigabitEthernet1/0/30",
        "ip arp inspection vlan 16",
        "ip arp inspection vlan 210",
    ):
        assert expected in lines, expected
    parsed = ios.to_config(ios.parse_running_config("\n".join(lines)))
    assert {(b.port, b.mac, b.ip, b.vlan) for b in parsed.bindings} == {
        ("GigabitEthernet1/0/10", "00:50:56:00:0c:81", "10.210.0.100", 210),
        ("GigabitEthernet1/0/30", "00:50:56:00:0c:80", "10.0.22.65", 16),
    }


def test_a_management_port_needs_the_management_network(inventory: Any) -> None:
    hostvars, groups = inventory
    broken = {name: dict(h, tenantry_target_mgmt_network=None) for name, h in hostvars.items()}
    with pytest.raises(AnsibleFilterError, match="has a management switch port but no management network"):
        site.arp_bindings_of(["acme"], broken, groups, "lab-mgmt")


def test_nfs_exports(inventory: Any) -> None:
    hostvars, groups = inventory
    (acme,) = site.nfs_exports_of(["acme"], hostvars, groups, ["10.0.0.0/24"])
    assert acme == {
        "tenant": "acme",
        "path": "/exports/tenants/acme",
        "clients": ["10.0.22.65", "10.0.22.66", "10.0.0.0/24"],
        "size_gb": 2048,
    }

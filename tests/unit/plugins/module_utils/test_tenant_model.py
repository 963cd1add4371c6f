"""Tenant files: schema, meaning, cross-tenant conflicts and deterministic allocation."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import netaddr
import pytest

from ansible_collections.tenantry.msp.plugins.module_utils._allocation import (
    AllocationError,
    target_ip,
    target_mac,
)
from ansible_collections.tenantry.msp.plugins.module_utils._tenant_model import TenantError, load_all

SITE = {"management_pool": "10.0.16.0/20"}


def tenant(name: str = "acme", tid: int = 101, vlan: int = 210, octet: int = 210, **over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": name,
        "id": tid,
        "vlan": vlan,
        "network": {
            "cidr": f"10.{octet}.0.0/24",
            "gateway": f"10.{octet}.0.1",
            "dns": [f"10.{octet}.0.53"],
            "pool": f"10.{octet}.0.100-10.{octet}.0.149",
        },
        "targets": {"count": 2},
        "nfs": {"server": "192.168.50.10", "path": f"/exports/{name}"},
        "production": {"account": f"{name}-ops@vsphere.local"},
        "failover": {"destination_vlans": [tid + 3000]},
    }
    for key, value in over.items():
        data[key] = value
    return data


def errors_of(*docs: dict[str, Any]) -> str:
    with pytest.raises(TenantError) as err:
        load_all([(f"tenants/{d.get('name', 'x')}.yml", d) for d in docs], SITE)
    return str(err.value)


def test_valid_tenant_is_normalised_and_allocated() -> None:
    (t,) = load_all([("tenants/acme.yml", tenant())], SITE)
    assert t["type"] == "remote" and t["nfs"]["datastore"] == "nfs-acme"
    assert t["production"]["folder"] == "tenants/acme"
    assert t["portgroups"] == {"replication": "tenant-acme-vlan210", "destinations": {"3101": "tenant-acme-vlan3101"}}
    first, second = t["targets_allocated"]
    assert first["name"] == "acme-target-01" and second["name"] == "acme-target-02"
    assert first["tenant_ip"] == "10.210.0.100" and second["tenant_ip"] == "10.210.0.101"
    assert len({first["mgmt_mac"], first["tenant_mac"], second["mgmt_mac"], second["tenant_mac"]}) == 4


def test_allocation_is_stable_when_tenants_are_added() -> None:
    alone = load_all([("tenants/acme.yml", tenant())], SITE)[0]["targets_allocated"]
    others = [tenant(f"t{i}", tid=i, vlan=1000 + i, octet=i) for i in range(1, 60)]
    crowd = load_all(
        [("tenants/acme.yml", tenant())] + [(f"tenants/t{i}.yml", o) for i, o in enumerate(others, 1)], SITE
    )
    acme = next(t for t in crowd if t["name"] == "acme")
    assert acme["targets_allocated"] == alone


def test_allocations_never_collide_and_stay_in_vmware_manual_range() -> None:
    macs, ips = set(), set()
    for tid, index in itertools.product(range(1, 200), range(1, 17)):
        for kind in ("management", "tenant"):
            mac = target_mac(tid, index, kind)
            assert int(netaddr.EUI(mac)) <= int(netaddr.EUI("00:50:56:3F:FF:FF"))
            assert mac.startswith("00:50:56:") and mac not in macs
            macs.add(mac)
        ip = target_ip(tid, index, "10.0.0.0/16")
        assert ip not in ips
        ips.add(ip)


def test_pools_exhausted_say_so() -> None:
    with pytest.raises(AllocationError, match=r"MAC pool .* exhausted"):
        target_mac(3, 1, pool="00:50:56:00:00:00-00:50:56:00:00:3f")
    with pytest.raises(AllocationError, match=r"management pool 10\.0\.16\.0/28 exhausted"):
        target_ip(2, 1, "10.0.16.0/28")
    with pytest.raises(AllocationError, match="outside VMware's manual range"):
        target_mac(1, 1, pool="00:50:56:40:00:00-00:50:56:40:00:ff")
    msg = errors_of(tenant(tid=9999, failover={}))
    assert "tenants/acme.yml" in msg and "management pool" in msg and "exhausted" in msg


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"vlan": 5000}, "tenants/acme.yml: vlan: 5000 is outside 1-4094"),
        ({"vlan": "ten"}, "vlan"),
        ({"id": 0}, "id: 0 must be 1 or more"),
        ({"colour": "red"}, "colour"),
        ({"type": "hybrid"}, "type"),
        ({"network": {"cidr": "10.1.0.0", "gateway": "10.1.0.1", "pool": "10.1.0.5-10.1.0.9"}}, "network.cidr"),
        (
            {"network": {"cidr": "10.1.0.0/24", "gateway": "10.2.0.1", "pool": "10.1.0.5-10.1.0.9"}},
            "network.gateway: 10.2.0.1 is not an address inside 10.1.0.0/24",
        ),
        (
            {"network": {"cidr": "10.1.0.0/24", "gateway": "10.1.0.1", "pool": "10.1.1.5-10.1.1.9"}},
            "network.pool: 10.1.1.5-10.1.1.9 is not inside 10.1.0.0/24",
        ),
        (
            {"network": {"cidr": "10.1.0.0/24", "gateway": "10.1.0.1", "pool": "10.1.0.5-10.1.0.5"}},
            "fewer than targets.count 2",
        ),
        ({"targets": {"count": 17}}, "targets.count: 17 is outside 1-16"),
        ({"nfs": {"server": "x", "path": "exports/acme"}}, "nfs.path"),
        ({"failover": {"destination_vlans": [210]}}, "tenant's replication VLAN"),
        ({"switch_ports": [{"target": 3, "switch": "s", "port": "p"}]}, "switch_ports[0].target: 3 is not a target"),
        ({"routes": [{"network": "10.0.0.0/24", "gateway": "10.9.9.9"}]}, "routes[0].gateway"),
        ({"name": "9lives"}, "name"),
    ],
)
def test_bad_fields_are_named(change: dict[str, Any], expected: str) -> None:
    assert expected in errors_of(tenant(**change))


def test_missing_required_field_is_named() -> None:
    data = tenant()
    del data["nfs"]
    assert "nfs" in errors_of(data)


def test_every_error_is_reported_at_once() -> None:
    msg = errors_of(tenant(vlan=0, targets={"count": 0}))
    assert "vlan" in msg and "targets.count" in msg


@pytest.mark.parametrize(
    ("other", "expected"),
    [
        (tenant("acme", tid=7, vlan=300, octet=30), "name acme is already used by tenant 'acme'"),
        (tenant("beta", tid=101, vlan=300, octet=30), "id 101 is already used"),
        (tenant("beta", tid=7, vlan=210, octet=30), "vlan 210 is already used"),
        (tenant("beta", tid=7, vlan=300, octet=210), "overlaps tenant 'acme'"),
        (
            tenant("beta", tid=7, vlan=300, octet=30, failover={"destination_vlans": [210]}),
            "VLAN 210 is the replication VLAN of tenant 'acme'",
        ),
        (
            tenant("beta", tid=7, vlan=300, octet=30, failover={"destination_vlans": [3101]}),
            "failover destination VLAN 3101 is already used by tenant 'acme'",
        ),
    ],
)
def test_cross_tenant_conflicts_are_refused(other: dict[str, Any], expected: str) -> None:
    assert expected in errors_of(tenant(), other)


def test_switch_port_claimed_twice() -> None:
    port = [{"target": 1, "switch": "sw1", "port": "Gi1/0/10"}]
    msg = errors_of(
        tenant(switch_ports=port), tenant("beta", tid=7, vlan=300, octet=30, switch_ports=copy.deepcopy(port))
    )
    assert "switch port ('sw1', 'Gi1/0/10') is already used by tenant 'acme'" in msg


def test_names_are_ascii_dns_labels_so_no_name_looks_like_another() -> None:
    for bad in ("\N{CYRILLIC SMALL LETTER A}cme", "Acme", "acme_1", "1acme", "acme-", "a" * 41):
        assert f"{bad!r} must be ASCII lower-case" in errors_of(tenant(name=bad))
    assert load_all([("tenants/a-1.yml", tenant(name="a-1"))], SITE)[0]["name"] == "a-1"


def test_nfs_paths_are_normalised_and_never_shared() -> None:
    for bad in ("/exports/tenants/../../etc", "/exports//acme", "/exports/acme/", "exports/acme"):
        assert "must be an absolute, normalised export path" in errors_of(tenant(nfs={"server": "s", "path": bad}))
    shared = errors_of(
        tenant(),
        tenant("globex", tid=102, vlan=220, octet=220, nfs={"server": "192.168.50.10", "path": "/exports/acme"}),
    )
    assert "tenants/globex.yml: nfs 192.168.50.10:/exports/acme shares the export 192.168.50.10:/exports/acme" in shared
    inside = errors_of(
        tenant(),
        tenant("globex", tid=102, vlan=220, octet=220, nfs={"server": "192.168.50.10", "path": "/exports/acme/g"}),
    )
    assert "every tenant needs an export of its own" in inside
    # The same path on another NFS server is another export.
    other = tenant("globex", tid=102, vlan=220, octet=220, nfs={"server": "192.168.50.11", "path": "/exports/acme"})
    assert len(load_all([("tenants/acme.yml", tenant()), ("tenants/globex.yml", other)], SITE)) == 2


def test_tenant_networks_stay_clear_of_the_management_pool_and_of_routed_infrastructure() -> None:
    with pytest.raises(TenantError) as err:
        load_all([("tenants/acme.yml", tenant())], {"management_pool": "10.210.0.0/16"})
    assert "network.cidr: 10.210.0.0/24 overlaps the provider's management_pool 10.210.0.0/16" in str(err.value)
    routed = tenant(routes=[{"network": "10.210.0.0/25", "gateway": "10.0.16.1"}])
    assert "routes[0].network: 10.210.0.0/25 overlaps the tenant network 10.210.0.0/24" in errors_of(routed)


def test_a_misspelt_key_is_one_message_with_a_suggestion() -> None:
    data = tenant()
    data["vlna"] = data.pop("vlan")
    data["network"]["gatway"] = data["network"].pop("gateway")
    lines = errors_of(data).splitlines()
    assert lines == [
        "tenants/acme.yml: network.gatway: unknown field; did you mean 'gateway'?",
        "tenants/acme.yml: vlna: unknown field; did you mean 'vlan'?",
    ]
    assert "allowed: backups, contact, default_gateway, description" in errors_of(tenant(colour="blue"))


MGMT_ROUTES = [
    {"network": "10.0.0.0/24", "gateway": "10.0.16.1", "interface": "management", "description": "vCenter"},
    {"network": "192.168.50.10/32", "gateway": "10.0.16.1", "description": "NFS"},
]


def test_default_gateway_is_on_the_customer_network_and_routes_name_their_interface() -> None:
    (t,) = load_all([("tenants/acme.yml", tenant(routes=copy.deepcopy(MGMT_ROUTES)))], SITE)
    assert t["default_gateway"] == "10.210.0.1"  # network.gateway unless given
    assert [(r["network"], r["gateway"], r["interface"]) for r in t["routes"]] == [
        ("10.0.0.0/24", "10.0.16.1", "management"),
        ("192.168.50.10/32", "10.0.16.1", "management"),  # management is the default interface
    ]
    first = t["targets_allocated"][0]
    assert (first["mgmt_network"], first["mgmt_vlan"]) == ("10.0.16.0/20", None)
    own = tenant(default_gateway="10.210.0.254", routes=[{"network": "172.16.0.0/16", "gateway": "10.210.0.254",
                                                          "interface": "tenant"}])  # fmt: skip
    (t,) = load_all([("tenants/acme.yml", own)], {**SITE, "management_network": "10.0.16.0/22", "management_vlan": 16})
    assert t["default_gateway"] == "10.210.0.254" and t["routes"][0]["interface"] == "tenant"
    assert t["targets_allocated"][0]["mgmt_network"] == "10.0.16.0/22"
    assert t["targets_allocated"][0]["mgmt_vlan"] == 16


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"default_gateway": "10.9.9.9"}, "default_gateway: 10.9.9.9 is not an address inside the tenant network"),
        ({"default_gateway": "10.210.0.120"}, "default_gateway: 10.210.0.120 is inside network.pool"),
        ({"default_gateway": "10.210.0.255"}, "default_gateway: 10.210.0.255 is the network or broadcast address"),
        (
            {"routes": [{"network": "10.0.0.0/24", "gateway": "10.210.0.1"}]},
            "routes[0].gateway: 10.210.0.1 is not reachable on interface management: it is not a host address of "
            "the management network 10.0.16.0/20 (a gateway on the other network needs interface: tenant)",
        ),
        (
            {"routes": [{"network": "10.0.0.0/24", "gateway": "10.0.16.1", "interface": "tenant"}]},
            "routes[0].gateway: 10.0.16.1 is not reachable on interface tenant: it is not a host address of the "
            "tenant network 10.210.0.0/24",
        ),
        ({"routes": [{"network": "0.0.0.0/0", "gateway": "10.0.16.1"}]}, "is the default route: set default_gateway"),
        (
            {"routes": [{"network": "10.0.17.0/24", "gateway": "10.0.16.1"}]},
            "routes[0].network: 10.0.17.0/24 overlaps the management network 10.0.16.0/20",
        ),
        ({"routes": MGMT_ROUTES + MGMT_ROUTES[:1]}, "routes[2].network: 10.0.0.0/24 is already routes[0]"),
        ({"routes": [{"network": "10.0.0.0/24", "gateway": "vcenter"}]}, "routes[0].gateway: 'vcenter' is not an IPv4"),
        ({"routes": [{"network": "10.0.0.0/24", "gateway": "10.0.16.1", "interface": "vmk0"}]}, "interface"),
        (
            {
                "switch_ports": [
                    {"target": 1, "switch": "sw", "port": "p1", "management": {"switch": "sw", "port": "p1"}}
                ]
            },
            "switch_ports[0].management: port p1 on switch sw is already switch_ports[0]",
        ),
    ],
)
def test_bad_routes_and_ports_are_named(change: dict[str, Any], expected: str) -> None:
    assert expected in errors_of(tenant(**copy.deepcopy(change)))


def test_management_routes_need_a_management_network() -> None:
    with pytest.raises(TenantError) as err:
        load_all(
            [("tenants/acme.yml", tenant(routes=copy.deepcopy(MGMT_ROUTES)))],
            {"management_pool": "10.0.16.5-10.0.16.99"},
        )
    assert "routes[0].gateway: interface management needs the provider's management network" in str(err.value)


def test_management_ports_and_routed_infrastructure_are_not_shared() -> None:
    mgmt = [{"target": 1, "switch": "sw", "port": "p1", "management": {"switch": "mgmt", "port": "m1"}}]
    other = [{"target": 1, "switch": "sw", "port": "p2", "management": {"switch": "mgmt", "port": "m1"}}]
    msg = errors_of(tenant(switch_ports=mgmt), tenant("beta", tid=7, vlan=300, octet=30, switch_ports=other))
    assert "switch port ('mgmt', 'm1') is already used by tenant 'acme'" in msg
    routed = tenant(routes=[{"network": "10.30.0.0/16", "gateway": "10.0.16.1"}])
    msg = errors_of(routed, tenant("beta", tid=7, vlan=300, octet=30))
    assert (
        "tenants/beta.yml: network.cidr 10.30.0.0/24 overlaps 10.30.0.0/16, the provider infrastructure tenant "
        "'acme' routes to (tenants/acme.yml routes[0])" in msg
    )

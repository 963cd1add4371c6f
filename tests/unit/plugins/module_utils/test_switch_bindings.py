"""Binding validation (refused before anything is pushed, naming the ports) and what each state means."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.tenantry.msp.plugins.module_utils._switch.bindings import (
    Binding,
    BindingError,
    LockConfig,
    build_config,
    changes,
    check,
    desired,
    linux_port,
    normalize_mac,
)


def binding(
    port: str, mac: str, ip: str, tenant: str = "acme", network: str = "10.210.0.0/24", **kw: Any
) -> dict[str, Any]:
    return {"tenant": tenant, "port": port, "mac": mac, "ip": ip, "network": network, **kw}


def build(*bindings: dict[str, Any], complete: bool = True, **raw: Any) -> LockConfig:
    return build_config(
        {"bindings": list(bindings), **raw}, port_name=linux_port, require_vlan=False, complete=complete
    )


def refused(*bindings: dict[str, Any], **raw: Any) -> list[str]:
    with pytest.raises(BindingError) as err:
        build(*bindings, **raw)
    return err.value.errors


def test_macs_in_any_notation() -> None:
    assert normalize_mac("0050.5600.6503") == "00:50:56:00:65:03"
    assert normalize_mac("00-50-56-00-65-03") == "00:50:56:00:65:03"
    assert normalize_mac("00:50:56:00:65:0A") == "00:50:56:00:65:0a"
    with pytest.raises(ValueError, match="not a MAC"):
        normalize_mac("00:50:56")


def test_a_good_config_is_normalised_and_sorted() -> None:
    config = build(
        binding("vt-acme-2", "0050.5600.6505", "10.210.0.12"),
        binding("vt-acme-1", "00:50:56:00:65:03", " 10.210.0.11 ", vlan=210),
    )
    assert [b.port for b in config.bindings] == ["vt-acme-1", "vt-acme-2"]
    assert config.bindings[1].mac == "00:50:56:00:65:05"
    assert config.bindings[0] == Binding("vt-acme-1", "00:50:56:00:65:03", "10.210.0.11", "acme", "10.210.0.0/24", 210)
    assert config.arp_rate == 15 and config.violation == "restrict"


def test_ip_outside_the_tenant_network_names_the_port() -> None:
    assert refused(binding("vt-acme-1", "00:50:56:00:65:03", "10.9.0.5")) == [
        "port vt-acme-1: ip 10.9.0.5 is outside the tenant network 10.210.0.0/24"
    ]


def test_network_and_broadcast_addresses_are_refused() -> None:
    errors = refused(
        binding("vt-a", "00:50:56:00:65:03", "10.210.0.0"), binding("vt-b", "00:50:56:00:65:05", "10.210.0.255")
    )
    assert errors == [
        "port vt-a: ip 10.210.0.0 is the network or broadcast address of 10.210.0.0/24",
        "port vt-b: ip 10.210.0.255 is the network or broadcast address of 10.210.0.0/24",
    ]


def test_two_ports_claiming_one_mac_or_ip_name_both_ports() -> None:
    errors = refused(
        binding("vt-acme-1", "00:50:56:00:65:03", "10.210.0.11"),
        binding("vt-acme-2", "00:50:56:00:65:03", "10.210.0.12"),
        binding("vt-acme-3", "00:50:56:00:65:07", "10.210.0.11"),
    )
    assert errors == [
        "ports vt-acme-1 and vt-acme-2 both claim MAC 00:50:56:00:65:03",
        "ports vt-acme-1 and vt-acme-3 both claim IP 10.210.0.11",
    ]


def test_duplicates_are_reported_even_next_to_other_errors() -> None:
    errors = refused(
        binding("vt-acme-1", "00:50:56:00:65:03", "10.9.9.9"),
        binding("vt-acme-2", "00:50:56:00:65:03", "10.210.0.12"),
    )
    assert "ports vt-acme-1 and vt-acme-2 both claim MAC 00:50:56:00:65:03" in errors
    assert len(errors) == 2


def test_every_field_is_checked() -> None:
    errors = refused(
        {"port": "vt-1", "tenant": "bad tenant", "mac": "01:00:5e:00:00:01", "ip": "x", "network": "10.0.0.1/24"},
        {"port": "this-name-is-far-too-long", "mac": "00:50:56:00:00:01"},
        {"tenant": "acme"},
        binding("vt-2", "00:50:56:00:65:09", "10.210.0.9", vlan=5000),
        arp_rate=0,
        violation="explode",
    )
    text = "\n".join(errors)
    assert "port vt-1: tenant 'bad tenant'" in text
    assert "port vt-1: mac 01:00:5e:00:00:01 is not a unicast address" in text
    assert "port vt-1: ip: 'x' is not an IPv4 address" in text
    assert "port vt-1: network: 10.0.0.1/24 has host bits set (the network is 10.0.0.0/24)" in text
    assert "port this-name-is-far-too-long:" in text
    assert "binding #3 (tenant acme): no port given" in text
    assert "port vt-2: vlan 5000 is outside 1-4094" in text
    assert "arp_rate 0" in text
    assert "violation 'explode'" in text


def test_missing_fields_are_required_unless_deleting() -> None:
    assert refused({"port": "vt-1"}) == [
        "port vt-1: tenant is required",
        "port vt-1: mac is required",
        "port vt-1: ip is required",
        "port vt-1: network is required",
    ]
    assert build({"port": "vt-1"}, complete=False).bindings == (Binding("vt-1"),)


def test_a_port_given_twice_or_also_an_uplink() -> None:
    errors = refused(
        binding("vt-1", "00:50:56:00:65:03", "10.210.0.11"),
        binding("vt-1", "00:50:56:00:65:05", "10.210.0.12"),
        uplinks=["vt-1"],
    )
    assert errors == ["port vt-1 is given twice", "port vt-1 is both a tenant port and a trusted uplink"]


# --------------------------------------------------------------------------- states

A1 = Binding("p1", "00:50:56:00:65:03", "10.210.0.11", "acme", "10.210.0.0/24", 210)
A2 = Binding("p2", "00:50:56:00:65:05", "10.210.0.12", "acme", "10.210.0.0/24", 210)
G1 = Binding("p3", "00:50:56:00:66:03", "10.220.0.11", "globex", "10.220.0.0/24", 220)
HAVE = LockConfig(bindings=(A1, A2, G1), uplinks=("up1",))


def test_merged_adds_and_updates_by_port() -> None:
    moved = Binding("p2", "00:50:56:00:65:09", "10.210.0.19", "acme", "10.210.0.0/24", 210)
    after = desired(HAVE, LockConfig(bindings=(moved,), uplinks=("up2",)), "merged")
    assert after.bindings == (A1, moved, G1)
    assert after.uplinks == ("up1", "up2")


def test_replaced_is_per_tenant() -> None:
    after = desired(HAVE, LockConfig(bindings=(A1,)), "replaced")
    assert after.bindings == (A1, G1)


def test_overridden_is_exactly_the_config() -> None:
    assert desired(HAVE, LockConfig(bindings=(G1,)), "overridden").bindings == (G1,)


def test_deleted_by_tenant_port_or_everything() -> None:
    assert desired(HAVE, LockConfig(tenants=("acme",)), "deleted").bindings == (G1,)
    assert desired(HAVE, LockConfig(bindings=(Binding("p1"),)), "deleted").bindings == (A2, G1)
    everything = desired(HAVE, LockConfig(), "deleted")
    assert everything.bindings == () and everything.uplinks == ("up1",)
    assert desired(HAVE, LockConfig(uplinks=("up1",)), "deleted").uplinks == ()


def test_a_merge_that_collides_with_what_is_there_is_refused() -> None:
    thief = Binding("p9", A1.mac, "10.210.0.99", "initech", "10.210.0.0/24", 210)
    with pytest.raises(BindingError, match="ports p1 and p9 both claim MAC"):
        check(desired(HAVE, LockConfig(bindings=(thief,)), "merged"))


def test_changes_and_diff_text() -> None:
    after = desired(HAVE, LockConfig(bindings=(A1,)), "replaced")
    added, removed = changes(HAVE, after)
    assert added == [] and [b["port"] for b in removed] == ["p2"]
    text = after.describe("ios")
    assert "binding: p1 00:50:56:00:65:03 10.210.0.11 tenant=acme network=10.210.0.0/24 vlan=210" in text
    assert "uplinks: up1" in text
    assert "uplinks" not in after.describe("linux_bridge")
    assert after.as_dict("linux_bridge") == {"bindings": [A1.as_dict(), G1.as_dict()], "arp_rate": 15}
    with pytest.raises(ValueError, match="unknown state"):
        desired(HAVE, HAVE, "purged")

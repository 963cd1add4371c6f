"""Cisco IOS ARP lock: render -> parse round trips per feature, and the commands of every state.

No IOS device can run on this machine, so what a device would do is not tested here: the push
logic is tested as what it is, pure command generation from a "before" running-config (the text
``show running-config`` prints, defaults omitted as IOS omits them) and the wanted bindings.  The
module's device path (network_cli ``get_config`` / ``edit_config``) is the cisco.ios one.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ansible_collections.tenantry.msp.plugins.module_utils._switch import ios
from ansible_collections.tenantry.msp.plugins.module_utils._switch.bindings import (
    Binding,
    BindingError,
    LockConfig,
    build_config,
    desired,
)
from ansible_collections.tenantry.msp.plugins.module_utils._switch.ios_templates import (
    FEATURES,
    PARSERS,
    interface_name,
    parsers,
)

ACME_1 = {
    "tenant": "acme",
    "port": "Gi1/0/10",
    "mac": "00:50:56:00:65:03",
    "ip": "10.210.0.11",
    "network": "10.210.0.0/24",
    "vlan": 210,
}
ACME_2 = {
    "tenant": "acme",
    "port": "GigabitEthernet1/0/11",
    "mac": "0050.5600.6505",
    "ip": "10.210.0.12",
    "network": "10.210.0.0/24",
    "vlan": 210,
}
GLOBEX_1 = {
    "tenant": "globex",
    "port": "Gi1/0/20",
    "mac": "00-50-56-00-66-03",
    "ip": "10.220.0.11",
    "network": "10.220.0.0/24",
    "vlan": 220,
}
UPLINK = "GigabitEthernet1/0/48"

# What IOS prints once the lock for ACME_1, ACME_2 and GLOBEX_1 is in place: defaults (maximum 1,
# limit rate 15) are not shown, source bindings use short interface names, filters have two spaces.
RUNNING = """\
!
version 15.2
hostname access-sw1
!
ip dhcp snooping vlan 210,220
no ip dhcp snooping information option
ip dhcp snooping
ip arp inspection vlan 210,220
ip arp inspection filter TENANTRY-ARP-V210 vlan  210 static
ip arp inspection filter TENANTRY-ARP-V220 vlan  220 static
!
arp access-list TENANTRY-ARP-V210
 permit ip host 10.210.0.11 mac host 0050.5600.6503
 permit ip host 10.210.0.12 mac host 0050.5600.6505
arp access-list TENANTRY-ARP-V220
 permit ip host 10.220.0.11 mac host 0050.5600.6603
!
interface GigabitEthernet1/0/1
 description printer
 switchport access vlan 10
 switchport mode access
 switchport port-security
 switchport port-security mac-address 0011.2233.4455
!
interface GigabitEthernet1/0/10
 description tenantry tenant=acme network=10.210.0.0/24
 switchport access vlan 210
 switchport mode access
 switchport port-security violation restrict
 switchport port-security mac-address 0050.5600.6503
 switchport port-security
 ip verify source port-security
 spanning-tree portfast
!
interface GigabitEthernet1/0/11
 description tenantry tenant=acme network=10.210.0.0/24
 switchport access vlan 210
 switchport mode access
 switchport port-security violation restrict
 switchport port-security mac-address 0050.5600.6505
 switchport port-security
 ip verify source port-security
!
interface GigabitEthernet1/0/20
 description tenantry tenant=globex network=10.220.0.0/24
 switchport access vlan 220
 switchport mode access
 switchport port-security violation restrict
 switchport port-security mac-address 0050.5600.6603
 switchport port-security
 ip verify source port-security
!
interface GigabitEthernet1/0/48
 description uplink to core
 switchport mode trunk
 ip arp inspection trust
 ip dhcp snooping trust
!
interface Vlan1
 no ip address
!
ip source binding 0050.5600.6503 vlan 210 10.210.0.11 interface Gi1/0/10
ip source binding 0050.5600.6505 vlan 210 10.210.0.12 interface Gi1/0/11
ip source binding 0050.5600.6603 vlan 220 10.220.0.11 interface Gi1/0/20
!
end
"""


def config(*bindings: dict[str, Any], complete: bool = True, **settings: Any) -> LockConfig:
    raw: dict[str, Any] = {"bindings": list(bindings), "uplinks": [UPLINK]}
    raw.update(settings)
    return build_config(raw, port_name=interface_name, require_vlan=True, complete=complete)


FULL = config(ACME_1, ACME_2, GLOBEX_1)


def test_interface_names_normalise() -> None:
    assert interface_name("Gi1/0/10") == "GigabitEthernet1/0/10"
    assert interface_name("gi 1/0/10") == "GigabitEthernet1/0/10"
    assert interface_name("Te1/1/1") == "TenGigabitEthernet1/1/1"
    assert interface_name("Tw1/0/1") == "TwoGigabitEthernet1/0/1"
    assert interface_name("Twe1/0/1") == "TwentyFiveGigE1/0/1"
    assert interface_name("Fa0/1") == "FastEthernet0/1"
    assert interface_name("Po12") == "Port-channel12"
    with pytest.raises(ValueError, match="not an IOS"):
        interface_name("eth0/x")


# --------------------------------------------------------------------------- round trips


def test_rendered_parses_back_to_the_same_bindings() -> None:
    rendered = ios.render(FULL)
    assert ios.to_config(ios.parse_running_config("\n".join(rendered))) == FULL


@pytest.mark.parametrize("settings", [{"violation": "shutdown"}, {"arp_rate": 100}, {"source_guard": "mac-check"}])
def test_round_trip_keeps_the_settings(settings: dict[str, Any]) -> None:
    wanted = config(ACME_1, **settings)
    assert ios.to_config(ios.parse_running_config("\n".join(ios.render(wanted)))) == wanted


def _feature_only(device: ios.Device, feature: str) -> ios.Device:
    """The device data with only the keys one feature's parsers own."""
    keys = {p.key for p in PARSERS if p.feature == feature}
    return {
        "global": {k: v for k, v in device["global"].items() if k in keys},
        "interfaces": {
            n: {k: v for k, v in d.items() if k in keys}
            for n, d in device["interfaces"].items()
            if any(k in keys for k in d)
        },
        "acls": {n: d for n, d in device["acls"].items() if "entries" in keys},
    }


@pytest.mark.parametrize("feature", FEATURES)
def test_each_feature_round_trips(feature: str) -> None:
    """Template then parser of one feature alone gives back exactly that feature's data."""
    want = _feature_only(ios.build_want(ios.empty_device(), LockConfig(), FULL), feature)
    assert want["global"] or want["interfaces"], "the feature renders something"
    lines = ios.commands(ios.empty_device(), want, explicit=True)
    assert lines
    parsed = ios.parse_running_config("\n".join(lines))
    assert _feature_only(parsed, feature) == want
    # nothing of another feature was rendered
    others = {p.key for p in PARSERS if p.feature != feature}
    assert not any(k in others for d in parsed["interfaces"].values() for k in d)
    assert not any(k in others for k in parsed["global"])


def test_every_parser_renders_what_it_reads() -> None:
    samples = {
        "description": "tenantry tenant=acme network=10.210.0.0/24",
        "mode": "access",
        "access_vlan": 210,
        "port_security": True,
        "port_security_maximum": 1,
        "port_security_violation": "restrict",
        "port_security_macs": "00:50:56:00:65:03",
        "dhcp_snooping": True,
        "dhcp_snooping_vlans": 210,
        "dhcp_snooping_trust": True,
        "entries": ("10.210.0.11", "00:50:56:00:65:03"),
        "arp_inspection_filters": ("TENANTRY-ARP-V210", 210, True),
        "arp_inspection_vlans": 210,
        "arp_inspection_trust": True,
        "arp_inspection_limit": 15,
        "source_bindings": ("00:50:56:00:65:03", 210, "10.210.0.11", "GigabitEthernet1/0/10"),
        "ip_verify_source": "port-security",
    }
    for parser in PARSERS:
        line = parser.render(samples[parser.key])
        match = parser.getval.match(line)
        assert match, (parser.key, line)
        value = parser.value(match)
        assert (value if parser.kind != "set" else value[0]) == samples[parser.key], parser.key


def test_ios_defaults_are_read_as_defaults() -> None:
    device = ios.parse_running_config(RUNNING)
    port = device["interfaces"]["GigabitEthernet1/0/10"]
    assert "port_security_maximum" not in port
    assert ios.effective(port, "port_security_maximum") == 1
    assert ios.effective(port, "arp_inspection_limit") == 15
    uplink = device["interfaces"][UPLINK]
    assert ios.effective(uplink, "arp_inspection_limit") == 0  # trusted: no limit


def test_running_config_parses_into_bindings() -> None:
    parsed = ios.to_config(ios.parse_running_config(RUNNING))
    assert parsed == FULL
    # the printer's port-security has no tenantry mark: not a binding, and not an uplink either
    assert "GigabitEthernet1/0/1" not in parsed.by_port()
    assert parsed.uplinks == (UPLINK,)


# --------------------------------------------------------------------------- rendered


def test_rendered_has_every_feature_in_a_safe_order() -> None:
    lines = ios.render(config(ACME_1))
    for expected in [
        "interface GigabitEthernet1/0/10",
        "description tenantry tenant=acme network=10.210.0.0/24",
        "switchport mode access",
        "switchport access vlan 210",
        "switchport port-security",
        "switchport port-security maximum 1",
        "switchport port-security violation restrict",
        "switchport port-security mac-address 0050.5600.6503",
        "ip arp inspection limit rate 15",
        "ip verify source port-security",
        "ip dhcp snooping",
        "ip dhcp snooping vlan 210",
        "ip arp inspection vlan 210",
        "arp access-list TENANTRY-ARP-V210",
        "permit ip host 10.210.0.11 mac host 0050.5600.6503",
        "ip arp inspection filter TENANTRY-ARP-V210 vlan 210 static",
        "ip source binding 0050.5600.6503 vlan 210 10.210.0.11 interface GigabitEthernet1/0/10",
        "interface GigabitEthernet1/0/48",
        "ip dhcp snooping trust",
        "ip arp inspection trust",
    ]:
        assert expected in lines, expected
    pos = lines.index
    # trust and the access list exist before the VLAN is inspected; the source binding before the guard
    assert pos("ip arp inspection trust") < pos("ip arp inspection vlan 210")
    assert pos("permit ip host 10.210.0.11 mac host 0050.5600.6503") < pos(
        "ip arp inspection filter TENANTRY-ARP-V210 vlan 210 static"
    )
    assert pos("ip arp inspection filter TENANTRY-ARP-V210 vlan 210 static") < pos("ip arp inspection vlan 210")
    assert pos("ip source binding 0050.5600.6503 vlan 210 10.210.0.11 interface GigabitEthernet1/0/10") < pos(
        "ip verify source port-security"
    )
    assert pos("switchport port-security") < pos("switchport port-security mac-address 0050.5600.6503")


def test_violation_shutdown_and_rate() -> None:
    lines = ios.render(config(ACME_1, violation="shutdown", arp_rate=30, source_guard="mac-check"))
    assert "switchport port-security violation shutdown" in lines
    assert "ip arp inspection limit rate 30" in lines
    assert "ip verify source mac-check" in lines


# --------------------------------------------------------------------------- states against a "before"


def test_same_config_twice_sends_nothing() -> None:
    for state in ("merged", "replaced", "overridden"):
        lines, before, after = ios.plan(RUNNING, FULL, state)
        assert lines == [], state
        assert before == after == FULL


def test_merged_adds_one_port_and_touches_nothing_else() -> None:
    new = dict(ACME_1, port="Gi1/0/12", mac="00:50:56:00:65:07", ip="10.210.0.13")
    lines, before, after = ios.plan(RUNNING, config(new), "merged")
    assert "interface GigabitEthernet1/0/12" in lines
    assert not any(line.startswith("no ") for line in lines)
    assert lines[:2] == ["arp access-list TENANTRY-ARP-V210", "permit ip host 10.210.0.13 mac host 0050.5600.6507"]
    assert "ip source binding 0050.5600.6507 vlan 210 10.210.0.13 interface GigabitEthernet1/0/12" in lines
    touched = [line for line in lines if line.startswith("interface ")]
    assert touched == ["interface GigabitEthernet1/0/12"]
    assert len(after.bindings) == len(before.bindings) + 1
    # VLAN 210 is inspected already: not enabled again
    assert "ip arp inspection vlan 210" not in lines


def test_merged_mac_change_removes_the_old_mac_first() -> None:
    moved = dict(ACME_1, mac="00:50:56:00:65:99")
    lines, _, after = ios.plan(RUNNING, config(moved), "merged")
    block = lines[lines.index("interface GigabitEthernet1/0/10") :]
    assert block.index("no switchport port-security mac-address 0050.5600.6503") < block.index(
        "switchport port-security mac-address 0050.5600.6599"
    )
    assert "no ip source binding 0050.5600.6503 vlan 210 10.210.0.11 interface GigabitEthernet1/0/10" in lines
    assert "no permit ip host 10.210.0.11 mac host 0050.5600.6503" in lines
    assert after.by_port()["GigabitEthernet1/0/10"].mac == "00:50:56:00:65:99"


def test_merged_changes_a_setting_on_every_port() -> None:
    lines, _, after = ios.plan(RUNNING, config(ACME_1, violation="shutdown"), "merged")
    assert lines.count("switchport port-security violation shutdown") == 3
    assert after.violation == "shutdown"


def test_replaced_gives_the_tenant_exactly_its_ports() -> None:
    lines, _, after = ios.plan(RUNNING, config(ACME_1), "replaced")
    # ACME_2's port is unlocked, globex untouched
    block = lines[lines.index("interface GigabitEthernet1/0/11") :]
    for gone in (
        "no ip verify source",
        "no switchport port-security mac-address 0050.5600.6505",
        "no switchport port-security",
        "no switchport access vlan",
        "no description",
    ):
        assert gone in block
    assert "interface GigabitEthernet1/0/20" not in lines
    assert "no permit ip host 10.210.0.12 mac host 0050.5600.6505" in lines
    assert sorted(after.by_port()) == ["GigabitEthernet1/0/10", "GigabitEthernet1/0/20"]
    # VLAN 210 still has a tenant port: it stays inspected
    assert "no ip arp inspection vlan 210" not in lines


def test_overridden_unlocks_other_tenants_and_untrusts_unlisted_uplinks() -> None:
    wanted = build_config(
        {"bindings": [ACME_1, ACME_2], "uplinks": ["Gi1/0/47"]}, port_name=interface_name, require_vlan=True
    )
    lines, _, after = ios.plan(RUNNING, wanted, "overridden")
    assert "no ip arp inspection vlan 220" in lines
    assert "no ip dhcp snooping vlan 220" in lines
    assert "no arp access-list TENANTRY-ARP-V220" in lines
    # removal order: stop inspecting, then drop the filter, then the list, untrust last
    assert lines.index("no ip arp inspection vlan 220") < lines.index(
        "no ip arp inspection filter TENANTRY-ARP-V220 vlan 220"
    )
    assert lines.index("no ip arp inspection filter TENANTRY-ARP-V220 vlan 220") < lines.index(
        "no arp access-list TENANTRY-ARP-V220"
    )
    assert lines[-3:] == ["interface GigabitEthernet1/0/48", "no ip arp inspection trust", "no ip dhcp snooping trust"]
    # the new uplink is trusted first of all
    assert lines[:3] == ["interface GigabitEthernet1/0/47", "ip dhcp snooping trust", "ip arp inspection trust"]
    assert after.uplinks == ("GigabitEthernet1/0/47",)
    assert "interface GigabitEthernet1/0/1" not in lines  # the printer is not ours


def test_deleted_by_tenant_removes_only_its_ports() -> None:
    wanted = build_config({"tenants": ["globex"]}, port_name=interface_name, require_vlan=True, complete=False)
    lines, before, after = ios.plan(RUNNING, wanted, "deleted")
    assert [line for line in lines if line.startswith("interface ")] == ["interface GigabitEthernet1/0/20"]
    assert "no ip source binding 0050.5600.6603 vlan 220 10.220.0.11 interface GigabitEthernet1/0/20" in lines
    assert "no arp access-list TENANTRY-ARP-V220" in lines
    assert sorted(after.by_port()) == ["GigabitEthernet1/0/10", "GigabitEthernet1/0/11"]
    assert after.uplinks == before.uplinks


def test_deleted_by_port() -> None:
    wanted = build_config(
        {"bindings": [{"port": "Gi1/0/11"}]}, port_name=interface_name, require_vlan=True, complete=False
    )
    lines, _, after = ios.plan(RUNNING, wanted, "deleted")
    assert [line for line in lines if line.startswith("interface ")] == ["interface GigabitEthernet1/0/11"]
    assert "GigabitEthernet1/0/11" not in after.by_port()


def applied(running: str, wanted: LockConfig, state: str) -> str:
    """The running-config after the change, modelled: the wanted device data written out as config."""
    have = ios.parse_running_config(running)
    before = ios.to_config(have)
    want = ios.build_want(have, before, desired(before, wanted, state), lock=state != "deleted")
    return "\n".join(ios.commands(ios.empty_device(), want))


@pytest.mark.parametrize(
    ("state", "wanted"),
    [
        ("merged", config(dict(ACME_1, mac="00:50:56:00:65:99"), violation="shutdown")),
        ("replaced", config(ACME_1)),
        ("overridden", config(GLOBEX_1)),
        ("deleted", build_config({"tenants": ["acme"]}, port_name=interface_name, require_vlan=True, complete=False)),
        ("deleted", LockConfig()),
    ],
)
def test_a_second_run_after_the_change_sends_nothing(state: str, wanted: LockConfig) -> None:
    first, _, after = ios.plan(RUNNING, wanted, state)
    assert first
    second, before, _ = ios.plan(applied(RUNNING, wanted, state), wanted, state)
    assert second == []
    assert before == after


def test_deleted_everything_leaves_nothing_of_the_lock() -> None:
    lines, _, after = ios.plan(RUNNING, LockConfig(), "deleted")
    assert after.bindings == ()
    assert all(line.startswith(("no ", "interface ")) for line in lines)
    left = ios.parse_running_config(applied(RUNNING, LockConfig(), "deleted"))
    assert not [name for name in left["acls"] if name.startswith(ios.ACL_PREFIX)]
    assert not left["global"].get("source_bindings")
    assert not left["global"].get("arp_inspection_vlans")
    # the printer's port security is not the lock's; the uplinks stay trusted
    assert left["interfaces"]["GigabitEthernet1/0/1"]["port_security_macs"] == {"00:11:22:33:44:55"}
    assert left["interfaces"][UPLINK]["dhcp_snooping_trust"] is True


def test_a_binding_that_collides_with_the_switch_is_refused() -> None:
    thief = dict(ACME_1, port="Gi1/0/30", tenant="initech", ip="10.210.0.40")  # ACME_1's MAC on another port
    with pytest.raises(BindingError) as err:
        ios.plan(RUNNING, config(thief), "merged")
    assert "ports GigabitEthernet1/0/10 and GigabitEthernet1/0/30 both claim MAC 00:50:56:00:65:03" in str(err.value)


def test_parse_accepts_flat_command_lists_and_foreign_lines() -> None:
    device = ios.parse_running_config(
        "interface Gi1/0/5\nswitchport port-security\nip dhcp snooping vlan 5-7\n"
        " this sub-command is ignored\narp access-list OTHER\n permit ip any mac any\n"
    )
    assert device["interfaces"]["GigabitEthernet1/0/5"] == {"port_security": True}
    assert device["global"]["dhcp_snooping_vlans"] == {5, 6, 7}
    assert device["acls"]["OTHER"] == {}


def test_want_device_is_not_shared_with_have() -> None:
    have = ios.parse_running_config(RUNNING)
    snapshot = copy.deepcopy(have)
    ios.build_want(have, ios.to_config(have), config(ACME_1))
    assert have == snapshot


def test_parsers_cover_every_scope() -> None:
    assert {p.scope for p in PARSERS} == {"global", "interface", "acl"}
    assert parsers("acl")[0].key == "entries"
    assert Binding(port="x").describe() == "x - -"

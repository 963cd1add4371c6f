"""DHCP reservations: validation naming the host, dnsmasq and Kea rendering, checked by the servers themselves."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.tenantry.msp.plugins.filter.dhcp import FilterModule
from ansible_collections.tenantry.msp.plugins.module_utils._dhcp import (
    ReservationError,
    dnsmasq_lines,
    kea_dhcp4_config,
    validate,
)

SETTINGS: dict[str, Any] = {
    "interface": "eth1",
    "subnet": "10.0.16.0/20",
    "gateway": "10.0.16.1",
    "dns_servers": ["10.0.16.2", "10.0.16.3"],
    "domain": "mgmt.provider.example",
    "lease_time": 7200,
}
TARGETS = [
    {"hostname": "globex-target-01", "mac": "0050.5600.6602", "ip": "10.0.17.12"},
    {"hostname": "acme-target-01", "mac": "00:50:56:00:65:02", "ip": "10.0.16.12"},
]


def refused(reservations: list[dict[str, Any]], **settings: Any) -> list[str]:
    with pytest.raises(ReservationError) as err:
        validate(reservations, {**SETTINGS, **settings})
    return err.value.errors


def test_reservations_are_normalised_and_sorted_by_ip() -> None:
    reserved, conf = validate(TARGETS, SETTINGS)
    assert [r.as_dict() for r in reserved] == [
        {"hostname": "acme-target-01", "mac": "00:50:56:00:65:02", "ip": "10.0.16.12"},
        {"hostname": "globex-target-01", "mac": "00:50:56:00:66:02", "ip": "10.0.17.12"},
    ]
    assert conf.netmask == "255.255.240.0" and conf.network == "10.0.16.0"


def test_ip_outside_the_subnet_names_the_host() -> None:
    assert refused([{"hostname": "acme-target-01", "mac": "00:50:56:00:65:02", "ip": "10.0.1.12"}]) == [
        "reservation acme-target-01: ip 10.0.1.12 is outside the subnet 10.0.16.0/20"
    ]


def test_duplicates_name_both_hosts() -> None:
    errors = refused(
        [
            {"hostname": "acme-target-01", "mac": "00:50:56:00:65:02", "ip": "10.0.16.12"},
            {"hostname": "acme-target-02", "mac": "00:50:56:00:65:02", "ip": "10.0.16.12"},
            {"hostname": "ACME-TARGET-01", "mac": "00:50:56:00:65:04", "ip": "10.0.16.14"},
        ]
    )
    assert errors == [
        "reservation acme-target-02: MAC 00:50:56:00:65:02 is already reserved for acme-target-01",
        "reservation acme-target-02: ip 10.0.16.12 is already reserved for acme-target-01",
        "reservation ACME-TARGET-01: hostname is given twice",
    ]


def test_every_field_and_setting_is_checked() -> None:
    errors = refused(
        [
            {"hostname": "bad_name", "mac": "01:00:5e:00:00:01", "ip": "10.0.16.1"},
            {"hostname": "t2", "mac": "00:50:56", "ip": "10.0.31.255"},
        ],
        interface="",
        lease_time=30,
        dns_servers=["nope"],
        gateway="10.9.9.9",
    )
    text = "\n".join(errors)
    for expected in (
        "interface '' is not a Linux interface name",
        "gateway 10.9.9.9 is outside the subnet 10.0.16.0/20",
        "dns server 'nope' is not an IPv4 address",
        "lease_time 30: give seconds, at least 120",
        "reservation bad_name: hostname 'bad_name' is not a valid host name",
        "reservation bad_name: mac 01:00:5e:00:00:01 is not a unicast address",
        "reservation t2: mac: '00:50:56' is not a MAC address",
        "reservation t2: ip 10.0.31.255 is the network or broadcast address of 10.0.16.0/20",
    ):
        assert expected in text
    assert refused([], subnet="10.0.16.1/20") == ["subnet 10.0.16.1/20 has host bits set (the network is 10.0.16.0/20)"]
    assert refused([], subnet="not-a-net") == ["subnet 'not-a-net' is not an IPv4 network in CIDR notation"]


def test_the_gateway_cannot_be_reserved() -> None:
    assert refused([{"hostname": "t", "mac": "00:50:56:00:65:02", "ip": "10.0.16.1"}]) == [
        "reservation t: ip 10.0.16.1 is the gateway"
    ]


def test_dnsmasq_is_reservation_only() -> None:
    lines = dnsmasq_lines(TARGETS, {**SETTINGS, "lease_file": "/tmp/leases"})
    assert lines == [
        "port=0",
        "interface=eth1",
        "bind-dynamic",
        "dhcp-authoritative",
        "dhcp-range=set:tenantry,10.0.16.0,static,255.255.240.0,7200s",
        "dhcp-option=tag:tenantry,option:router,10.0.16.1",
        "dhcp-option=tag:tenantry,option:dns-server,10.0.16.2,10.0.16.3",
        "dhcp-option=tag:tenantry,option:domain-name,mgmt.provider.example",
        "dhcp-leasefile=/tmp/leases",
        "dhcp-host=00:50:56:00:65:02,10.0.16.12,acme-target-01,7200s",
        "dhcp-host=00:50:56:00:66:02,10.0.17.12,globex-target-01,7200s",
    ]
    assert "port=0" not in dnsmasq_lines(TARGETS, SETTINGS, dns=True)


def test_kea_has_no_pool_only_reservations() -> None:
    dhcp4 = kea_dhcp4_config(TARGETS, SETTINGS)["Dhcp4"]
    subnet = dhcp4["subnet4"][0]
    assert subnet["pools"] == []
    assert subnet["subnet"] == "10.0.16.0/20"
    assert subnet["reservations"][0] == {
        "hw-address": "00:50:56:00:65:02",
        "ip-address": "10.0.16.12",
        "hostname": "acme-target-01",
    }
    assert {o["name"]: o["data"] for o in subnet["option-data"]} == {
        "routers": "10.0.16.1",
        "domain-name-servers": "10.0.16.2, 10.0.16.3",
        "domain-name": "mgmt.provider.example",
    }
    assert dhcp4["interfaces-config"]["interfaces"] == ["eth1"]
    assert dhcp4["valid-lifetime"] == 7200
    assert "control-socket" not in dhcp4


def test_filters_refuse_with_the_hosts_named() -> None:
    from ansible.errors import AnsibleFilterError

    filters = FilterModule().filters()
    assert filters["dhcp_reservations"](TARGETS, SETTINGS)[0]["hostname"] == "acme-target-01"
    assert filters["dhcp_dnsmasq_config"](TARGETS, SETTINGS).endswith("globex-target-01,7200s\n")
    assert filters["dhcp_kea_config"](TARGETS, {**SETTINGS, "lease_time": "600"})["Dhcp4"]["valid-lifetime"] == 600
    with pytest.raises(AnsibleFilterError, match=r"reservation t: ip 10\.9\.0\.1 is outside the subnet"):
        filters["dhcp_dnsmasq_config"]([{"hostname": "t", "mac": "00:50:56:00:65:02", "ip": "10.9.0.1"}], SETTINGS)


# --------------------------------------------------------------------------- the servers check what we render


@pytest.mark.skipif(not shutil.which("dnsmasq"), reason="dnsmasq is not installed (lab/apt-packages.txt)")
def test_dnsmasq_accepts_the_configuration(tmp_path: Path) -> None:
    conf = tmp_path / "dnsmasq.conf"
    conf.write_text("# Ansible managed\n" + "\n".join(dnsmasq_lines(TARGETS, SETTINGS)) + "\n")
    proc = subprocess.run(["dnsmasq", "--test", f"--conf-file={conf}"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "syntax check OK" in proc.stderr


@pytest.mark.skipif(not shutil.which("kea-dhcp4"), reason="kea-dhcp4 is not installed (lab/apt-packages.txt)")
def test_kea_accepts_the_configuration(tmp_path: Path) -> None:
    conf = tmp_path / "kea-dhcp4.conf"
    # kea-dhcp4 -t also checks that the interface exists on this host
    settings = {
        **SETTINGS,
        "interface": "lo",
        "lease_file": str(tmp_path / "leases.csv"),
        "control_socket": str(tmp_path / "ctrl"),
    }
    conf.write_text("# Ansible managed\n" + json.dumps(kea_dhcp4_config(TARGETS, settings), indent=2) + "\n")
    proc = subprocess.run(["kea-dhcp4", "-t", str(conf)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr

"""The firewall follower (tenantry.director.firewall): validation of the published ports and the
port lists it writes for each backend.  The nftables define is checked by the real ``nft -c``;
systemctl, firewall-cmd and ufw cannot run here and are recorded instead (said per test)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from tenantry.director import firewall
from tenantry.director.firewall import FirewallError

SERVICE_XML = """<?xml version="1.0" encoding="utf-8"?>
<!--
Ansible managed
-->
<service>
  <short>tenantry director</short>
  <description>Ports of the tenantry director (managed by the tenantry.msp.director role).</description>
  <port protocol="tcp" port="4443"/>
  <port protocol="tcp" port="6702"/>
</service>
"""
UFW_PROFILE = """; Ansible managed
[tenantry-director]
title=tenantry director
description=Ports of the tenantry director (managed by the tenantry.msp.director role)
ports=4443,6702/tcp
"""


def _published(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "ports.json"
    path.write_text(json.dumps(data))
    return path


def test_published_ports_are_validated(tmp_path: Path) -> None:
    firewall.publish(tmp_path / "ports.json", 4443, [7702, 6702, 7702])
    assert firewall.read_ports(tmp_path / "ports.json") == [4443, 6702, 7702]
    for bad in (
        {"setup_port": 0, "uplink_ports": []},
        {"setup_port": "4443", "uplink_ports": []},
        {"setup_port": 4443, "uplink_ports": [True]},
        {"setup_port": 4443},
        {"setup_port": 4443, "uplink_ports": list(range(2000, 2020))},
        ["nope"],
    ):
        with pytest.raises(FirewallError):
            firewall.read_ports(_published(tmp_path, bad))
    with pytest.raises(FirewallError, match="cannot read"):
        firewall.read_ports(tmp_path / "missing.json")


def test_firewalld_and_ufw_get_exactly_the_published_ports() -> None:
    xml = firewall.firewalld_service(SERVICE_XML, [4443, 7702])
    assert '<port protocol="tcp" port="7702"/>' in xml and 'port="6702"' not in xml
    assert xml.index('port="7702"') < xml.index("</service>") and "<short>tenantry director</short>" in xml
    assert firewall.firewalld_service(xml, [4443, 7702]) == xml  # no change: same text
    profile = firewall.ufw_profile(UFW_PROFILE, [4443, 7702])
    assert "ports=4443,7702/tcp" in profile and profile.count("ports=") == 1
    with pytest.raises(FirewallError):
        firewall.ufw_profile("[tenantry-director]\n", [4443])


def test_apply_reloads_only_on_change_and_puts_the_old_file_back_when_the_reload_fails(tmp_path: Path) -> None:
    """firewall-cmd is not installed here: the commands are recorded, and one is made to fail."""
    target = tmp_path / "tenantry-director.xml"
    target.write_text(SERVICE_XML)
    calls: list[Sequence[str]] = []
    assert firewall.apply("firewalld", [4443, 6702], target, run=calls.append) is False
    assert calls == []
    assert firewall.apply("firewalld", [4443, 7702], target, run=calls.append) is True
    assert calls == [["firewall-cmd", "--reload"]] and 'port="7702"' in target.read_text()

    def broken(argv: Sequence[str]) -> None:
        raise FirewallError("reload failed")

    with pytest.raises(FirewallError):
        firewall.apply("firewalld", [4443, 8802], target, run=broken)
    assert 'port="7702"' in target.read_text() and 'port="8802"' not in target.read_text()
    with pytest.raises(FirewallError, match="director role first"):
        firewall.apply("ufw", [4443], tmp_path / "missing", run=calls.append)


@pytest.mark.skipif(shutil.which("nft") is None, reason="nft is not installed (lab/apt-packages.txt)")
def test_the_nftables_define_is_what_the_roles_rules_use(tmp_path: Path) -> None:
    """The define file feeds a drop-in like the role's; the real nft checks the result (-c, nothing loaded)."""
    define = tmp_path / "ports.d" / "director.nft"
    firewall.apply("nftables", [4443, 6702], define, run=lambda argv: None)
    table = tmp_path / "firewall.nft"
    table.write_text(
        f'include "{define.parent}/*.nft"\n'
        "table inet tnt_unit_test {\n chain input {\n  type filter hook input priority filter; policy accept;\n"
        '  tcp dport $DIRECTOR_PORTS accept comment "director"\n }\n}\n'
    )
    checked = subprocess.run(["nft", "-c", "-f", str(table)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    assert define.read_text() == "define DIRECTOR_PORTS = { 4443, 6702 }\n"


def test_the_peer_port_of_several_directors_is_published_and_read(tmp_path: Path) -> None:
    path = tmp_path / "ports.json"
    firewall.publish(path, 4443, [6702], 4444)
    assert json.loads(path.read_text()) == {"setup_port": 4443, "uplink_ports": [6702], "peer_port": 4444}
    assert firewall.read_ports(path) == [4443, 4444, 6702]
    firewall.publish(path, 4443, [6702])  # one Director: no peer port
    assert firewall.read_ports(path) == [4443, 6702]
    with pytest.raises(FirewallError):
        firewall.read_ports(_published(tmp_path, {"setup_port": 4443, "uplink_ports": [6702], "peer_port": 0}))


def test_a_change_published_while_applying_is_applied_too(tmp_path: Path) -> None:
    """The Director opens a new uplink port, then closes the old one while the firewall service runs: the
    path unit starts nothing for the second change, so the service reads the file again after applying."""
    ports_file = tmp_path / "ports.json"
    firewall.publish(ports_file, 4443, [6702, 7702])
    applied: list[list[int]] = []

    def apply_ports(ports: list[int]) -> bool:
        applied.append(ports)
        if len(applied) == 1:
            firewall.publish(ports_file, 4443, [7702])  # the old listener closed meanwhile
        return True

    ports, changed = firewall.follow(ports_file, apply_ports)
    assert applied == [[4443, 6702, 7702], [4443, 7702]]
    assert ports == [4443, 7702] and changed

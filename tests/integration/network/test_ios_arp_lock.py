"""tenantry.msp.ios_arp_lock through ansible-playbook: the states that need no switch, for real.

No IOS device can run on this machine; merged / replaced / overridden / deleted are tested as
command generation in tests/unit/plugins/module_utils/test_switch_ios.py, and the role test shows
the module reaching the switch over network_cli.
"""

from __future__ import annotations

from pathlib import Path

from support import run_module

MODULE = "tenantry.msp.ios_arp_lock"
CONFIG = {
    "uplinks": ["Gi1/0/48"],
    "violation": "shutdown",
    "arp_rate": 20,
    "bindings": [
        {"tenant": "acme", "port": "Gi1/0/10", "mac": "00:50:56:00:65:03", "ip": "10.210.0.11",
         "network": "10.210.0.0/24", "vlan": 210},
        {"tenant": "globex", "port": "Gi1/0/20", "mac": "0050.5600.6603", "ip": "10.220.0.11",
         "network": "10.220.0.0/24", "vlan": 220},
    ],
}  # fmt: skip


def test_rendered_then_parsed_gives_the_config_back(tmp_path: Path) -> None:
    rendered = run_module(tmp_path, MODULE, {"config": CONFIG, "state": "rendered"})
    assert rendered.rc == 0, rendered.stdout[-3000:]
    commands = rendered.result["rendered"]
    assert rendered.result["changed"] is False
    assert "switchport port-security violation shutdown" in commands
    assert "ip arp inspection limit rate 20" in commands

    parsed = run_module(tmp_path, MODULE, {"running_config": "\n".join(commands), "state": "parsed"})
    assert parsed.rc == 0, parsed.stdout[-3000:]
    data = parsed.result["parsed"]
    assert data["uplinks"] == ["GigabitEthernet1/0/48"]
    assert (data["violation"], data["arp_rate"], data["source_guard"]) == ("shutdown", 20, "port-security")
    assert data["bindings"] == [
        {"tenant": "acme", "port": "GigabitEthernet1/0/10", "mac": "00:50:56:00:65:03", "ip": "10.210.0.11",
         "network": "10.210.0.0/24", "vlan": 210},
        {"tenant": "globex", "port": "GigabitEthernet1/0/20", "mac": "00:50:56:00:66:03", "ip": "10.220.0.11",
         "network": "10.220.0.0/24", "vlan": 220},
    ]  # fmt: skip


def test_refused_bindings_name_the_ports(tmp_path: Path) -> None:
    bad = dict(CONFIG, bindings=[dict(b, mac="00:50:56:00:65:03") for b in CONFIG["bindings"]])
    run = run_module(tmp_path, MODULE, {"config": bad, "state": "rendered"})
    assert run.result["failed"] is True
    assert "ports GigabitEthernet1/0/10 and GigabitEthernet1/0/20 both claim MAC 00:50:56:00:65:03" in run.result["msg"]
    assert run.result["errors"] == [
        "ports GigabitEthernet1/0/10 and GigabitEthernet1/0/20 both claim MAC 00:50:56:00:65:03"
    ]


def test_device_states_need_network_cli(tmp_path: Path) -> None:
    run = run_module(tmp_path, MODULE, {"config": CONFIG, "state": "merged"})
    assert run.result["failed"] is True
    assert "ansible_connection=ansible.netcommon.network_cli" in run.result["msg"]

"""The switch_arp_lock role: linux_bridge applied for real in a lab namespace; bad input refused first.

No IOS switch can run on this machine: for backend ios the role is run up to the point where it
would connect (its controller-side checks run for real), see the last test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from netlab import NetLab, nft_tables, why_not_available
from support import PlaybookRun, run_playbook

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(bool(reason := why_not_available("nft")), reason=reason or ""),
]

TABLE = "lab_lock"
BINDING = {
    "tenant": "acme",
    "port": "vt-acme-1",
    "mac": "00:50:56:00:65:03",
    "ip": "10.210.0.11",
    "network": "10.210.0.0/24",
    "vlan": 210,
}


class Site:
    def __init__(self, netlab: NetLab, work: Path) -> None:
        self.work = work
        self.sw = netlab.netns("rsw")
        target = netlab.netns("ra1")
        netlab.bridge(self.sw)
        netlab.plug(self.sw, "br0", "vt-acme-1", target, mac=BINDING["mac"], address="10.210.0.11/24")

    def play(self, **role_vars: Any) -> PlaybookRun:
        role_vars = {
            "switch_arp_lock_backend": "linux_bridge",
            "switch_arp_lock_netns": self.sw,
            "switch_arp_lock_bridge": "br0",
            "switch_arp_lock_table": TABLE,
            "switch_arp_lock_install": False,
            "switch_arp_lock_bindings": [BINDING],
            **role_vars,
        }
        play = [{"name": "lock", "hosts": "localhost", "gather_facts": False,
                 "roles": [{"role": "tenantry.msp.switch_arp_lock", "vars": role_vars}]}]  # fmt: skip
        path = self.work / f"play-{len(list(self.work.glob('play-*.yml')))}.yml"
        path.write_text(json.dumps(play))
        return run_playbook(
            path, "-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable
        )

    def elements(self) -> str:
        return subprocess.run(
            ["ip", "netns", "exec", self.sw, "nft", "list", "set", "bridge", TABLE, "bindings"],
            capture_output=True,
            text=True,
        ).stdout


@pytest.fixture(scope="module")
def site(netlab: NetLab, tmp_path_factory: pytest.TempPathFactory) -> Site:
    return Site(netlab, tmp_path_factory.mktemp("switch-arp-lock-role"))


def failure(run: PlaybookRun) -> str:
    assert run.rc != 0, run.stdout[-2000:]
    failed = [r for r in run.results if r.get("failed")]
    return str(failed[-1].get("msg")) if failed else run.stdout + run.stderr


def test_role_applies_the_lock_once(site: Site) -> None:
    first, second = site.play(), site.play()
    assert first.rc == 0, first.stdout[-3000:]
    assert first.result["changed"] is True
    assert second.result["changed"] is False
    assert TABLE in nft_tables(site.sw)
    assert "00:50:56:00:65:03 . 10.210.0.11" in site.elements()


def test_unknown_backend_is_refused_before_anything(site: Site) -> None:
    message = failure(site.play(switch_arp_lock_backend="junos", switch_arp_lock_table="never_made"))
    assert "switch_arp_lock_backend" in message and "junos" in message
    assert "never_made" not in nft_tables(site.sw)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"ip": "10.9.0.5"}, "port vt-acme-1: ip 10.9.0.5 is outside the tenant network 10.210.0.0/24"),
        ({"port": "vt-acme-1/2"}, "port vt-acme-1/2:"),
    ],
)
def test_bad_binding_is_refused_before_anything(site: Site, change: dict[str, Any], expected: str) -> None:
    message = failure(site.play(switch_arp_lock_bindings=[dict(BINDING, **change)], switch_arp_lock_table="never_made"))
    assert expected in message
    assert "never_made" not in nft_tables(site.sw)


def test_two_ports_claiming_one_ip_name_both(site: Site) -> None:
    twin = dict(BINDING, port="vt-acme-2", mac="00:50:56:00:65:05")
    message = failure(site.play(switch_arp_lock_bindings=[BINDING, twin], switch_arp_lock_table="never_made"))
    assert "ports vt-acme-1 and vt-acme-2 both claim IP 10.210.0.11" in message


def test_shutdown_is_refused_on_a_bridge(site: Site) -> None:
    message = failure(site.play(switch_arp_lock_violation="shutdown"))
    assert "linux_bridge backend drops and counts" in message


def test_offboarding_removes_the_tenant(site: Site) -> None:
    run = site.play(switch_arp_lock_state="deleted", switch_arp_lock_tenants=["acme"], switch_arp_lock_bindings=[])
    assert run.rc == 0, run.stdout[-3000:]
    assert run.result["changed"] is True
    assert "10.210.0.11" not in site.elements()
    refused = failure(site.play(switch_arp_lock_state="deleted", switch_arp_lock_bindings=[]))
    assert "both are empty" in refused


def test_ios_backend_checks_on_the_controller_then_goes_to_the_switch(tmp_path: Path) -> None:
    """There is no IOS switch here: the play targets an unreachable one.  Bad bindings fail in the
    preflight (no connection attempted); good ones pass it and fail only when connecting."""
    inventory = tmp_path / "hosts.yml"
    switch = {
        "ansible_host": "127.0.0.1",
        "ansible_port": 9,
        "ansible_user": "nobody",
        "ansible_password": "x",
        "ansible_connection": "ansible.netcommon.network_cli",
        "ansible_network_os": "cisco.ios.ios",
        "ansible_command_timeout": 5,
        "ansible_connect_timeout": 5,
    }
    inventory.write_text(json.dumps({"all": {"hosts": {"sw1": switch}}}))
    role_vars = {
        "switch_arp_lock_backend": "ios",
        "switch_arp_lock_uplinks": ["Gi1/0/48"],
        "switch_arp_lock_bindings": [dict(BINDING, port="Gi1/0/10")],
    }

    def play(**extra: Any) -> PlaybookRun:
        path = tmp_path / f"play-{len(list(tmp_path.glob('play-*.yml')))}.yml"
        path.write_text(json.dumps([{"name": "ios", "hosts": "sw1", "gather_facts": False,
                                     "roles": [{"role": "tenantry.msp.switch_arp_lock",
                                                "vars": {**role_vars, **extra}}]}]))  # fmt: skip
        return run_playbook(path, "-i", str(inventory), "-e", "ansible_python_interpreter=" + sys.executable)

    bad = play(switch_arp_lock_bindings=[dict(BINDING, port="Gi1/0/10", ip="10.9.0.5")])
    assert "port GigabitEthernet1/0/10: ip 10.9.0.5 is outside the tenant network" in failure(bad)
    good = play()
    assert good.rc != 0
    rendered = next(r for r in good.results if "rendered" in r)
    assert "ip arp inspection filter TENANTRY-ARP-V210 vlan 210 static" in rendered["rendered"]
    # the module got as far as reading the running-config over network_cli
    assert good.results[-1]["action"] == "tenantry.msp.ios_arp_lock"
    assert "Talking to the switch failed (get_config)" in good.results[-1]["msg"]

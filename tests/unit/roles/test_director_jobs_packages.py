"""The Director's jobs virtualenv can run every playbook the console starts, playbooks/audit.yml included.

audit.yml and onboard_tenant.yml reach Cisco IOS switches (switch_arp_lock, backend ios) over
ansible.netcommon.network_cli, which needs an SSH library that ansible-core does not bring.
"""

from __future__ import annotations

import re

import yaml
from support import REPO

DEFAULTS = REPO / "roles" / "director" / "defaults" / "main.yml"


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_jobs_packages_hold_an_ssh_library_for_network_cli() -> None:
    packages = _names(yaml.safe_load(DEFAULTS.read_text())["director_jobs_packages"])
    assert {"ansible-core", "ansible-runner"} <= packages
    assert packages & {"ansible-pylibssh", "paramiko"}, sorted(packages)


def test_the_collection_needs_network_cli() -> None:
    """Why the SSH library is there: the IOS backend is the cisco.ios / network_cli one."""
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text())
    assert "ansible.netcommon" in galaxy["dependencies"]
    assert "ios_arp_lock" in (REPO / "roles" / "switch_arp_lock" / "tasks" / "configure_ios.yml").read_text()

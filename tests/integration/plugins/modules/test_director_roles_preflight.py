"""The director and transporter roles refuse bad input before anything changes, and choose the firewall by fact.

The roles run through ansible-playbook on localhost, limited to their preflight tags (which only read),
so nothing on this machine changes.  The full roles run in containers: molecule/ (make molecule).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import REPO, run_playbook

from tenantry.director.settings import ExpertSettings


def play(tmp_path: Path, role: str, variables: dict[str, Any], tags: str) -> Any:
    path = tmp_path / "play.yml"
    path.write_text(
        json.dumps(
            [
                {
                    "name": "preflight",
                    "hosts": "localhost",
                    "gather_facts": False,
                    "vars": variables,
                    "roles": [{"role": role}],
                }
            ]
        )
    )
    return run_playbook(path, "-i", "localhost,", "-c", "local", "--tags", tags)


def failure(run: Any) -> str:
    failed = [r for r in run.results if r.get("failed")]
    assert run.rc != 0 and failed, run.stdout[-2000:]
    # A looped check fails per item: the messages are the items'.
    items = [i.get("msg") for i in failed[0].get("results", []) if i.get("failed")]
    return " ".join(str(m) for m in items or [failed[0].get("msg")])


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"director_setup_port": 70000}, "director_setup_port is 70000: a TCP port is a number from 1 to 65535"),
        ({"director_uplink_port": 0}, "director_uplink_port is 0: a TCP port"),
        ({"director_uplink_port": 4443}, "director_setup_port and director_uplink_port are both 4443"),
        (
            {"director_expert_settings": {"heartbeat_interval": 5, "max_speed": 1}},
            "unknown Expert Setting(s) in director_expert_settings: max_speed. Allowed: heartbeat_interval",
        ),
        ({"director_expert_settings": {"uplink_port": 7702}}, "set the ports with director_setup_port"),
        ({"director_ca_cert": "-----BEGIN CERTIFICATE-----"}, "give both director_ca_cert and director_ca_key"),
        ({"director_api_host": "10.0.0.1"}, "director_api_host 10.0.0.1 is not one of director_server_names"),
        ({"director_listen_host": "10.0.0.5"}, "the Director listens on 10.0.0.5 only"),
        ({"director_firewall_sources": ["10.0.0.0/8", "my office"]}, "my office is not an address or network"),
        ({"director_tenants": [{"name": "Bad_Name"}]}, "needs a name (lower-case letters"),
        ({"director_tenants": [{"name": "a"}, {"name": "a"}]}, "names a tenant twice"),
        ({"director_database_url": "mysql://db/tenantry"}, "director_database_url must be a postgresql:// URL"),
        (
            {"director_database_url": "postgresql://tenantry:secret@db/tenantry"},
            "without a password (give it in director_database_password",
        ),
        (
            {"director_database_url": "postgresql://tenantry@db/tenantry", "director_peer_port": 6702},
            "director_peer_port 6702 must be a TCP port other than the setup and the uplink port",
        ),
    ],
)
def test_director_preflight_refuses(tmp_path: Path, variables: dict[str, Any], message: str) -> None:
    msg = failure(play(tmp_path, "tenantry.msp.director", variables, "director_preflight"))
    assert message in msg
    assert "Nothing was changed" in msg


def test_director_preflight_accepts_good_input(tmp_path: Path) -> None:
    run = play(
        tmp_path,
        "tenantry.msp.director",
        {
            "director_uplink_port": 7702,
            "director_expert_settings": {"heartbeat_interval": 5},
            "director_tenants": [{"name": "acme", "description": "Acme"}],
        },
        "director_preflight",
    )
    assert run.rc == 0, run.stdout[-2000:]


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({}, "not enrolled yet: the Transporter must enroll, and transporter_enrollment_key is empty"),
        ({"transporter_enrollment_key": "not-a-key"}, "transporter_enrollment_key is not an enrollment key"),
        # meta/argument_specs.yml refuses it first
        ({"transporter_mode": "vpn"}, "value of transporter_mode must be one of: uplink, direct_connect, got: vpn"),
        (
            {"transporter_mode": "direct_connect", "transporter_direct_connect_auth": "psk"},
            "transporter_direct_connect_auth psk needs transporter_direct_connect_psk",
        ),
        ({"transporter_direct_connect_port": 99999}, "transporter_direct_connect_port is 99999"),
        ({"transporter_allow": ["10.0.0.5"]}, "10.0.0.5 is not host:port"),
    ],
)
def test_transporter_preflight_refuses(tmp_path: Path, variables: dict[str, Any], message: str) -> None:
    variables = {"transporter_state_dir": str(tmp_path / "state"), **variables}
    run = play(tmp_path, "tenantry.msp.transporter", variables, "transporter_preflight")
    assert message in failure(run)
    assert "not-a-key" not in run.stdout  # the key is no_log even when it is wrong


def test_transporter_psk_mode_needs_no_enrollment(tmp_path: Path) -> None:
    run = play(
        tmp_path,
        "tenantry.msp.transporter",
        {
            "transporter_state_dir": str(tmp_path / "state"),
            "transporter_mode": "direct_connect",
            "transporter_direct_connect_auth": "psk",
            "transporter_direct_connect_psk": "x" * 20,
        },
        "transporter_preflight",
    )
    assert run.rc == 0, run.stdout[-2000:]


def test_role_knows_every_expert_setting() -> None:
    """The director role refuses unknown settings from its own list: it must be the service's registry."""
    known = yaml.safe_load((REPO / "roles/director/vars/main.yml").read_text())["__director_known_settings"]
    assert sorted(known) == sorted(ExpertSettings.model_fields)


@pytest.mark.parametrize(
    ("requested", "firewalld_running", "ufw_active", "chosen"),
    [
        ("auto", False, False, "nftables"),
        ("auto", True, False, "firewalld"),
        ("auto", False, True, "ufw"),
        ("auto", True, True, "firewalld"),
        ("nftables", True, True, "nftables"),
        ("none", True, False, "none"),
    ],
)
def test_firewall_backend_is_chosen_by_fact(
    tmp_path: Path, requested: str, firewalld_running: bool, ufw_active: bool, chosen: str
) -> None:
    path = tmp_path / "decide.yml"
    path.write_text(
        json.dumps(
            [
                {
                    "name": "decide",
                    "hosts": "localhost",
                    "gather_facts": False,
                    "tasks": [
                        {
                            "name": "decide",
                            "ansible.builtin.include_role": {
                                "name": "tenantry.msp._common",
                                "tasks_from": "firewall_decide.yml",
                            },
                            "vars": {
                                "_common_firewall_backend": requested,
                                "__common_firewall_probe": {
                                    "firewalld_running": firewalld_running,
                                    "ufw_active": ufw_active,
                                },
                            },
                        },
                        {"name": "show", "ansible.builtin.debug": {"var": "__common_firewall_backend"}},
                    ],
                }
            ]
        )
    )
    run = run_playbook(path, "-i", "localhost,", "-c", "local")
    assert run.rc == 0, run.stdout[-2000:]
    assert run.result["__common_firewall_backend"] == chosen

"""tenantry.msp.expert_settings, tenant and tenant_info against a real Director (and real Transporters) on loopback.

The processes come from the services' harness (tests/integration/services/services_harness.py); the
modules run the way users run them, through ansible-playbook, with certificate validation on.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import REPO, run_module

sys.path.insert(0, str(REPO / "tests" / "integration" / "services"))
from services_harness import DirectorProc, TransporterProc, free_port, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def director(tmp_path: Path) -> Iterator[DirectorProc]:
    (tmp_path / "proc").mkdir()
    proc = DirectorProc(tmp_path / "proc").start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def transporters(tmp_path: Path) -> Iterator[list[TransporterProc]]:
    made: list[TransporterProc] = []
    try:
        yield made
    finally:
        for t in made:
            t.stop()


def conn(director: DirectorProc, **over: Any) -> dict[str, Any]:
    args = {"director_url": director.url, "admin_token": director.token, "ca_file": str(director.state / "ca.crt")}
    args.update(over)
    return args


def sequence(tmp_path: Path, module: str, args: dict[str, Any]) -> list[dict[str, Any]]:
    """STYLE rule 21: check mode, apply, check mode, apply."""
    out = []
    for check in (True, False, True, False):
        run = run_module(tmp_path, module, args, check=check, diff=True)
        assert run.rc == 0, run.stdout[-3000:]
        out.append(run.result)
    return out


# ---------------------------------------------------------------------- expert_settings
def test_expert_settings_idempotent_with_check_and_diff(tmp_path: Path, director: DirectorProc) -> None:
    args = conn(director, settings={"max_concurrent_tasks": "12", "heartbeat_interval": 0.3, "tls_min_version": 1.3})
    results = sequence(tmp_path, "tenantry.msp.expert_settings", args)
    assert [r["changed"] for r in results] == [True, True, False, False]
    first = results[0]
    assert first["changed_keys"] == ["max_concurrent_tasks", "tls_min_version"]  # heartbeat already 0.3 (seeded)
    assert first["diff"]["before"]["max_concurrent_tasks"] == 6
    assert first["diff"]["after"]["max_concurrent_tasks"] == 12
    assert results[3]["values"]["tls_min_version"] == "1.3"
    assert director.api("GET", "/api/v1/settings")["values"]["max_concurrent_tasks"] == 12
    assert director.token not in "".join(r.get("stdout", "") for r in results)


def test_diff_only_in_diff_mode_with_secrets_masked(tmp_path: Path, director: DirectorProc) -> None:
    """Every module's diff goes through one helper (module_utils/_diff.py): none without --diff, masked with it."""
    secret = "smtp pass 4711"
    args = conn(director, settings={"smtp_password": secret, "max_concurrent_tasks": "8"})
    plain = run_module(tmp_path, "tenantry.msp.expert_settings", args, check=True)
    assert plain.rc == 0 and plain.result["changed"], plain.stdout[-3000:]
    assert "diff" not in plain.result
    shown = run_module(tmp_path, "tenantry.msp.expert_settings", args, check=True, diff=True)
    assert shown.result["changed"] and shown.result["diff"]["before"]["smtp_password"] == ""
    assert shown.result["diff"]["after"]["smtp_password"] == "********"
    assert shown.result["diff"]["before"]["max_concurrent_tasks"] == 6
    assert shown.result["diff"]["after"]["max_concurrent_tasks"] == 8
    applied = run_module(tmp_path, "tenantry.msp.expert_settings", args)
    assert applied.result["changed"] and "diff" not in applied.result
    assert director.api("GET", "/api/v1/settings")["values"]["smtp_password"] == "********"
    for run in (plain, shown, applied):
        assert secret not in run.stdout + run.stderr


def test_expert_settings_refusals_change_nothing(tmp_path: Path, director: DirectorProc) -> None:
    run = run_module(tmp_path, "tenantry.msp.expert_settings", conn(director, settings={"max_speed": 1}))
    assert run.result["failed"] and "unknown Expert Setting(s) max_speed; allowed settings: " in run.result["msg"]
    run = run_module(tmp_path, "tenantry.msp.expert_settings", conn(director, settings={"heartbeat_misses": 99}))
    assert run.result["failed"] and run.result["status"] == 422
    assert "heartbeat_misses=99 refused" in run.result["msg"]
    run = run_module(
        tmp_path,
        "tenantry.msp.expert_settings",
        conn(director, admin_token="wrong-token-value", settings={"heartbeat_misses": 4}),
    )
    assert run.result["failed"] and run.result["status"] == 401 and "admin token" in run.result["msg"]
    assert "wrong-token-value" not in run.stdout + run.stderr
    assert director.api("GET", "/api/v1/settings")["values"]["heartbeat_misses"] == 3


def test_certificates_are_validated(tmp_path: Path, director: DirectorProc) -> None:
    args = conn(director, settings={})
    del args["ca_file"]
    run = run_module(tmp_path, "tenantry.msp.expert_settings", args)
    assert run.result["failed"] and "could not be verified" in run.result["msg"]
    run = run_module(tmp_path, "tenantry.msp.expert_settings", dict(args, validate_certs=False))
    assert run.rc == 0 and run.result["changed"] is False


def test_setup_port_needs_a_restart(tmp_path: Path, director: DirectorProc) -> None:
    new = free_port()
    run = run_module(tmp_path, "tenantry.msp.expert_settings", conn(director, settings={"setup_port": new}))
    assert run.result["changed"] and run.result["restart_required"] == ["setup_port"]
    # Stored but not in force: a second run changes nothing and still says a restart is due.
    run = run_module(tmp_path, "tenantry.msp.expert_settings", conn(director, settings={"setup_port": new}))
    assert run.result["changed"] is False and run.result["restart_required"] == ["setup_port"]


def test_uplink_port_moves_connected_transporters(
    tmp_path: Path, director: DirectorProc, transporters: list[TransporterProc]
) -> None:
    created = run_module(tmp_path, "tenantry.msp.tenant", conn(director, name="site-a"))
    t = TransporterProc(tmp_path / "proc", "site-a")
    transporters.append(t)
    assert t.enroll(director, created.result["credentials"]["enrollment_key"]).returncode == 0
    t.start()
    wait_for(lambda: director.online("site-a"), 30, "site-a online")
    new = free_port()
    run = run_module(tmp_path, "tenantry.msp.expert_settings", conn(director, settings={"uplink_port": new}))
    assert run.result["changed"] and run.result["restart_required"] == []
    wait_for(lambda: director.api("GET", "/api/v1/status")["uplink_ports"] == [new], 60, "the old listener closed")
    wait_for(
        lambda: director.online("site-a") and t.state_json()["settings"]["uplink_port"] == new,
        30,
        "site-a back online on the new port",
    )


# ---------------------------------------------------------------------- tenant
def test_tenant_create_is_idempotent_and_credentials_come_once(tmp_path: Path, director: DirectorProc) -> None:
    args = conn(director, name="acme", description="Acme Corp", contact="it@acme.example", workload_quota=25)
    results = sequence(tmp_path, "tenantry.msp.tenant", args)
    assert [r["changed"] for r in results] == [True, True, False, False]
    assert "credentials" not in results[0]  # check mode issues nothing
    creds = results[1]["credentials"]
    assert creds["enrollment_key"].startswith("tnt1_") and creds["tenant_id"] == results[1]["tenant"]["id"]
    assert all("credentials" not in r for r in results[2:])
    assert results[0]["diff"]["before"] == {}
    assert results[0]["diff"]["after"]["workload_quota"] == 25
    assert results[3]["tenant"]["status"]["state"] == "awaiting_enrollment"


def test_tenant_update_psk_diff_and_kind(tmp_path: Path, director: DirectorProc) -> None:
    psk = "a-pre-shared-key-of-some-length"
    base = conn(
        director, name="globex", direct_connect={"address": "gw.globex.example:9446", "auth": "psk", "psk": psk}
    )
    assert run_module(tmp_path, "tenantry.msp.tenant", base).result["changed"] is True
    again = run_module(tmp_path, "tenantry.msp.tenant", base, diff=True)
    assert again.result["changed"] is False
    assert psk not in again.stdout + again.stderr
    always = run_module(tmp_path, "tenantry.msp.tenant", dict(base, update_psk="always"))
    assert always.result["changed"] is True
    update = run_module(tmp_path, "tenantry.msp.tenant", dict(base, description="Globex", direct_connect={}), diff=True)
    assert update.result["changed"]
    assert update.result["diff"]["before"]["direct_connect"]["psk_set"] is True
    assert update.result["diff"]["after"]["direct_connect"] is None
    assert update.result["tenant"]["description"] == "Globex" and update.result["tenant"]["direct_connect"] is None
    wrong = run_module(tmp_path, "tenantry.msp.tenant", conn(director, name="globex", kind="local"))
    assert wrong.result["failed"] and "kind cannot change" in wrong.result["msg"]


def test_tenant_enrolls_online_then_absent_revokes(
    tmp_path: Path, director: DirectorProc, transporters: list[TransporterProc]
) -> None:
    created = run_module(tmp_path, "tenantry.msp.tenant", conn(director, name="initech"))
    t = TransporterProc(tmp_path / "proc", "initech")
    transporters.append(t)
    assert t.enroll(director, created.result["credentials"]["enrollment_key"]).returncode == 0
    t.start()

    def online() -> bool:
        info = run_module(tmp_path, "tenantry.msp.tenant_info", conn(director, name="initech")).result
        return info["online"] == ["initech"] and info["tenants"][0]["status"]["enrolled"]

    wait_for(online, 30, "initech online through tenant_info")
    results = sequence(tmp_path, "tenantry.msp.tenant", conn(director, name="initech", state="absent"))
    assert [r["changed"] for r in results] == [True, True, False, False]
    assert results[1]["diff"]["after"] == {} and results[1]["diff"]["before"]["name"] == "initech"
    assert director.api("GET", "/api/v1/tenants?name=initech") == []
    wait_for(lambda: "revoked" in t.log(), 20, "the Transporter told it was revoked")
    assert run_module(tmp_path, "tenantry.msp.tenant_info", conn(director)).result["tenants"] == []


def test_regenerate_credentials_and_revoked_state(tmp_path: Path, director: DirectorProc) -> None:
    first = run_module(tmp_path, "tenantry.msp.tenant", conn(director, name="hooli")).result["credentials"]
    again = run_module(tmp_path, "tenantry.msp.tenant", conn(director, name="hooli", regenerate_credentials=True))
    assert again.result["changed"] and again.result["credentials"]["token"] != first["token"]
    local = run_module(tmp_path, "tenantry.msp.tenant", conn(director, name="msp-local", kind="local"))
    assert local.result["changed"] and "credentials" not in local.result
    revoked = [
        run_module(tmp_path, "tenantry.msp.tenant", conn(director, name="hooli", state="revoked")).result
        for _ in range(2)
    ]
    assert [r["changed"] for r in revoked] == [True, False]
    assert revoked[1]["tenant"]["status"]["state"] == "revoked"
    missing = run_module(tmp_path, "tenantry.msp.tenant", conn(director, name="nobody", state="revoked"))
    assert missing.result["failed"] and "no tenant named 'nobody'" in missing.result["msg"]


def test_tenant_info_lists_and_filters(tmp_path: Path, director: DirectorProc) -> None:
    for name in ("b-tenant", "a-tenant"):
        director.create_tenant(name)
    info = run_module(tmp_path, "tenantry.msp.tenant_info", conn(director), check=True).result
    assert [t["name"] for t in info["tenants"]] == ["a-tenant", "b-tenant"] and info["changed"] is False
    assert info["online"] == []
    assert run_module(tmp_path, "tenantry.msp.tenant_info", conn(director, name="zzz")).result["tenants"] == []


# ---------------------------------------------------------------------- director_user
def test_director_user_idempotent_check_diff_and_password_never_shown(tmp_path: Path, director: DirectorProc) -> None:
    director.create_tenant("acme")
    password = "portal password 123"
    args = conn(director, username="Acme-IT", role="tenant", tenant="acme", password=password, email="it@acme.example")
    results = sequence(tmp_path, "tenantry.msp.director_user", args)
    assert [r["changed"] for r in results] == [True, True, False, False]
    assert results[1]["user"]["tenant"] == "acme" and results[1]["user"]["username"] == "acme-it"
    assert results[0]["diff"]["after"]["password"] == "********"
    for r in results:
        assert password not in json.dumps(r)
    # A change of one field; the password is sent again only when asked to.
    changed = run_module(tmp_path, "tenantry.msp.director_user", dict(args, email="noc@acme.example"), diff=True)
    assert changed.result["changed"] and changed.result["diff"]["after"]["email"] == "noc@acme.example"
    again = run_module(tmp_path, "tenantry.msp.director_user", dict(args, update_password="always"), diff=True)
    assert again.result["changed"] and again.result["diff"]["after"]["password"] == "******** (new)"
    # Its login works with the password the module set.
    assert director.api("GET", "/api/v1/users?name=acme-it")[0]["role"] == "tenant"
    gone = [
        run_module(tmp_path, "tenantry.msp.director_user", conn(director, username="acme-it", state="absent")).result
        for _ in range(2)
    ]
    assert [r["changed"] for r in gone] == [True, False]
    assert director.api("GET", "/api/v1/users") == []


def test_director_user_refuses_a_short_password_and_changes_nothing(tmp_path: Path, director: DirectorProc) -> None:
    short = run_module(
        tmp_path, "tenantry.msp.director_user", conn(director, username="ops", role="admin", password="short")
    )
    assert short.result["failed"] and "at least 12 characters" in short.result["msg"]
    assert director.api("GET", "/api/v1/users") == []

"""Enrollment on the setup port and the uplink session on the uplink port, with real processes."""

from __future__ import annotations

import stat
from collections.abc import Callable

import pytest
from services_harness import ApiError, DirectorProc, TransporterProc, enroll_and_run, wait_for

pytestmark = pytest.mark.integration


def test_two_tenants_enroll_and_go_online(director: DirectorProc, two_online: tuple[TransporterProc, ...]) -> None:
    a, _b = two_online
    tenants = {t["name"]: t for t in director.api("GET", "/api/v1/tenants")}
    assert set(tenants) == {"tenant-a", "tenant-b"}
    assert tenants["tenant-a"]["status"]["state"] == "online"
    assert tenants["tenant-a"]["contact"] == "a@example.net"
    assert tenants["tenant-b"]["workload_quota"] == 5
    # Key material at the site is private.
    assert stat.S_IMODE((a.state / "client.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((director.state / "admin.token").stat().st_mode) == 0o600
    # Dashboard queries travel over each tenant's own session.
    dash = director.api("GET", "/api/v1/tenants/tenant-a/dashboard")
    assert dash["site"]["tenant_id"] == tenants["tenant-a"]["id"]
    assert dash["max_concurrent_tasks"] == 6
    status = director.status("tenant-b")
    assert status["version"] and status["address"].startswith("127.0.0.1:") and status["last_heartbeat"]
    check = director.api("GET", f"/api/v1/enroll/check/{tenants['tenant-b']['id']}", auth=False)
    assert check == {"tenant_id": tenants["tenant-b"]["id"], "known": True, "enrolled": True, "online": True}
    kinds = [e["kind"] for e in director.api("GET", "/api/v1/events?limit=1000")]
    assert kinds.count("enrolled") == 2 and kinds.count("connected") >= 2
    # A command runs at the site and answers.
    result = director.api("POST", "/api/v1/tenants/tenant-b/commands", {"command": "echo", "args": {"x": 1}})
    assert result["ok"] and result["result"] == {"echo": {"x": 1}}


def test_credentials_are_one_time_and_hashed(
    director: DirectorProc, make_transporter: Callable[..., TransporterProc]
) -> None:
    t = make_transporter("once")
    created = enroll_and_run(director, t)
    key = created["credentials"]["enrollment_key"]
    token = created["credentials"]["token"]
    # Replaying the same key fails with a clear message, and nothing is overwritten.
    again = make_transporter("replay").enroll(director, key)
    assert again.returncode == 1
    assert "HTTP 401" in again.stderr and "already used" in again.stderr
    # The database holds only an Argon2id hash, never the secret; the logs never show it.
    db = (director.state / "director.db").read_bytes()
    assert token.encode() not in db
    wait_for(lambda: director.online("once"), 20, "tenant online")
    for text in (director.log(), t.log()):
        assert token not in text and key not in text and director.token not in text
    # Creating the same name again is a conflict; GET by name and PATCH are the idempotent path.
    with pytest.raises(ApiError) as exc:
        director.create_tenant("once")
    assert exc.value.status == 409
    assert director.api("GET", "/api/v1/tenants?name=once")[0]["name"] == "once"
    patched = director.api("PATCH", "/api/v1/tenants/once", {"contact": "noc@example.net"})
    assert patched["contact"] == "noc@example.net" and patched["status"]["online"]


def test_wrong_credentials_are_refused_then_rate_limited(
    director: DirectorProc, make_transporter: Callable[..., TransporterProc]
) -> None:
    a = director.create_tenant("victim")
    b = director.create_tenant("attacker")
    # B's secret with A's tenant id (a spoofed id) is refused.
    body = {"tenant_id": a["tenant"]["id"], "token": b["credentials"]["token"], "csr_pem": "x"}
    with pytest.raises(ApiError) as exc:
        director.api("POST", "/api/v1/enroll", body, auth=False)
    assert exc.value.status == 401 and "refused" in exc.value.detail
    statuses = []
    for _ in range(6):
        try:
            director.api("POST", "/api/v1/enroll", body, auth=False)
        except ApiError as err:
            statuses.append(err.status)
    assert statuses[-1] == 429
    # Everyone else is still served.
    assert director.api("GET", "/api/v1/health", auth=False)["status"] == "ok"
    events = director.api("GET", "/api/v1/events?kind=enroll_failed&limit=100")
    assert events and all(b["credentials"]["token"] not in str(e) for e in events)


def test_admin_authentication(director: DirectorProc) -> None:
    with pytest.raises(ApiError) as exc:
        director.api("GET", "/api/v1/tenants", auth=False)
    assert exc.value.status == 401
    with pytest.raises(ApiError) as exc:
        director.api("GET", "/api/v1/tenants", auth=False, headers={"Authorization": "Bearer wrong"})
    assert exc.value.status == 401
    assert director.api("GET", "/api/v1/tenants", auth=False, headers=director.basic("admin", director.token)) == []
    openapi = director.api("GET", "/openapi.json", auth=False)
    assert "/api/v1/tenants" in openapi["paths"] and "/api/v1/settings" in openapi["paths"]


def test_local_tenant_has_no_credentials(director: DirectorProc) -> None:
    created = director.create_tenant("in-house", kind="local", description="MSP-managed")
    assert created["credentials"] is None
    assert created["tenant"]["status"]["state"] == "local"

"""Expert Settings: validation, persistence and live application (uplink port move, pushes)."""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

import pytest
from services_harness import ApiError, DirectorProc, TransporterProc, free_port, wait_for

pytestmark = pytest.mark.integration


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_uplink_port_change_moves_every_transporter(
    director: DirectorProc, two_online: tuple[TransporterProc, ...]
) -> None:
    a, b = two_online
    old = director.uplink_port
    published = director.state / "ports.json"
    assert json.loads(published.read_text()) == {"setup_port": director.setup_port, "uplink_ports": [old]}
    new = free_port()
    answer = director.api("PUT", "/api/v1/settings", {"uplink_port": new})
    assert answer["changed"] == ["uplink_port"] and answer["restart_required"] == []

    def moved() -> bool:
        status = director.api("GET", "/api/v1/status")
        return bool(status["uplink_ports"] == [new] and all(t["online"] for t in status["tenants"].values()))

    wait_for(moved, 30, "both Transporters on the new port and the old listener closed")
    assert _refused(old)
    # What the host firewall follows (roles/director: a path unit runs tenantry.director.firewall).
    assert json.loads(published.read_text()) == {"setup_port": director.setup_port, "uplink_ports": [new]}
    assert a.state_json()["settings"]["uplink_port"] == new
    assert b.state_json()["settings"]["uplink_port"] == new
    events = director.api("GET", "/api/v1/events?kind=setting_changed")
    assert any(e["data"].get("key") == "uplink_port" and e["data"].get("new") == new for e in events)
    # The change survives a restart, and a Transporter that was away finds the new port by itself.
    b.stop()
    director.kill9()
    director.uplink_port = new
    director.start()
    assert director.api("GET", "/api/v1/settings")["values"]["uplink_port"] == new
    wait_for(lambda: director.online("tenant-a"), 30, "tenant-a back on the new port")


def test_moved_port_is_found_through_the_setup_port(
    director: DirectorProc, two_online: tuple[TransporterProc, ...]
) -> None:
    _a, b = two_online
    b.stop()  # b is away while the port moves
    wait_for(lambda: not director.online("tenant-b"), 10, "tenant-b offline")
    new = free_port()
    director.api("PUT", "/api/v1/settings/uplink_port", {"value": new})
    wait_for(lambda: director.api("GET", "/api/v1/status")["uplink_ports"] == [new], 30, "old listener closed")
    b.start("--allow", "127.0.0.1:9")  # still configured with the old port
    wait_for(lambda: director.online("tenant-b"), 30, "tenant-b found the new port")
    assert b.state_json()["settings"]["uplink_port"] == new


def test_validation_lists_what_is_allowed(director: DirectorProc) -> None:
    with pytest.raises(ApiError) as exc:
        director.api("PUT", "/api/v1/settings", {"no_such_thing": 1})
    assert exc.value.status == 422
    assert "unknown setting(s) no_such_thing" in exc.value.detail and "max_concurrent_tasks" in exc.value.detail
    with pytest.raises(ApiError) as exc:
        director.api("PUT", "/api/v1/settings", {"max_concurrent_tasks": 1025})
    assert exc.value.status == 422 and "from 1 to 1024" in exc.value.detail
    with pytest.raises(ApiError) as exc:
        director.api("PUT", "/api/v1/settings", {"tls_min_version": "1.1"})
    assert "one of 1.2, 1.3" in exc.value.detail
    with pytest.raises(ApiError) as exc:
        director.api("PUT", "/api/v1/settings", raw=b"{not json")
    assert exc.value.status == 400
    registry = director.api("GET", "/api/v1/settings")["registry"]
    assert registry["max_concurrent_tasks"]["default"] == 6 and registry["max_concurrent_tasks"]["maximum"] == 1024
    assert registry["setup_port"]["applies"] == "restart"
    for key in (
        "setup_port",
        "uplink_port",
        "heartbeat_interval",
        "heartbeat_misses",
        "reconnect_backoff_cap",
        "max_concurrent_tasks",
        "max_sessions",
        "max_streams_per_session",
        "tls_min_version",
        "log_level",
    ):
        assert key in registry


def test_pushed_settings_apply_at_the_site(director: DirectorProc, two_online: tuple[TransporterProc, ...]) -> None:
    a, _b = two_online
    director.api("PUT", "/api/v1/settings", {"max_concurrent_tasks": 1, "reconnect_backoff_cap": 2})
    wait_for(lambda: a.state_json()["settings"]["max_concurrent_tasks"] == 1, 10, "setting pushed")
    assert a.state_json()["settings"]["reconnect_backoff_cap"] == 2
    results: list[Any] = []

    def sleeper() -> None:
        results.append(
            director.api("POST", "/api/v1/tenants/tenant-a/commands", {"command": "sleep", "args": {"seconds": 2}})
        )

    worker = threading.Thread(target=sleeper)
    worker.start()
    wait_for(lambda: director.api("GET", "/api/v1/tenants/tenant-a/dashboard")["tasks"], 10, "task running")
    with pytest.raises(ApiError) as exc:
        director.api("POST", "/api/v1/tenants/tenant-a/commands", {"command": "echo"})
    assert exc.value.status == 429 and "max_concurrent_tasks is 1" in exc.value.detail
    worker.join(10)
    assert results[0]["ok"]
    director.api("PUT", "/api/v1/settings", {"log_level": "DEBUG", "tls_min_version": "1.3"})
    assert director.api("GET", "/api/v1/health", auth=False)["status"] == "ok"  # still served over TLS 1.3

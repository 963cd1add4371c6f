"""Transporters keep their uplink through Director crashes, graceful restarts and dead peers."""

from __future__ import annotations

import signal
import threading
from typing import Any

import pytest
from services_harness import DirectorProc, TransporterProc, wait_for

pytestmark = pytest.mark.integration


def test_kill9_and_restart_every_transporter_comes_back(
    director: DirectorProc, two_online: tuple[TransporterProc, ...]
) -> None:
    a, b = two_online
    director.kill9()
    director.start()  # same state directory, same ports
    wait_for(lambda: director.online("tenant-a") and director.online("tenant-b"), 30, "both back online")
    # Nothing was lost: tenants, certificates and history survived the crash.
    assert {t["name"] for t in director.api("GET", "/api/v1/tenants")} == {"tenant-a", "tenant-b"}
    assert director.api("GET", "/api/v1/events?kind=enrolled")
    assert a.proc is not None and a.proc.poll() is None and b.proc is not None and b.proc.poll() is None


def test_graceful_shutdown_finishes_in_flight_streams(
    director: DirectorProc, two_online: tuple[TransporterProc, ...]
) -> None:
    result: dict[str, Any] = {}

    def slow_command() -> None:
        result["answer"] = director.api(
            "POST", "/api/v1/tenants/tenant-a/commands", {"command": "sleep", "args": {"seconds": 1.5}}
        )

    worker = threading.Thread(target=slow_command)
    worker.start()
    wait_for(lambda: director.api("GET", "/api/v1/tenants/tenant-a/dashboard")["tasks"], 10, "task running")
    assert director.terminate() == 0
    worker.join(10)
    assert result["answer"]["ok"] and result["answer"]["result"] == {"slept": 1.5}
    assert "graceful shutdown" in director.log()
    director.start()
    wait_for(lambda: director.online("tenant-a") and director.online("tenant-b"), 30, "both back online")


def test_dead_transporter_is_detected_by_heartbeat(
    director: DirectorProc, two_online: tuple[TransporterProc, ...]
) -> None:
    a, _b = two_online
    assert a.proc is not None
    a.proc.send_signal(signal.SIGSTOP)  # alive TCP-wise, silent otherwise
    try:
        wait_for(lambda: not director.online("tenant-a"), 10, "tenant-a declared dead")
        events = director.api("GET", "/api/v1/events?kind=disconnected&tenant=tenant-a")
        assert "no heartbeat" in events[-1]["message"]
        assert director.online("tenant-b")
    finally:
        a.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: director.online("tenant-a"), 20, "tenant-a back")


def test_transporter_waits_forever_for_an_absent_director(
    director: DirectorProc, two_online: tuple[TransporterProc, ...]
) -> None:
    a, _b = two_online
    director.kill9()
    # Several backoff rounds against a closed port: the Transporter keeps trying and stays up.
    wait_for(lambda: a.log().count("reconnecting in") >= 5, 30, "several reconnect attempts")
    assert a.proc is not None and a.proc.poll() is None
    director.start()
    wait_for(lambda: director.online("tenant-a"), 30, "tenant-a back")

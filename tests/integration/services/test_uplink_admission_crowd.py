"""Uplink admission under a crowd: the handshake limit holds in every second, and the Transporters
it turns away are told when to come back instead of guessing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from services_harness import DirectorProc, TransporterProc, enroll_and_run, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def slow_director(tmp_path: Path) -> Iterator[DirectorProc]:
    proc = DirectorProc(tmp_path, seeds={"max_handshakes_per_second": 2, "reconnect_backoff_cap": 3}).start()
    try:
        yield proc
    finally:
        proc.stop()


def test_a_crowd_is_admitted_within_the_limit_and_told_when_to_return(
    slow_director: DirectorProc, tmp_path: Path
) -> None:
    director = slow_director
    crowd = [TransporterProc(tmp_path, f"site-{i}") for i in range(8)]
    try:
        for t in crowd:
            created = director.create_tenant(t.name)
            assert t.enroll(director, created["credentials"]["enrollment_key"]).returncode == 0
        for t in crowd:  # all at once
            t.start()
        wait_for(lambda: director.api("GET", "/api/v1/health", auth=False)["tenants_online"] == 8, 60, "all online")
        health = director.api("GET", "/api/v1/health", auth=False)
        # Never more than 2 handshakes started or completed in any 1 s window, counted by the Director.
        assert health["uplink_handshakes_peak"] <= 2
        assert health["uplink_admitted_peak"] <= 2
        assert health["uplink_throttled"] > 0
        told = sum(t.log().count("Director busy: retry in") for t in crowd)
        assert told > 0, "no Transporter read the Director's busy line"
    finally:
        for t in crowd:
            t.stop()


def test_enroll_and_run_still_works_with_the_default_limit(director: DirectorProc, tmp_path: Path) -> None:
    t = TransporterProc(tmp_path, "plain")
    try:
        enroll_and_run(director, t)
        wait_for(lambda: director.online("plain"), 30, "online")
        assert director.api("GET", "/api/v1/health", auth=False)["uplink_throttled"] == 0
    finally:
        t.stop()

"""Issue 13, item 1: what an unauthenticated client may cost the Director on its setup port (4443).

Every test attacks a real Director process on loopback from several source addresses
(127.0.0.0/8 is all loopback) and checks what the attacker and the bystanders observe.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path

import attacks
import pytest
from services_harness import DirectorProc, TransporterProc, enroll_and_run, wait_for

pytestmark = pytest.mark.integration

HOST = "127.0.0.1"


def _client_ctx(director: DirectorProc) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(director.state / "ca.crt"))
    ctx.check_hostname = False
    return ctx


def _timed_api(director: DirectorProc) -> float:
    t0 = time.monotonic()
    assert director.api("GET", "/api/v1/health", auth=False)["status"] == "ok"
    return time.monotonic() - t0


def test_excess_connections_are_refused_before_tls_and_newcomers_displace_a_flood(tmp_path: Path) -> None:
    seeds = {
        "api_max_connections": 40,
        "api_max_connections_per_source": 5,
        "api_handshake_timeout": 60,
        "api_header_timeout": 60,
    }
    director = DirectorProc(tmp_path, seeds).start()
    try:
        with attacks.Attacker().running() as attacker:
            crowd = attacks.Crowd()
            attacker.run(attacks.half_open(HOST, director.setup_port, ["127.0.2.1"], 5, crowd))
            time.sleep(0.3)
            assert crowd.open_count() == 5
            # The sixth from that address is reset before any TLS byte; another address is let in.
            assert attacks.refused_before_tls(HOST, director.setup_port, "127.0.2.1")
            assert not attacks.refused_before_tls(HOST, director.setup_port, "127.0.2.99")
            # Fill the listener: 8 addresses x 5 = the total cap of 40.
            attacker.run(attacks.half_open(HOST, director.setup_port, attacks.sources(7, subnet=3), 5, crowd))
            time.sleep(0.3)
            assert crowd.open_count() == 40
            # Full, and still a client from an address of its own is served: it displaced a hostile connection.
            assert _timed_api(director) < 1.0
            time.sleep(0.3)
            assert crowd.open_count() == 39
            crowd.close()
    finally:
        director.stop()


def test_half_open_and_slow_clients_are_cut_off_by_deadlines(tmp_path: Path) -> None:
    director = DirectorProc(tmp_path, {"api_handshake_timeout": 1.5, "api_header_timeout": 3}).start()
    try:
        with attacks.Attacker().running() as attacker:
            half, slow, silent = attacks.Crowd(), attacks.Crowd(), attacks.Crowd()
            addrs = attacks.sources(4)
            started = time.monotonic()
            attacker.run(attacks.half_open(HOST, director.setup_port, addrs, 5, half))
            attacker.run(attacks.slow_headers(HOST, director.setup_port, addrs, 5, _client_ctx(director), slow))
            attacker.run(attacks.tls_only(HOST, director.setup_port, addrs[:1], 3, _client_ctx(director), silent))
            assert (half.open_count(), slow.open_count(), silent.open_count()) == (20, 20, 3)
            # One header byte every half second does not keep a request alive past the header deadline.
            trickling = asyncio.run_coroutine_threadsafe(attacks.trickle(slow, 0.5, 14), attacker.loop)
            wait_for(lambda: half.open_count() == 0, 5, "half-open connections closed")
            assert time.monotonic() - started < 4.5
            wait_for(lambda: slow.open_count() == 0 and silent.open_count() == 0, 8, "slow connections closed")
            assert time.monotonic() - started < 7
            trickling.result(10)
            assert _timed_api(director) < 1.0
    finally:
        director.stop()


def test_a_flood_costs_bounded_memory_and_bystanders_are_served(tmp_path: Path) -> None:
    """1,000 hostile connections, all held (caps raised): the per-connection cost that the
    target (< 150 MiB for 5,000) allows is 30 KiB; bystanders < 1 s; memory given back."""
    seeds = {
        "api_max_connections": 5000,
        "api_max_connections_per_source": 5000,
        "api_handshake_timeout": 60,
        "api_header_timeout": 60,
    }
    director = DirectorProc(tmp_path, seeds).start()
    bystander = TransporterProc(tmp_path, "bystander")
    try:
        enroll_and_run(director, bystander)
        wait_for(lambda: director.online("bystander"), 30, "the bystander online")
        assert director.proc is not None
        pid = director.proc.pid
        time.sleep(1)
        base = attacks.rss_mib(pid)
        with attacks.Attacker().running() as attacker:
            half, slow = attacks.Crowd(), attacks.Crowd()
            addrs = attacks.sources(20)
            attacker.run(attacks.half_open(HOST, director.setup_port, addrs, 25, half))
            attacker.run(attacks.slow_headers(HOST, director.setup_port, addrs, 25, _client_ctx(director), slow))
            time.sleep(1)
            assert half.open_count() + slow.open_count() == 1000
            extra = attacks.rss_mib(pid) - base
            assert extra < 30, f"1,000 hostile connections cost {extra:.1f} MiB"
            assert _timed_api(director) < 1.0
            assert attacks.timed_uplink_reconnect(HOST, director.uplink_port, bystander.state) < 1.0
            half.close()
            slow.close()
        wait_for(lambda: attacks.rss_mib(pid) <= 1.2 * base, 30, f"RSS back within 20 % of {base:.0f} MiB")
        wait_for(lambda: director.online("bystander"), 30, "the bystander back online")
    finally:
        bystander.stop()
        director.stop()

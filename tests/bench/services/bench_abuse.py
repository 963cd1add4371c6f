"""Benchmark: what hostile clients cost the Director, and what its bystanders notice.

Run:  .venv/bin/python tests/bench/services/bench_abuse.py [--connections 5000] [--sources 100]
      [--pings 1000000]

Prints figures next to their targets, never asserts.

1. Setup port (4443): half the connections stop after 5 bytes of a ClientHello, half complete
   TLS and then trickle header bytes (slowloris), from ``--sources`` loopback addresses.
   Run twice: with the default caps, and with the caps raised so that every hostile
   connection is held (the per-connection cost).  Targets: < 150 MiB extra for 5,000
   connections; a normal API call and a tenant reconnect during the attack < 1 s each; RSS
   back within 20 % of its baseline 30 s after the attackers are gone.
2. Uplink (6702): an enrolled tenant floods PING frames without reading its socket.
   Targets: the Director stops it (GOAWAY ENHANCE_YOUR_CALM), its memory does not grow with the
   flood, and another tenant's dashboard call is never delayed by more than 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import ssl
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "integration" / "services"))

import attacks
from services_harness import DirectorProc, TransporterProc, enroll_and_run, wait_for

RAISED = {"api_max_connections": 20000, "api_max_connections_per_source": 20000}


def _bystander(director: DirectorProc, transporter: TransporterProc) -> tuple[float, float]:
    t0 = time.monotonic()
    director.api("GET", "/api/v1/tenants")
    api = time.monotonic() - t0
    reconnect = attacks.timed_uplink_reconnect("127.0.0.1", director.uplink_port, transporter.state)
    return api, reconnect


async def _attack(director: DirectorProc, connections: int, sources: int) -> tuple[attacks.Crowd, attacks.Crowd]:
    addrs = attacks.sources(sources)
    per_source = max(1, connections // (2 * sources))
    ctx = ssl.create_default_context(cafile=str(director.state / "ca.crt"))
    ctx.check_hostname = False
    half, slow = attacks.Crowd(), attacks.Crowd()
    await attacks.half_open("127.0.0.1", director.setup_port, addrs, per_source, half)
    await attacks.slow_headers("127.0.0.1", director.setup_port, addrs, per_source, ctx, slow)
    return half, slow


def setup_port_round(root: Path, connections: int, sources: int, raised: bool) -> None:
    seeds = dict(RAISED) if raised else {}
    # Long deadlines so that the hostile connections are all held while we measure.
    seeds |= {"api_handshake_timeout": 60, "api_header_timeout": 60}
    where = root / ("raised" if raised else "default")
    where.mkdir(parents=True)
    director = DirectorProc(where, seeds).start()
    transporter = TransporterProc(director.root, "bystander")
    try:
        enroll_and_run(director, transporter)
        wait_for(lambda: director.online("bystander"), 30, "the bystander online")
        assert director.proc is not None
        time.sleep(2)
        base = attacks.rss_mib(director.proc.pid)
        loop = asyncio.new_event_loop()
        t0 = time.monotonic()
        half, slow = loop.run_until_complete(_attack(director, connections, sources))
        opened = time.monotonic() - t0
        loop.run_until_complete(asyncio.sleep(2))
        held = half.open_count() + slow.open_count()
        peak = attacks.rss_mib(director.proc.pid)
        api, reconnect = _bystander(director, transporter)
        wait_for(lambda: director.online("bystander"), 30, "the bystander back online")
        label = "caps raised (every connection held)" if raised else "default caps"
        print(f"setup port, {label}: {connections} hostile connections from {sources} addresses in {opened:.1f} s")
        print(
            f"  held by the Director: {held} (half-open {half.open_count()}, slow {slow.open_count()}); "
            f"refused, evicted or timed out: {connections - held}"
        )
        extra = peak - base
        per_1000 = extra / held * 1000 if held else float("nan")
        print(
            f"  Director RSS {base:.0f} -> {peak:.0f} MiB: +{extra:.0f} MiB  (target < 150 MiB for 5,000); "
            f"{per_1000:.1f} MiB per 1,000 held"
        )
        print(
            f"  during the attack: API call {api * 1000:.0f} ms, tenant reconnect {reconnect * 1000:.0f} ms  "
            f"(target < 1000 ms each)"
        )
        half.close()
        slow.close()
        loop.run_until_complete(asyncio.sleep(0.5))
        loop.close()
        for waited in (5, 30):
            time.sleep(waited - (5 if waited == 30 else 0))
            after = attacks.rss_mib(director.proc.pid)
            print(
                f"  {waited} s after they closed: RSS {after:.0f} MiB = {after / base:.2f}x baseline  "
                f"(target <= 1.20x at 30 s)"
            )
    finally:
        transporter.stop()
        director.stop()


# ------------------------------------------------------------------------------------------ uplink
def _ping_flood(director: DirectorProc, state_dir: Path, pings: int, result: dict[str, object]) -> None:
    """A tenant's uplink that sends PING frames and never reads."""
    ctx = ssl.create_default_context(cafile=str(state_dir / "ca.crt"))
    ctx.check_hostname = False
    ctx.load_cert_chain(state_dir / "client.crt", state_dir / "client.key")
    preface_settings = attacks.frame(0x4, 0, 0, b"")
    ping = attacks.frame(0x6, 0, 0, b"12345678")
    batch = ping * 4096
    sent = 0
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", director.uplink_port)) as raw, ctx.wrap_socket(raw) as s:
        s.settimeout(30)
        s.sendall(preface_settings)
        try:
            while sent < pings:
                s.sendall(batch)
                sent += 4096
        except OSError as exc:
            result["error"] = str(exc)
    result["sent"] = sent
    result["seconds"] = time.monotonic() - t0


def uplink_round(root: Path, pings: int) -> None:
    (root / "uplink").mkdir(parents=True)
    director = DirectorProc(root / "uplink").start()
    flooder, victim = TransporterProc(director.root, "flooder"), TransporterProc(director.root, "victim")
    try:
        enroll_and_run(director, flooder)
        enroll_and_run(director, victim)
        wait_for(lambda: director.online("flooder") and director.online("victim"), 30, "both online")
        flooder.stop()  # its certificate is used by the flood below
        assert director.proc is not None
        base = attacks.rss_mib(director.proc.pid)
        delays: list[float] = []
        result: dict[str, object] = {}
        flood = threading.Thread(target=_ping_flood, args=(director, flooder.state, pings, result))
        for _ in range(5):
            t = time.monotonic()
            director.api("GET", "/api/v1/tenants/victim/dashboard")
            delays.append(time.monotonic() - t)
        idle = sorted(delays)[len(delays) // 2]
        delays.clear()
        flood.start()
        peak = base
        while flood.is_alive():
            t = time.monotonic()
            director.api("GET", "/api/v1/tenants/victim/dashboard")
            delays.append(time.monotonic() - t)
            peak = max(peak, attacks.rss_mib(director.proc.pid))
        flood.join()
        for _ in range(10):
            t = time.monotonic()
            director.api("GET", "/api/v1/tenants/victim/dashboard")
            delays.append(time.monotonic() - t)
        worst = max(delays) - idle
        calm = "GOAWAY ENHANCE_YOUR_CALM" if "PING flood" in director.log() else "not stopped"
        print(
            f"uplink PING flood: {result.get('sent')} PINGs offered in {float(result.get('seconds', 0)):.1f} s; "
            f"Director: {calm} ({result.get('error', 'flood finished')})"
        )
        print(f"  Director RSS {base:.0f} -> peak {peak:.0f} MiB during the flood (+{peak - base:.1f} MiB)")
        print(
            f"  other tenant's dashboard: idle {idle * 1000:.0f} ms, worst extra delay during the flood "
            f"{worst * 1000:.0f} ms over {len(delays)} calls  (target < 100 ms)"
        )
    finally:
        flooder.stop()
        victim.stop()
        director.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--sources", type=int, default=100)
    parser.add_argument("--pings", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-abuse-") as tmp:
        root = Path(tmp)
        setup_port_round(root, args.connections, args.sources, raised=False)
        setup_port_round(root, args.connections, args.sources, raised=True)
        uplink_round(root, args.pings)


if __name__ == "__main__":
    main()

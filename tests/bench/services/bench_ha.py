"""Benchmark: losing a Director. 3 Directors, one PostgreSQL, HAProxy, 3,000 tenants each; kill -9 one.

Run:  .venv/bin/python tests/bench/services/bench_ha.py [--tenants 9000] [--directors 3] [--workers 3]
                                                          [--state DIR] [--fast-setup]

Prints figures, never asserts.  Target (issue 15): every tenant the killed Director held is back
on a survivor within 60 s, none lost or duplicated, and the API keeps answering throughout.

Everything is real and on this machine: Debian's PostgreSQL and HAProxy (TCP mode, health checks,
PROXY v2), Directors on 127.0.0.2-4 with the same ports, HAProxy on 127.0.0.1, simulated
Transporters (the real Transporter code, many per process) connecting through HAProxy.  Set-up
(tenants created and enrolled through HAProxy) is not timed; ``--state`` keeps it for the next run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "integration" / "services"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import fleet
from bench_uplink import CpuMeter, rss_mib, uptime
from cluster_harness import ClusterDirector, start_cluster
from services_harness import PY, ApiError, wait_for
from support.postgres import PostgresServer


def postgres_pids(pg: PostgresServer) -> list[int]:
    """The postmaster (from its pid file) and its children (backends, writer, WAL, ...)."""
    try:
        main = int((pg.data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return []
    children = subprocess.run(["pgrep", "-P", str(main)], capture_output=True, text=True).stdout.split()
    return [main, *(int(c) for c in children)]


def milestones(samples: list[tuple[float, int]], others: int, held: int) -> str:
    """When half, 90 %, 99 % and all of the killed Director's tenants were back on a survivor."""
    parts = []
    for share in (0.5, 0.9, 0.99, 1.0):
        need = others + int(held * share + 0.999)
        t = next((t for t, total in samples if total >= need), None)
        parts.append(f"{share:.0%} at {t:.1f} s" if t is not None else f"{share:.0%} never")
    return "the killed Director's tenants back: " + ", ".join(parts)


def haproxy_downs(log: Path) -> list[str]:
    """Which Director HAProxy's health checks marked DOWN, and why, one entry per time (its log)."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        if "Server setup/" in line and " is DOWN, reason: " in line:
            name = line.split("Server setup/", 1)[1].split()[0]
            out.append(f"{name}: {line.split(' is DOWN, reason: ', 1)[1].split(',')[0]}")
    return out


def read_tallies(root: Path, workers: int) -> list[dict[str, Any]]:
    out = []
    for n in range(workers):
        try:
            out.append(json.loads((root / f"w{n}.tally").read_text()))
        except (OSError, ValueError):
            out.append({"reasons": {}, "delays": []})
    return out


def reconnects(root: Path, workers: int, before: list[dict[str, Any]]) -> str:
    """Why the Transporters' uplinks went down since ``before``, and the waits they chose."""
    reasons: dict[str, int] = {}
    delays: list[float] = []
    for old, new in zip(before, read_tallies(root, workers), strict=True):
        for reason, count in new["reasons"].items():
            if count - old["reasons"].get(reason, 0):
                reasons[reason] = reasons.get(reason, 0) + count - old["reasons"].get(reason, 0)
        delays += new["delays"][len(old["delays"]) :]
    if not delays:
        return "reconnects: none seen"
    delays.sort()
    top = sorted(reasons.items(), key=lambda kv: -kv[1])[:5]
    return (
        f"reconnects: {len(delays)} waits, median {delays[len(delays) // 2]:.1f} s, "
        f"longest {delays[-1]:.1f} s, {sum(d > 10 for d in delays)} over 10 s; why: {top}"
    )


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    p = argparse.ArgumentParser()
    p.add_argument("--tenants", type=int, default=9000)
    p.add_argument("--directors", type=int, default=3)
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--state", type=Path)
    p.add_argument("--fast-setup", action="store_true")
    p.add_argument(
        "--check-inter",
        default="2s",
        help="HAProxy's health check interval (and a probe's handshake timeout); the director_lb role's default",
    )
    args = p.parse_args()

    root = args.state or Path(tempfile.mkdtemp(prefix="bench-ha-"))
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)  # the postgres user reaches its data directory below
    manifest_path = root / "manifest.json"
    manifest: dict[str, Any] | None = json.loads(manifest_path.read_text()) if manifest_path.exists() else None
    if manifest and (manifest["tenants"], manifest["directors"], manifest["workers"]) != (
        args.tenants,
        args.directors,
        args.workers,
    ):
        print(f"{root} holds another set-up; starting over")
        subprocess.run(["rm", "-rf", str(root)], check=False)
        root.mkdir(parents=True)
        root.chmod(0o755)
        manifest = None
    print(f"machine: {uptime()}")
    pg = PostgresServer(root / "pg", port=manifest["pg_port"] if manifest else None).start()
    url = pg.ensure_database("tenantry")
    seeds = {
        "heartbeat_interval": 15,
        "reconnect_backoff_cap": 60,
        "enroll_failures_per_minute": 10000,
        "shutdown_grace": 5,
        "api_max_connections_per_source": 1024,
    }
    ports = (manifest["setup_port"], manifest["uplink_port"]) if manifest else None
    directors: list[ClusterDirector] = []
    workers: list[subprocess.Popen[bytes]] = []
    proxy = None
    try:
        directors, proxy, lb = start_cluster(
            root,
            url,
            args.directors,
            seeds,
            ports=ports,
            fast_argon2=args.fast_setup,
            maxconn=args.tenants + 1000,
            check_inter=args.check_inter,
        )
        if not manifest:
            t0 = time.monotonic()
            import concurrent.futures

            def create(i: int) -> str:
                for _ in range(20):
                    try:
                        return str(lb.create_tenant(f"ha-{i:05d}")["credentials"]["enrollment_key"])
                    except ApiError as exc:
                        if exc.status == 409:
                            return str(lb.api("POST", f"/api/v1/tenants/ha-{i:05d}/credentials")["enrollment_key"])
                        time.sleep(0.5)
                    except OSError:
                        time.sleep(0.5)
                raise RuntimeError(f"cannot create ha-{i:05d}")

            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                keys = list(pool.map(create, range(args.tenants)))
            print(f"setup: {args.tenants} tenants created through HAProxy in {time.monotonic() - t0:.1f} s")
            t0 = time.monotonic()
            per = (args.tenants + args.workers - 1) // args.workers
            with concurrent.futures.ThreadPoolExecutor(args.workers) as pool:
                list(
                    pool.map(
                        lambda n: fleet.enroll_all(keys[n * per : (n + 1) * per], root / f"w{n}", lb.url, threads=4),
                        range(args.workers),
                    )
                )
            print(f"setup: {args.tenants} Transporters enrolled through HAProxy in {time.monotonic() - t0:.1f} s")
            manifest = {
                "tenants": args.tenants,
                "directors": args.directors,
                "workers": args.workers,
                "setup_port": lb.setup_port,
                "uplink_port": lb.uplink_port,
                "pg_port": pg.port,
            }
            manifest_path.write_text(json.dumps(manifest))
        else:
            print(f"setup: reusing {args.tenants} enrolled Transporters from {root}")

        # ---------------------------------------------------------------- connect through HAProxy
        go = root / "go"
        go.unlink(missing_ok=True)
        for n in range(args.workers):
            (root / f"w{n}.ready").unlink(missing_ok=True)
            log = (root / f"worker-{n}.log").open("ab")
            workers.append(
                subprocess.Popen(
                    [PY, fleet.__file__, str(root / f"w{n}"), "--go", str(go), "--tally", str(root / f"w{n}.tally")],
                    stdout=log,
                    stderr=log,
                )
            )
        wait_for(lambda: all((root / f"w{n}.ready").exists() for n in range(args.workers)), 600, "workers ready")
        meter = CpuMeter()

        def groups() -> dict[str, list[int]]:
            return {
                "Directors": [d.proc.pid for d in directors if d.proc is not None and d.proc.poll() is None],
                "PostgreSQL": postgres_pids(pg),
                "HAProxy": [proxy.proc.pid] if proxy is not None and proxy.proc is not None else [],
                "simulated Transporters": [w.pid for w in workers],
            }

        meter.start(groups())
        t0 = time.monotonic()
        go.touch()

        def local_counts() -> dict[str, int]:
            out = {}
            for d in directors:
                if d.proc is not None and d.proc.poll() is None:
                    out[d.name] = int(d.health()["tenants_online"])
            return out

        wait_for(lambda: sum(local_counts().values()) >= args.tenants, 900, "every tenant online")
        print(
            f"connect: {args.tenants} tenants online through HAProxy in {time.monotonic() - t0:.1f} s; "
            f"per Director {local_counts()}"
        )
        print(meter.report("connect"))
        time.sleep(5)
        counts = local_counts()
        victim = max(directors, key=lambda d: counts[d.name])
        survivors = [d for d in directors if d is not victim]
        held = counts[victim.name]
        for d in directors:
            assert d.proc is not None
            print(f"  {d.name}: {counts[d.name]} sessions, RSS {rss_mib(d.proc.pid):.0f} MiB")

        # ---------------------------------------------------------------- kill -9 while the API is polled
        latencies: list[tuple[float, float]] = []
        failures: list[str] = []
        stop = threading.Event()

        def poll() -> None:
            while not stop.is_set():
                t = time.monotonic()
                try:
                    lb.api("GET", "/api/v1/status?limit=100")
                    latencies.append((t, (time.monotonic() - t) * 1000))
                except (OSError, ApiError) as exc:
                    failures.append(f"{time.monotonic() - t0:.1f}s {exc}")
                time.sleep(0.2)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        time.sleep(2)
        during = groups()
        during["Directors"] = [d.proc.pid for d in survivors if d.proc is not None]  # the victim's CPU ends
        meter.start(during)
        tallies_before = read_tallies(root, args.workers)
        downs_before = haproxy_downs(proxy.log_path)
        t_kill = time.monotonic()
        victim.kill9()
        back = None
        samples = []
        deadline = t_kill + 600
        while time.monotonic() < deadline:
            try:
                total = sum(int(d.health()["tenants_online"]) for d in survivors)
            except (OSError, ApiError):
                total = -1
            samples.append((time.monotonic() - t_kill, total))
            if total >= args.tenants:
                back = time.monotonic() - t_kill
                break
            time.sleep(0.25)
        time.sleep(2)
        stop.set()
        poller.join(5)
        registry = int(survivors[0].health()["tenants_online_cluster"])
        after = {d.name: int(d.health()["tenants_online"]) for d in survivors}
        page = survivors[0].api("GET", f"/api/v1/status?limit=1000&after={''}")  # one page: spot check below
        print(
            f"kill -9 {victim.name} holding {held} tenants: all {args.tenants} online on the survivors "
            f"{back:.1f} s later"
            if back is not None
            else f"kill -9 {victim.name}: NOT all back within 600 s"
        )
        print(f"  target: back within 60 s; survivors now hold {after} = {sum(after.values())}; registry {registry}")
        print("  " + milestones(samples, args.tenants - held, held))
        print("  " + reconnects(root, args.workers, tallies_before))
        downs = haproxy_downs(proxy.log_path)[len(downs_before) :]
        print(
            f"  HAProxy marked a Director DOWN {len(downs)} times since the kill "
            f"(health check every {args.check_inter}): {downs[:6]}"
        )
        print(meter.report("the failover"))
        during = [ms for t, ms in latencies if t >= t_kill - 0.5]
        if during:
            during.sort()
            print(
                f"  API through HAProxy during the failover: {len(during)} calls answered, median "
                f"{during[len(during) // 2]:.0f} ms, worst {during[-1]:.0f} ms; {len(failures)} failed"
                + (f" ({failures[:3]})" if failures else "")
            )
        for d in survivors:
            h = d.health()
            print(
                f"  {d.name}: peak {h['uplink_handshakes_peak']} handshakes completed / "
                f"{h['uplink_admitted_peak']} admitted in any 1 s window (limit 200); "
                f"{h['uplink_throttled']} told to come back later"
            )
        holders = {v.get("director") for v in page["tenants"].values() if v["online"]}
        print(f"  a status page of {len(page['tenants'])} tenants names only {sorted(h for h in holders if h)}")
        print(f"machine: {uptime()}")
    finally:
        for w in workers:
            w.kill()
            w.wait()
        if proxy is not None:
            proxy.stop()
        for d in directors:
            d.stop()
        pg.stop()
        if args.state is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

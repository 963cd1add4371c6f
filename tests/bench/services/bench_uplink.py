"""Benchmark: 1,000 simulated Transporters enroll and connect; Director RSS; kill -9 reconnect storm.

Run:  .venv/bin/python tests/bench/services/bench_uplink.py [--tenants 1000] [--workers 2]

Prints figures, never asserts.  Targets (issue): all online < 30 s; Director RSS at
1,000 idle sessions < 500 MiB; after kill -9 + restart all back < 90 s with a peak
of <= 200 handshakes/s.  Everything runs on loopback; the simulated Transporters are
the real Transporter code (enroll + UplinkClient), many per process.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "integration" / "services"))

from services_harness import DirectorProc, wait_for


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ------------------------------------------------------------------------------------------ worker
async def _worker(keys_file: Path, root: Path, director_url: str) -> None:
    from tenantry.protocol.enrollment import EnrollmentKey
    from tenantry.transporter.config import StateDir, TransporterConfig
    from tenantry.transporter.enroll import enroll
    from tenantry.transporter.site import Site
    from tenantry.transporter.uplink import UplinkClient

    loop = asyncio.get_running_loop()
    loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(16))
    keys = [EnrollmentKey.decode(k) for k in json.loads(keys_file.read_text())]
    clients: list[asyncio.Task[None]] = []
    sem = asyncio.Semaphore(32)

    async def one(i: int, key: EnrollmentKey) -> None:
        sd = StateDir(root / f"t{i}")
        async with sem:
            state = await enroll(sd, key, director_url)
        cfg = TransporterConfig(state_dir=sd.path)
        site = Site(cfg, sd, state.tenant_id, state.settings)
        client = UplinkClient(sd, state, site)
        await client.run_forever()

    for i, key in enumerate(keys):
        clients.append(loop.create_task(one(i, key)))
    await asyncio.gather(*clients)


# ------------------------------------------------------------------------------------------ main
def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--tenants", type=int, default=1000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--worker-keys", type=Path)
    p.add_argument("--worker-root", type=Path)
    p.add_argument("--director-url")
    args = p.parse_args()
    if args.worker_keys:
        import logging

        logging.basicConfig(level=logging.WARNING)
        asyncio.run(_worker(args.worker_keys, args.worker_root, args.director_url))
        return

    root = Path(tempfile.mkdtemp(prefix="bench-uplink-"))
    director = DirectorProc(
        root,
        seeds={
            "heartbeat_interval": 15,
            "reconnect_backoff_cap": 60,
            "enroll_failures_per_minute": 10000,
            "shutdown_grace": 5,
        },
        fast_argon2=False,
    )  # production Argon2id cost (OWASP: 19 MiB, t=2)
    director.start()
    workers: list[subprocess.Popen[bytes]] = []
    try:
        assert director.proc is not None
        rss_empty = rss_mib(director.proc.pid)
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            created = list(pool.map(lambda i: director.create_tenant(f"bench-{i:04d}"), range(args.tenants)))
        t_create = time.monotonic() - t0
        keys = [c["credentials"]["enrollment_key"] for c in created]
        rss_tenants = rss_mib(director.proc.pid)
        print(
            f"tenants created (setup, not timed): {args.tenants} in {t_create:.1f} s; "
            f"Director RSS {rss_empty:.0f} -> {rss_tenants:.0f} MiB"
        )

        per = (len(keys) + args.workers - 1) // args.workers
        t0 = time.monotonic()
        for w in range(args.workers):
            kf = root / f"keys-{w}.json"
            kf.write_text(json.dumps(keys[w * per : (w + 1) * per]))
            log = (root / f"worker-{w}.log").open("wb")
            workers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        __file__,
                        "--worker-keys",
                        str(kf),
                        "--worker-root",
                        str(root / f"w{w}"),
                        "--director-url",
                        director.url,
                    ],
                    stdout=log,
                    stderr=log,
                )
            )

        def online() -> int:
            return int(director.api("GET", "/api/v1/health", auth=False)["tenants_online"])

        wait_for(lambda: online() >= args.tenants, 300, "all tenants online")
        t_online = time.monotonic() - t0
        time.sleep(5)  # idle sessions
        rss_idle = rss_mib(director.proc.pid)
        print(f"enroll + connect: {args.tenants} tenants online in {t_online:.1f} s  (target < 30 s)")
        print(
            f"Director RSS at {online()} idle sessions: {rss_idle:.0f} MiB  (target < 500 MiB); "
            f"{(rss_idle - rss_tenants) * 1024 / args.tenants:.0f} KiB per session"
        )

        # Reconnect storm: kill -9, restart at once, count handshakes per second.
        director.kill9()
        t_kill = time.monotonic()
        director.start()
        t_up = time.monotonic() - t_kill
        samples: list[tuple[float, int, int]] = []
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            h = director.api("GET", "/api/v1/health", auth=False)
            samples.append((time.monotonic(), int(h["uplink_handshakes"]), int(h["tenants_online"])))
            if samples[-1][2] >= args.tenants:
                break
            time.sleep(0.25)
        t_back = samples[-1][0] - t_kill
        peak = 0.0
        for i, (ts, hs, _on) in enumerate(samples):
            for tj, hj, _ in samples[i + 1 :]:
                if tj - ts >= 1.0:
                    peak = max(peak, (hj - hs) / (tj - ts))
                    break
        print(
            f"reconnect storm: Director restarted in {t_up:.1f} s; all {samples[-1][2]} back "
            f"{t_back:.1f} s after kill -9  (target < 90 s)"
        )
        h = director.api("GET", "/api/v1/health", auth=False)
        print(
            f"peak handshakes: {h['uplink_handshakes_peak']}/s in any 1 s window, counted by the Director "
            f"(target <= 200/s); {peak:.0f}/s seen by 0.25 s polling; total handshakes {h['uplink_handshakes']}, "
            f"connections throttled {h['uplink_throttled']}"
        )
        time.sleep(3)
        print(f"Director RSS after the storm: {rss_mib(director.proc.pid):.0f} MiB")
        for w in workers:
            print(f"worker {w.pid} RSS: {rss_mib(w.pid):.0f} MiB")
    finally:
        for w in workers:
            w.kill()
            w.wait()
        director.stop()


if __name__ == "__main__":
    main()

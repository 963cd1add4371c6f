"""Benchmark: N simulated Transporters connect; Director RSS; kill -9 reconnect storm; API at N tenants.

Run:  .venv/bin/python tests/bench/services/bench_uplink.py [--tenants 10000] [--workers 4]
                                                             [--state DIR] [--fast-setup]

Prints figures, never asserts.  Targets (issue 15): 10,000 enrolled tenants online < 120 s;
Director RSS < 2 GiB; after kill -9 + restart all back < 180 s with no 1 s window above the
admission limit (200/s); ``/api/v1/status`` (paged) < 200 ms.

Setup is not timed: the tenants are created through the API and enrolled by the workers (the
real enrollment code).  ``--state DIR`` keeps that setup (Director state, every Transporter's
state directory) and reuses it on the next run; ``--fast-setup`` uses a cheap Argon2id cost for
it (the timed part never hashes).  The timed part starts the workers, each running many real
``UplinkClient``s from those state directories, and polls the Director until all are online.

CPU is shared: the Director, the simulated Transporters and whatever else runs on the machine.
Each phase prints the CPU seconds of each, so a figure can be read honestly.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "integration" / "services"))

from services_harness import ApiError, DirectorProc, wait_for

TICK = os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_cpu_seconds() -> float:
    """Busy CPU seconds of the whole machine (every core) so far."""
    parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in parts]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / TICK


class CpuMeter:
    """CPU used by named groups of processes and by everything else, between start() and report()."""

    def __init__(self) -> None:
        self.groups: dict[str, list[int]] = {}

    def start(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self.t0 = time.monotonic()
        self.machine0 = machine_cpu_seconds()
        self.base = {k: sum(cpu_seconds(p) for p in v) for k, v in groups.items()}

    def report(self, what: str) -> str:
        wall = time.monotonic() - self.t0
        used = {k: sum(cpu_seconds(p) for p in v) - self.base[k] for k, v in self.groups.items()}
        machine = machine_cpu_seconds() - self.machine0
        other = max(0.0, machine - sum(used.values()))
        cores = os.cpu_count() or 1
        ours = ", ".join(f"{k} {v:.1f} s" for k, v in used.items())
        return (
            f"  CPU during {what} ({wall:.1f} s wall x {cores} cores = {wall * cores:.0f} core-s): {ours}, "
            f"everything else on the machine {other:.1f} s, idle {max(0.0, wall * cores - machine):.1f} s"
        )


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


# ------------------------------------------------------------------------------------------ workers
async def _enroll_worker(keys_file: Path, root: Path, director_url: str) -> None:
    from tenantry.protocol.enrollment import EnrollmentKey
    from tenantry.transporter.config import StateDir
    from tenantry.transporter.enroll import EnrollError, enroll

    loop = asyncio.get_running_loop()
    loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(8))
    keys = [EnrollmentKey.decode(k) for k in json.loads(keys_file.read_text())]
    sem = asyncio.Semaphore(8)

    async def one(i: int, key: EnrollmentKey) -> None:
        sd = StateDir(root / f"t{i}")
        if sd.enrolled:
            return
        async with sem:
            for attempt in range(50):
                try:
                    await enroll(sd, key, director_url)
                    return
                except EnrollError as exc:  # 429 while the Director hashes for others: wait and retry
                    if "429" not in str(exc) or attempt == 49:
                        raise
                    await asyncio.sleep(0.5)

    await asyncio.gather(*(one(i, k) for i, k in enumerate(keys)))


async def _run_worker(root: Path, go: Path | None) -> None:
    import fleet

    await fleet.run(root, go)


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    return subprocess.Popen([sys.executable, __file__, *args], stdout=out, stderr=out)


# ------------------------------------------------------------------------------------------ phases
def setup(director: DirectorProc, root: Path, tenants: int, workers: int) -> None:
    assert director.proc is not None
    rss_empty = rss_mib(director.proc.pid)
    t0 = time.monotonic()

    def create(i: int) -> str:
        name = f"bench-{i:05d}"
        for _ in range(20):
            try:
                return str(director.create_tenant(name)["credentials"]["enrollment_key"])
            except (ApiError, urllib.error.URLError, OSError) as exc:
                if isinstance(exc, ApiError) and exc.status == 409:
                    return str(director.api("POST", f"/api/v1/tenants/{name}/credentials")["enrollment_key"])
                time.sleep(0.5)
        raise RuntimeError(f"cannot create {name}")

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(create, range(tenants)))
    t_create = time.monotonic() - t0
    print(
        f"setup: {tenants} tenants created in {t_create:.1f} s; Director RSS {rss_empty:.0f} -> "
        f"{rss_mib(director.proc.pid):.0f} MiB"
    )
    t0 = time.monotonic()
    per = (tenants + workers - 1) // workers
    procs = []
    for w in range(workers):
        kf = root / f"keys-{w}.json"
        kf.write_text(json.dumps(keys[w * per : (w + 1) * per]))
        procs.append(
            _spawn(
                ["--enroll-keys", str(kf), "--worker-root", str(root / f"w{w}"), "--director-url", director.url],
                root / f"enroll-{w}.log",
            )
        )
    for proc in procs:
        if proc.wait() != 0:
            raise RuntimeError(f"an enrollment worker failed; see {root}/enroll-*.log")
    print(f"setup: {tenants} Transporters enrolled in {time.monotonic() - t0:.1f} s (not timed)")


def health(director: DirectorProc) -> dict[str, Any]:
    result: dict[str, Any] = director.api("GET", "/api/v1/health", auth=False)
    return result


def online(director: DirectorProc) -> int:
    return int(health(director)["tenants_online"])


def api_latency(director: DirectorProc, path: str, rounds: int = 5) -> tuple[float, float]:
    """Best and median milliseconds of ``rounds`` calls."""
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        director.api("GET", path)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return times[0], times[len(times) // 2]


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # clean up (finally) on SIGTERM too
    p = argparse.ArgumentParser()
    p.add_argument("--tenants", type=int, default=10000)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--state", type=Path, help="keep the set-up here and reuse it next time")
    p.add_argument("--fast-setup", action="store_true", help="cheap Argon2id while creating and enrolling")
    p.add_argument("--no-storm", action="store_true")
    p.add_argument("--enroll-keys", type=Path)
    p.add_argument("--worker-root", type=Path)
    p.add_argument("--director-url")
    p.add_argument("--go", type=Path)
    args = p.parse_args()
    if args.enroll_keys:
        asyncio.run(_enroll_worker(args.enroll_keys, args.worker_root, args.director_url))
        return
    if args.worker_root:
        import logging

        logging.basicConfig(level=logging.WARNING)
        asyncio.run(_run_worker(args.worker_root, args.go))
        return

    root = args.state or Path(tempfile.mkdtemp(prefix="bench-uplink-"))
    root.mkdir(parents=True, exist_ok=True)
    manifest_path = root / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else None
    if manifest and (manifest["tenants"], manifest["workers"]) != (args.tenants, args.workers):
        print(f"{root} holds a set-up for {manifest['tenants']} tenants / {manifest['workers']} workers; starting over")
        shutil.rmtree(root)
        root.mkdir(parents=True)
        manifest = None
    seeds = {
        "heartbeat_interval": 15,
        "reconnect_backoff_cap": 60,
        "enroll_failures_per_minute": 10000,
        "shutdown_grace": 5,
        "api_max_connections_per_source": 1024,
    }
    director = DirectorProc(root, seeds=seeds, fast_argon2=args.fast_setup)
    if manifest:
        director.setup_port, director.uplink_port = manifest["setup_port"], manifest["uplink_port"]
    print(f"machine: {uptime()}")
    director.start()
    workers: list[subprocess.Popen[bytes]] = []
    try:
        if not manifest:
            setup(director, root, args.tenants, args.workers)
            manifest = {
                "tenants": args.tenants,
                "workers": args.workers,
                "setup_port": director.setup_port,
                "uplink_port": director.uplink_port,
            }
            manifest_path.write_text(json.dumps(manifest))
            # Restart so the timed part starts from a Director that has hashed nothing.
            director.terminate()
            director.start()
        else:
            print(f"setup: reusing {args.tenants} enrolled Transporters from {root}")
        assert director.proc is not None
        rss_start = rss_mib(director.proc.pid)

        # ---------------------------------------------------------------- connect
        meter = CpuMeter()
        go = root / "go"
        go.unlink(missing_ok=True)
        for w in range(args.workers):
            (root / f"w{w}.ready").unlink(missing_ok=True)
            workers.append(_spawn(["--worker-root", str(root / f"w{w}"), "--go", str(go)], root / f"worker-{w}.log"))
        wait_for(lambda: all((root / f"w{w}.ready").exists() for w in range(args.workers)), 600, "workers ready")
        t0 = time.monotonic()
        meter.start({"Director": [director.proc.pid], "simulated Transporters": [w.pid for w in workers]})
        go.touch()
        wait_for(lambda: online(director) >= args.tenants, 900, "all tenants online")
        t_online = time.monotonic() - t0
        h = health(director)
        print(f"connect: {args.tenants} enrolled tenants online in {t_online:.1f} s  (target < 120 s)")
        print(meter.report("connect"))
        print(
            f"  admission: peak {h['uplink_handshakes_peak']} handshakes completed and "
            f"{h.get('uplink_admitted_peak', '?')} admitted in any 1 s window (limit 200); "
            f"{h['uplink_throttled']} connections told to come back later"
        )
        time.sleep(5)
        rss_idle = rss_mib(director.proc.pid)
        print(
            f"Director RSS at {online(director)} idle sessions: {rss_idle:.0f} MiB  (target < 2048 MiB); "
            f"{(rss_idle - rss_start) * 1024 / args.tenants:.0f} KiB per session"
        )
        for path in ("/api/v1/status?limit=100", "/api/v1/tenants?limit=100", "/api/v1/health"):
            best, median = api_latency(director, path)
            print(f"  GET {path}: best {best:.0f} ms, median {median:.0f} ms  (target < 200 ms)")

        # ---------------------------------------------------------------- storm
        if not args.no_storm:
            director.kill9()
            t_kill = time.monotonic()
            director.start()
            meter.start({"Director": [director.proc.pid], "simulated Transporters": [w.pid for w in workers]})
            t_up = time.monotonic() - t_kill
            count = 0
            deadline = time.monotonic() + 900
            while time.monotonic() < deadline:
                try:
                    count = online(director)
                except (OSError, ApiError):
                    count = 0
                if count >= args.tenants:
                    break
                time.sleep(0.25)
            t_back = time.monotonic() - t_kill
            h = health(director)
            print(
                f"reconnect storm: Director restarted in {t_up:.1f} s; all {count} back "
                f"{t_back:.1f} s after kill -9  (target < 180 s)"
            )
            print(meter.report("the storm"))
            print(
                f"  admission: peak {h['uplink_handshakes_peak']} handshakes completed and "
                f"{h.get('uplink_admitted_peak', '?')} admitted in any 1 s window, counted by the Director "
                f"(limit 200); total handshakes {h['uplink_handshakes']}, "
                f"{h['uplink_throttled']} connections told to come back later"
            )
            time.sleep(3)
            print(f"Director RSS after the storm: {rss_mib(director.proc.pid):.0f} MiB")
        for w in workers:
            print(f"worker {w.pid} RSS: {rss_mib(w.pid):.0f} MiB")
        print(f"machine: {uptime()}")
    finally:
        for w in workers:
            w.kill()
            w.wait()
        director.stop()
        if args.state is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

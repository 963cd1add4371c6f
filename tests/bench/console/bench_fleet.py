"""Console pages and the fleet APIs with many tenants: the fleet page (a page, a deep page, filtered),
its live-update fragment (200 and 304), the JSON fleet API, the alarms page, ``/api/v1/status`` and
the tenant list, paged (and unpaged for comparison).

    flock /tmp/tenantry-bench.lock .venv/bin/python tests/bench/console/bench_fleet.py [--tenants 10000] [--postgresql]

A real Director process on loopback (SQLite, or with ``--postgresql`` a PostgreSQL server started for
the run); tenants are created through the API as local ones (no Argon2id per tenant), then every other
one is made an enrolled remote tenant whose Transporter is offline; an alarm is open on each hundredth.
Prints median and 95th percentile per request, and whether a paged request stays under the target
(200 ms, issue 15).  ``--profile DIR`` records the Director with py-spy during the timed requests.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path[:0] = [str(REPO / "tests" / "integration" / "services"), str(REPO / "tests")]

from services_harness import DirectorProc, free_port  # noqa: E402

PASSWORD = "bench password 123"
TARGET_MS = 200.0


def timed(
    opener: urllib.request.OpenerDirector,
    url: str,
    n: int,
    headers: dict[str, str] | Callable[[], dict[str, str]] | None = None,
) -> tuple[list[float], int, int]:
    times, size, status = [], 0, 0
    fixed = headers() if callable(headers) else headers or {}
    for _ in range(n):
        req = urllib.request.Request(url, headers=fixed)
        start = time.perf_counter()
        try:
            with opener.open(req) as resp:
                body = resp.read()
                status = resp.status
        except urllib.error.HTTPError as exc:
            body, status = exc.read(), exc.code
        times.append((time.perf_counter() - start) * 1000)
        size = len(body)
    return times, size, status


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument(
        "--postgresql",
        action="store_true",
        help="the Director's state in a PostgreSQL server started for the run (as several Directors share it)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="record the Director with py-spy during the timed requests (collapsed stacks in this folder); "
        "it slows the run, so take figures from a run without it",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = None
        config = database = ""
        if args.postgresql:
            from support.postgres import PostgresServer

            server = PostgresServer().start()
            url = server.create_database()
            database = url.rsplit("/", 1)[1]
            config = f"database_url = {json.dumps(url)}\npeer_port = {free_port()}\n"
        director = DirectorProc(Path(tmp), config=config).start()
        try:
            start = time.perf_counter()
            for i in range(args.tenants):
                director.api("POST", "/api/v1/tenants", {"name": f"t{i:04d}", "kind": "local", "workload_quota": 10})
            print(f"{args.tenants} tenants created in {time.perf_counter() - start:.1f} s (untimed setup)")
            # Every other tenant becomes an enrolled remote one whose Transporter is offline (enrolling
            # thousands of real Transporters is the uplink bench's work, not this one's): the Director
            # is stopped, the rows changed, the Director started again.
            director.stop()
            remote = "UPDATE tenants SET kind = 'remote', enrolled_at = {now}, state_since = {now} "
            remote += "WHERE CAST(substr(name, 2) AS INTEGER) % 2 = 1"
            if server is not None:
                server.psql(remote.format(now=time.time()), database)
            else:
                with sqlite3.connect(director.state / "director.db") as db:
                    db.execute(remote.format(now=time.time()))
                db.close()
            director.start()
            director.api("POST", "/api/v1/users", {"username": "ops", "role": "operator", "password": PASSWORD})
            findings = [
                {"check": "mac_shared", "key": f"mac:{i}", "tenant": f"t{i:04d}", "message": "bench"}
                for i in range(0, args.tenants, 100)
            ]
            director.api("POST", "/api/v1/audit", {"findings": findings})
            jar = http.cookiejar.CookieJar()
            opener = urllib.request.build_opener(
                urllib.request.HTTPSHandler(context=director.ctx), urllib.request.HTTPCookieProcessor(jar)
            )
            html = opener.open(director.url + "/login").read().decode()
            token = re.search(r'name="login_token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
            form = urllib.parse.urlencode({"username": "ops", "password": PASSWORD, "login_token": token}).encode()
            opener.open(urllib.request.Request(director.url + "/login", data=form))

            def unchanged() -> dict[str, str]:
                """The fragment's current ETag, asked right before its case ("since 3 min" changes with time)."""
                with opener.open(director.url + "/console/fleet/rows?size=50&page=7") as first:
                    first.read()
                    return {"If-None-Match": first.headers["ETag"]}

            admin = {"Authorization": f"Bearer {director.token}"}
            middle = f"t{args.tenants // 2:04d}"
            deep = max(1, args.tenants // 50 - 1)
            # (label, URL, headers, paged: held to the target)
            cases = [
                ("fleet page (50 of N)", "/console?size=50&page=7", None, True),
                (f"fleet page, deep (page {deep})", f"/console?size=50&page={deep}", None, True),
                ("fleet page, filtered 'q=t09'", "/console?q=t09", None, True),
                ("fleet page, filtered 'state=offline'", "/console?state=offline", None, True),
                ("fleet page, filtered 'alarms=true'", "/console?alarms=true", None, True),
                ("live update fragment, changed (200)", "/console/fleet/rows?size=50&page=7", None, True),
                ("live update fragment, unchanged (304)", "/console/fleet/rows?size=50&page=7", unchanged, True),
                ("GET /api/v1/fleet (JSON)", "/api/v1/fleet?size=50&page=7", None, True),
                ("alarms page", "/console/alarms", None, True),
                ("users page (admin)", "/console/users", admin, True),
                ("a tenant's page", f"/console/tenants/{middle}", None, True),
                ("GET /api/v1/status?limit=100 (paged)", f"/api/v1/status?limit=100&after={middle}", admin, True),
                ("GET /api/v1/tenants?limit=100 (paged)", f"/api/v1/tenants?limit=100&after={middle}", admin, True),
                ("GET /api/v1/status (all, for comparison)", "/api/v1/status", admin, False),
                ("GET /api/v1/tenants (all, for comparison)", "/api/v1/tenants", admin, False),
            ]
            spy = None
            if args.profile is not None:
                assert director.proc is not None
                args.profile.mkdir(parents=True, exist_ok=True)
                spy_bin = str(Path(sys.executable).parent / "py-spy")
                out = str(args.profile / "director.txt")
                spy = subprocess.Popen(
                    [spy_bin, "record", "--format", "raw", "--rate", "200", "-o", out, "-p", str(director.proc.pid)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(1)
            print(f"{'request':45} {'median':>8} {'p95':>8} {'bytes':>8} status  target < {TARGET_MS:.0f} ms")
            for label, path, headers, paged in cases:
                times, size, status = timed(opener, director.url + path, args.requests, headers)
                p95 = sorted(times)[int(len(times) * 0.95) - 1]
                verdict = ("met" if p95 < TARGET_MS else "NOT met") if paged else "(unpaged)"
                print(f"{label:45} {statistics.median(times):6.1f}ms {p95:6.1f}ms {size:8d} {status}     {verdict}")
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(30)
                print(f"py-spy stacks of the Director: {args.profile / 'director.txt'}")
        finally:
            director.stop()
            if server is not None:
                server.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The fleet page with 1,000 tenants: one page, its live-update fragment (200 and 304) and the JSON API.

    .venv/bin/python tests/bench/console/bench_fleet.py [--tenants 1000]

A real Director process on loopback; tenants are local (no Argon2id per tenant) and get a run record
and an alarm each hundredth, so every column is filled.  Prints median and 95th percentile per request.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import re
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path[:0] = [str(REPO / "tests" / "integration" / "services"), str(REPO / "tests")]

from services_harness import DirectorProc  # noqa: E402

PASSWORD = "bench password 123"


def timed(
    opener: urllib.request.OpenerDirector, url: str, n: int, headers: dict[str, str] | None = None
) -> tuple[list[float], int, int]:
    times, size, status = [], 0, 0
    for _ in range(n):
        req = urllib.request.Request(url, headers=headers or {})
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        director = DirectorProc(Path(tmp)).start()
        try:
            start = time.perf_counter()
            for i in range(args.tenants):
                director.api("POST", "/api/v1/tenants", {"name": f"t{i:04d}", "kind": "local", "workload_quota": 10})
            print(f"{args.tenants} tenants created in {time.perf_counter() - start:.1f} s")
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
            rows = director.url + "/console/fleet/rows?size=50&page=7"
            first = opener.open(rows)
            tag = first.headers["ETag"]
            first.read()
            cases = [
                ("fleet page (50 of N)", director.url + "/console?size=50&page=7", None),
                ("fleet page, filtered 'q=t09'", director.url + "/console?q=t09", None),
                ("live update fragment, changed (200)", rows, None),
                ("live update fragment, unchanged (304)", rows, {"If-None-Match": tag}),
                ("GET /api/v1/fleet (JSON)", director.url + "/api/v1/fleet?size=50&page=7", None),
                ("GET /api/v1/tenants (all, for comparison)", director.url + "/api/v1/tenants", None),
            ]
            print(f"{'request':45} {'median':>8} {'p95':>8} {'bytes':>8} status")
            for label, url, headers in cases:
                times, size, status = timed(opener, url, args.requests, headers)
                p95 = sorted(times)[int(len(times) * 0.95) - 1]
                print(f"{label:45} {statistics.median(times):6.1f}ms {p95:6.1f}ms {size:8d} {status}")
        finally:
            director.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Issue 15: several Directors sharing a real PostgreSQL behind a real HAProxy, at small scale.

Three Directors (127.0.0.2-4, the same ports) and HAProxy (127.0.0.1, TCP mode, health checks,
PROXY protocol v2) on loopback; Transporters are real (processes, or many in one fleet process).
A tenant enrolled through one Director is managed through the others (forwarding), settings and
revocations reach every Director and Transporter, one-time enrollment and rate limits hold
across Directors, and losing a Director (kill -9) moves its tenants to the survivors while the
API keeps answering.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fleet
import pytest
from cluster_harness import Balancer, ClusterDirector, HAProxy, start_cluster
from services_harness import PY, ApiError, TransporterProc, wait_for

from tenantry.protocol import proxyproto
from tenantry.protocol.enrollment import EnrollmentKey
from tenantry.transporter.config import StateDir
from tenantry.transporter.enroll import EnrollError, enroll_sync

pytestmark = pytest.mark.integration

FLEET = Path(fleet.__file__)
LIMIT = 8  # failed enrollments per source address per minute, across the cluster


@pytest.fixture(scope="module")
def cluster(
    postgres_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[list[ClusterDirector], HAProxy, Balancer]]:
    root = tmp_path_factory.mktemp("cluster")
    directors: list[ClusterDirector] = []
    proxy: HAProxy | None = None
    try:
        seeds = {"enroll_failures_per_minute": LIMIT}
        directors, proxy, lb = start_cluster(root, postgres_server.create_database(), 3, seeds)
        yield directors, proxy, lb
    finally:
        if proxy is not None:
            proxy.stop()
        for d in directors:
            d.stop()


@pytest.fixture
def transporters(tmp_path: Path) -> Iterator[list[TransporterProc]]:
    made: list[TransporterProc] = []
    try:
        yield made
    finally:
        for t in made:
            t.stop()


def _online_on(director: ClusterDirector, name: str) -> bool:
    status = director.status(name)
    return bool(status["online"]) and status.get("director") == director.name


def _enrolled_on(
    first: ClusterDirector, lb: Balancer, tmp_path: Path, name: str, made: list[TransporterProc]
) -> TransporterProc:
    """A tenant created through the balancer whose Transporter enrolled with, and connects to, ``first``."""
    created = lb.create_tenant(name)
    t = TransporterProc(tmp_path, name)
    made.append(t)
    result = t.enroll(first, created["credentials"]["enrollment_key"])
    assert result.returncode == 0, result.stderr
    t.start("--allow", "127.0.0.1:9")
    wait_for(lambda: _online_on(first, name), 30, f"{name} online on {first.name}")
    return t


def test_a_tenant_enrolled_through_one_director_is_managed_through_the_others(
    cluster: tuple[list[ClusterDirector], HAProxy, Balancer], tmp_path: Path, transporters: list[TransporterProc]
) -> None:
    (d1, d2, d3), _proxy, lb = cluster
    _enrolled_on(d1, lb, tmp_path, "managed", transporters)
    tenant_id = lb.api("GET", "/api/v1/tenants/managed")["id"]
    # Every Director knows where the session is ...
    for d in (d2, d3):
        wait_for(lambda d=d: d.status("managed")["online"], 10, f"{d.name} sees the session")  # type: ignore[misc]
        assert d.status("managed")["director"] == "d1"
    # ... and serves what needs it by forwarding to d1.
    assert d2.api("GET", "/api/v1/tenants/managed/dashboard")["site"]["tenant_id"] == tenant_id
    result = d3.api("POST", "/api/v1/tenants/managed/commands", {"command": "echo", "args": {"text": "via d3"}})
    assert json.dumps(result).count("via d3") >= 1
    # A tunnel over the uplink asked of d3 listens on d1, which holds the session; any Director lists it.
    tunnel = d3.api("POST", "/api/v1/tenants/managed/tunnels", {"target": "127.0.0.1:9"})
    listed = d2.api("GET", "/api/v1/tenants/managed/tunnels")
    assert [(t["id"], t["director"]) for t in listed] == [(tunnel["id"], "d1")]
    d2.api("DELETE", f"/api/v1/tenants/managed/tunnels/{tunnel['id']}")  # forwarded to d1
    assert d3.api("GET", "/api/v1/tenants/managed/tunnels") == []
    # The forwarded calls are authorized like any other: a wrong token is refused, not forwarded blindly.
    with pytest.raises(ApiError) as refused:
        d2.api("GET", "/api/v1/tenants/managed/dashboard", auth=False)
    assert refused.value.status == 401


def test_settings_reach_every_director_and_every_transporter(
    cluster: tuple[list[ClusterDirector], HAProxy, Balancer], tmp_path: Path, transporters: list[TransporterProc]
) -> None:
    (d1, d2, d3), _proxy, lb = cluster
    t = _enrolled_on(d1, lb, tmp_path, "settled", transporters)
    before = d1.api("GET", "/api/v1/settings/max_concurrent_tasks")["value"]
    new = 9 if before != 9 else 10
    d3.api("PUT", "/api/v1/settings/max_concurrent_tasks", {"value": new})
    for d in (d1, d2, d3):
        wait_for(
            lambda d=d: d.api("GET", "/api/v1/settings/max_concurrent_tasks")["value"] == new,  # type: ignore[misc]
            10,
            f"{d.name} has the new setting",
        )
    # d1 holds the Transporter's session: it pushed the change there.
    wait_for(lambda: t.state_json()["settings"]["max_concurrent_tasks"] == new, 10, "the Transporter has it")


def test_revocation_closes_the_session_on_whichever_director_holds_it(
    cluster: tuple[list[ClusterDirector], HAProxy, Balancer], tmp_path: Path, transporters: list[TransporterProc]
) -> None:
    (d1, _d2, d3), _proxy, lb = cluster
    t = _enrolled_on(d1, lb, tmp_path, "revoked", transporters)
    d3.api("POST", "/api/v1/tenants/revoked/revoke")
    wait_for(lambda: "tenant revoked" in t.log(), 10, "the Transporter told it is revoked")
    wait_for(lambda: not d1.status("revoked")["online"], 5, "the session gone from d1")
    for d in cluster[0]:
        assert d.status("revoked")["state"] == "revoked"
    wait_for(lambda: d1.health()["tenants_online_cluster"] == d3.health()["tenants_online_cluster"], 5, "registry")


def test_one_time_enrollment_stays_one_time_across_directors(
    cluster: tuple[list[ClusterDirector], HAProxy, Balancer], tmp_path: Path
) -> None:
    (d1, d2, _d3), _proxy, lb = cluster
    key = EnrollmentKey.decode(lb.create_tenant("raced")["credentials"]["enrollment_key"])
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def enroll(director: ClusterDirector, n: int) -> None:
        barrier.wait()
        try:
            enroll_sync(StateDir(tmp_path / f"raced-{n}"), key, director.url)
            outcomes.append("enrolled")
        except EnrollError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=enroll, args=(d, n)) for n, d in enumerate((d1, d2))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes)[0] == "enrolled" and outcomes.count("enrolled") == 1, outcomes
    assert "401" in next(o for o in outcomes if o != "enrolled")


def _enroll_from(source: str, lb: Balancer) -> int:
    """One enrollment attempt with wrong credentials through HAProxy, from ``source``; the HTTP status."""
    ctx = ssl.create_default_context(cafile=str(lb.state / "ca.crt"))
    conn = http.client.HTTPSConnection(lb.host, lb.setup_port, context=ctx, timeout=30, source_address=(source, 0))
    body = json.dumps({"tenant_id": "00000000-0000-4000-8000-000000000000", "token": "wrong-secret", "csr_pem": "x"})
    conn.request("POST", "/api/v1/enroll", body, {"Content-Type": "application/json"})
    status = conn.getresponse().status
    conn.close()
    return status


def test_rate_limits_hold_across_directors_and_see_the_client_behind_haproxy(
    cluster: tuple[list[ClusterDirector], HAProxy, Balancer],
) -> None:
    (d1, _d2, _d3), _proxy, lb = cluster
    # HAProxy spreads the attempts over the three Directors; the limit counts them all.
    statuses = [_enroll_from("127.0.0.9", lb) for _ in range(LIMIT + 2)]
    assert statuses[:LIMIT] == [401] * LIMIT and statuses[LIMIT:] == [429, 429], statuses
    # Another client is not limited by the first one: the Directors count the address from the PROXY
    # header, not HAProxy's own.
    assert _enroll_from("127.0.0.10", lb) == 401
    failed = d1.api("GET", "/api/v1/events?kind=enroll_failed&limit=1000")
    sources = [e["data"]["address"] for e in failed if e["tenant_id"] is None]
    assert sources[-LIMIT - 1 :] == ["127.0.0.9"] * LIMIT + ["127.0.0.10"], sources


def test_a_proxy_header_from_an_untrusted_address_is_refused(
    cluster: tuple[list[ClusterDirector], HAProxy, Balancer],
) -> None:
    (d1, _d2, _d3), _proxy, _lb = cluster
    forged = proxyproto.build(("10.1.2.3", 4242), (d1.host, d1.setup_port))
    for port in (d1.setup_port, d1.uplink_port):
        with socket.create_connection((d1.host, port), source_address=("127.0.0.9", 0), timeout=5) as s:
            s.sendall(forged + b"\x16\x03\x01\x00\x05hello")
            try:
                answer = s.recv(100)
            except ConnectionResetError:
                answer = b""
            assert not answer.startswith(b"\x16"), "a forged PROXY header got a TLS answer"


def test_losing_a_director_moves_its_tenants_to_the_survivors(
    cluster: tuple[list[ClusterDirector], HAProxy, Balancer], tmp_path: Path
) -> None:
    directors, proxy, lb = cluster
    count = 30
    names = [f"fleet-{i:02d}" for i in range(count)]
    keys = [lb.create_tenant(n)["credentials"]["enrollment_key"] for n in names]
    root = tmp_path / "fleet"
    root.mkdir()
    fleet.enroll_all(keys, root, lb.url, threads=2)  # parallel attempts count against the per-source limit
    with (tmp_path / "fleet.log").open("ab") as log:
        proc = subprocess.Popen([PY, str(FLEET), str(root), "--backoff-base", "0.2"], stdout=log, stderr=log)
    try:

        def online_everywhere() -> dict[str, int]:
            return {d.name: int(d.health()["tenants_online"]) for d in directors if d.proc and d.proc.poll() is None}

        wait_for(lambda: sum(online_everywhere().values()) == count, 60, "the fleet online")
        wait_for(
            lambda: lb.api("GET", "/api/v1/health", auth=False)["tenants_online_cluster"] == count, 30, "registered"
        )
        spread = online_everywhere()
        victim = max(directors, key=lambda d: spread[d.name])
        survivors = [d for d in directors if d is not victim]
        held = spread[victim.name]
        assert held > 0, spread
        # The API keeps answering through the balancer, before, during and after.
        failures: list[str] = []
        answered = [0]
        stop = threading.Event()

        def poll() -> None:
            while not stop.is_set():
                try:
                    lb.api("GET", "/api/v1/status?limit=20")
                    answered[0] += 1
                except (OSError, ApiError) as first:
                    try:  # a request in flight on the killed Director: one retry, as any client would
                        lb.api("GET", "/api/v1/status?limit=20")
                        answered[0] += 1
                    except (OSError, ApiError) as again:
                        failures.append(f"{first} / {again}")
                time.sleep(0.05)

        poller = threading.Thread(target=poll)
        poller.start()
        t0 = time.monotonic()
        victim.kill9()
        try:
            wait_for(
                lambda: sum(int(d.health()["tenants_online"]) for d in survivors) == count, 60, "all back on survivors"
            )
            back = time.monotonic() - t0
        finally:
            time.sleep(1)
            stop.set()
            poller.join()
        assert not failures, failures
        assert answered[0] > 10
        # Nobody lost, nobody twice: the survivors hold exactly the fleet, the registry agrees,
        # and every tenant's status names a survivor.
        assert sum(int(d.health()["tenants_online"]) for d in survivors) == count
        wait_for(lambda: survivors[0].health()["tenants_online_cluster"] == count, 10, "registry agrees")
        page = survivors[0].api("GET", "/api/v1/status?limit=1000")["tenants"]
        holders = {n: page[n]["director"] for n in names}
        assert set(holders.values()) <= {d.name for d in survivors}, holders
        for survivor in survivors:  # each one's fleet page counts and lists the sessions the other holds
            shown = survivor.api("GET", "/api/v1/fleet?q=fleet-&state=online&size=100")
            assert [t["name"] for t in shown["tenants"]] == names and shown["summary"]["online"] >= count
        assert back < 60, f"{held} tenants took {back:.1f} s to come back"
        print(f"kill -9 of {victim.name} holding {held} of {count} tenants: all back in {back:.1f} s")
        wait_for(lambda: proxy.servers_up().get(victim.name) == "DOWN", 10, "haproxy marks it down")
    finally:
        proc.terminate()
        proc.wait(10)

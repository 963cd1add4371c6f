"""The fleet paged by the database, with a few hundred tenants: a real Director process on loopback (SQLite,
and PostgreSQL with the cluster registry), real Transporters online (one process running many), tenants
in every state, open alarms from a drift audit.  What an operator sees: every tenant exactly once across
the pages in name order, filters and counts right on every page, a page past the last, the live
fragment's ETag, ``/api/v1/status`` paged the same.  (How fast this is at 10,000 tenants is measured by
``tests/bench/console/bench_fleet.py``, not asserted here.)"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fleet as transporters
import pytest
from services_harness import PY, ApiError, DirectorProc, free_port, wait_for

pytestmark = pytest.mark.integration

LOCAL = [f"loc-{i:03d}" for i in range(258)]
GOLD = {n for i, n in enumerate(LOCAL) if i % 10 == 3}  # "Gold plan" in their description
ONLINE = [f"rem-{i:02d}" for i in range(8)]
OFFLINE = [f"rem-{i:02d}" for i in range(8, 12)]  # enrolled, Transporter not running
AWAITING = [f"new-{i:02d}" for i in range(20)]
REVOKED = [f"old-{i:02d}" for i in range(10)]
ALL = sorted(LOCAL + ONLINE + OFFLINE + AWAITING + REVOKED)
ALARMED = ["loc-005", "loc-105", "loc-205", "loc-243", "rem-03", "rem-09", "new-07"]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def director(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DirectorProc]:
    root = tmp_path_factory.mktemp(f"fleet-paging-{request.param}")
    config = ""
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_server").create_database()
        config = f"database_url = {json.dumps(url)}\npeer_port = {free_port()}\n"
    d = DirectorProc(root, config=config).start()
    proc: subprocess.Popen[bytes] | None = None
    try:
        for i, name in enumerate(LOCAL):
            plan = "Gold plan" if name in GOLD else "silver"
            d.api("POST", "/api/v1/tenants", {"name": name, "kind": "local", "description": f"{plan} {i}"})
        keys = {n: d.create_tenant(n)["credentials"]["enrollment_key"] for n in ONLINE + OFFLINE + AWAITING + REVOKED}
        for name in REVOKED:
            d.api("POST", f"/api/v1/tenants/{name}/revoke")
        (root / "online").mkdir()
        (root / "offline").mkdir()
        transporters.enroll_all([keys[n] for n in ONLINE], root / "online", d.url, threads=2)
        transporters.enroll_all([keys[n] for n in OFFLINE], root / "offline", d.url, threads=2)
        with (root / "fleet.log").open("ab") as log:
            fleet_py = str(Path(transporters.__file__))
            proc = subprocess.Popen(
                [PY, fleet_py, str(root / "online"), "--backoff-base", "0.2"], stdout=log, stderr=log
            )
        wait_for(lambda: d.api("GET", "/api/v1/health", auth=False)["tenants_online"] == len(ONLINE), 60, "online")
        findings = [{"check": "mac_shared", "key": f"mac:{n}", "tenant": n, "message": "test"} for n in ALARMED]
        d.api("POST", "/api/v1/audit", {"findings": findings})
        yield d
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        d.stop()


def fleet(d: DirectorProc, **params: Any) -> dict[str, Any]:
    result: dict[str, Any] = d.api("GET", "/api/v1/fleet?" + urllib.parse.urlencode(params))
    return result


def walk(d: DirectorProc, size: int, **params: Any) -> list[dict[str, Any]]:
    """Every page of a listing, first to last, checking each page's own figures on the way."""
    first = fleet(d, size=size, **params)
    pages = [first]
    for n in range(2, first["pages"] + 1):
        pages.append(fleet(d, size=size, page=n, **params))
    for n, p in enumerate(pages, 1):
        assert (p["page"], p["pages"], p["size"], p["matched"]) == (n, first["pages"], size, first["matched"])
        assert len(p["tenants"]) == (size if n < p["pages"] else p["matched"] - size * (p["pages"] - 1))
    return [t for p in pages for t in p["tenants"]]


def names(rows: list[dict[str, Any]]) -> list[str]:
    return [r["name"] for r in rows]


def test_every_tenant_once_in_name_order_across_pages_with_the_summary_on_each(director: DirectorProc) -> None:
    rows = walk(director, 25)
    assert names(rows) == ALL and len(ALL) == 300
    assert fleet(director, size=25)["pages"] == 12
    states = {r["name"]: r["state"] for r in rows}
    assert {n for n, s in states.items() if s == "online"} == set(ONLINE)
    assert {n for n, s in states.items() if s == "offline"} == set(OFFLINE)
    assert {n for n, s in states.items() if s == "awaiting_enrollment"} == set(AWAITING)
    assert {n for n, s in states.items() if s == "revoked"} == set(REVOKED)
    assert {n for n, s in states.items() if s == "local"} == set(LOCAL)
    assert {r["name"]: r["alarms"] for r in rows if r["alarms"]} == dict.fromkeys(ALARMED, 1)
    assert all(r["address"] and r["since"] for r in rows if r["name"] in ONLINE)
    assert all(r["certificate_expires"] for r in rows if r["name"] in ONLINE + OFFLINE)
    for page in (1, 7, 12):  # the summary is the whole fleet's, whatever the page or filter
        summary = fleet(director, size=25, page=page, q="loc-1")["summary"]
        assert summary == {"tenants": 300, "online": 8, "offline": 4, "alarms": len(ALARMED)}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"state": "online"}, ONLINE),
        ({"state": "offline"}, OFFLINE),
        ({"state": "awaiting_enrollment"}, AWAITING),
        ({"state": "revoked"}, REVOKED),
        ({"state": "local"}, LOCAL),
        ({"q": "GOLD PLAN"}, sorted(GOLD)),  # the description, in any case
        ({"q": "gold", "state": "local"}, sorted(GOLD)),
        ({"q": "loc-2"}, [n for n in LOCAL if n.startswith("loc-2")]),
        ({"q": "%"}, []),  # a literal character, not a wildcard
        ({"alarms": "true"}, sorted(ALARMED)),
        ({"alarms": "true", "state": "online"}, ["rem-03"]),
        ({"alarms": "true", "state": "offline"}, ["rem-09"]),
        ({"alarms": "true", "q": "loc"}, ["loc-005", "loc-105", "loc-205", "loc-243"]),
        ({"state": "nonsense"}, []),
    ],
)
def test_filters_hold_on_every_page(director: DirectorProc, params: dict[str, str], expected: list[str]) -> None:
    for size in (25, 100):
        assert names(walk(director, size, **params)) == expected, (size, params)


def test_a_page_past_the_last_shows_the_last_and_an_empty_match_says_so(director: DirectorProc) -> None:
    last = fleet(director, size=100, page=3, state="local")
    assert (last["page"], last["pages"], names(last["tenants"])) == (3, 3, LOCAL[200:])
    assert fleet(director, size=100, page=99, state="local") == last
    empty = fleet(director, q="no such tenant", page=5)
    assert (empty["page"], empty["pages"], empty["matched"], empty["tenants"]) == (1, 1, 0, [])
    with pytest.raises(ApiError) as refused:
        fleet(director, page=0)
    assert refused.value.status == 422
    # The page, as an operator sees it.
    html = _get(director, "/console?" + urllib.parse.urlencode({"state": "local", "size": 100, "page": 99}))[1]
    assert "Tenants, page 3 of 3" in html and "showing 58 of 258" in html
    assert re.findall(r'<a href="/console/tenants/([^"]+)">', html) == LOCAL[200:]
    assert "300 tenants · <strong>8</strong> online ·\n<strong>4</strong> offline" in html
    html = _get(director, "/console?q=no+such+tenant")[1]
    assert "No tenant matches." in html and "showing 0 of 0" in html


def test_the_live_fragment_is_not_sent_again_until_its_page_changes(director: DirectorProc) -> None:
    path = "/console/fleet/rows?" + urllib.parse.urlencode({"state": "local", "size": 25, "page": 2})
    status, body, headers = _get(director, path)
    assert status == 200 and "loc-025" in body
    assert _get(director, path, {"If-None-Match": headers["ETag"]})[0] == 304
    director.api("PATCH", "/api/v1/tenants/loc-030", {"workload_quota": 7})  # shown as "- / 7"
    status, _body, changed = _get(director, path, {"If-None-Match": headers["ETag"]})
    assert status == 200 and changed["ETag"] != headers["ETag"]


def test_status_and_the_tenant_list_page_by_name_the_same_way(director: DirectorProc) -> None:
    seen: dict[str, str] = {}
    after: str | None = None
    while True:
        query = {"limit": 64} | ({"after": after} if after else {})
        page = director.api("GET", "/api/v1/status?" + urllib.parse.urlencode(query))
        assert len(page["tenants"]) <= 64
        seen.update({n: s["state"] for n, s in page["tenants"].items()})
        after = page["next_after"]
        if after is None:
            break
    assert list(seen) == ALL
    by_fleet = {r["name"]: r["state"] for r in walk(director, 200)}
    assert seen == by_fleet
    listed = director.api("GET", "/api/v1/tenants?limit=100&after=new-19")
    assert [t["name"] for t in listed] == ALL[ALL.index("new-19") + 1 :][:100]


def _get(d: DirectorProc, path: str, headers: dict[str, str] | None = None) -> tuple[int, str, Any]:
    """Status, body and headers (any case) of a GET with the admin token."""
    req = urllib.request.Request(d.url + path, headers={"Authorization": f"Bearer {d.token}"} | (headers or {}))
    try:
        with urllib.request.urlopen(req, context=d.ctx, timeout=30) as resp:
            return resp.status, resp.read().decode(), resp.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), exc.headers


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))

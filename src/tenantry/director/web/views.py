"""What pages and their API routes show, computed once for both (the fleet, a tenant, a run, the portal).

Everything comes from the Director's store and live status, or from what jobs recorded: nothing here
recomputes what the collection computes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from typing import Any

from tenantry.director.alarms.records import OPEN_ALARM_TENANTS
from tenantry.director.errors import DirectorError
from tenantry.director.jobs import RunRow
from tenantry.director.service import Director
from tenantry.director.store import TenantQuery, TenantRow

FAILOVER_KINDS = ("test", "cleanup", "failover", "failback")
STATES = ("online", "offline", "awaiting_enrollment", "revoked", "local")
PAGE_SIZES = (25, 50, 100, 200)


def fleet(
    director: Director, *, q: str = "", state: str = "", alarms: bool = False, page: int = 1, size: int = 50
) -> dict[str, Any]:
    """One page of the fleet, filtered, counted and paged by the database: a request reads the page's
    tenants and aggregates, never every tenant (10,000 tenants cost about what 100 do).

    The summary comes from aggregates and the session registry.  A session exists only for an enrolled
    remote tenant that is not revoked (its certificate proves the enrollment; revoking closes it), so
    "offline" is the stored offline count less the live sessions.  The filters "online" and "offline"
    read two short columns of the tenants the other filters select, and the session registry.
    """
    size = size if size in PAGE_SIZES else 50
    records = director.alarms.records
    online = director.online_ids()
    stored_offline = director.store.count_tenants(TenantQuery(stored_states=("offline",)))
    summary = {
        "tenants": director.store.count_tenants(),
        "online": len(online),
        "offline": max(0, stored_offline - len(online)),
        "alarms": records.open_tenant_alarm_count(),
    }
    query = TenantQuery(text=q, within=(OPEN_ALARM_TENANTS,) if alarms else ())
    if state in ("online", "offline"):
        chosen = [
            tid
            for tid, stored in director.store.tenant_states(query)
            if (tid in online if state == "online" else stored == "offline" and tid not in online)
        ]
        matched = len(chosen)
        pages, page = _pages(matched, page, size)
        rows = director.store.tenants_by_ids(chosen[(page - 1) * size : page * size])
    else:
        if state:
            query = dataclasses.replace(query, stored_states=(state,))
        matched = director.store.count_tenants(query)
        pages, page = _pages(matched, page, size)
        rows = director.store.tenants_where(query, limit=size, offset=(page - 1) * size)
    ids = [r.id for r in rows]
    statuses = director.statuses(rows)
    open_alarms = records.open_counts_by_tenant(ids)
    expiry = records.certificate_expiry(ids)
    facts = director.jobs.records.all_facts(ids)
    last_test = director.jobs.records.last_of_kinds(("test",), ids)
    last_failover = director.jobs.records.last_of_kinds(("failover",), ids)
    items = []
    for r in rows:
        st = statuses[r.id]
        f = facts.get(r.id) or {}
        items.append(
            {
                "name": r.name,
                "kind": r.kind,
                "description": r.description,
                "state": st["state"],
                "online": st["online"],
                "since": st["since"],
                "address": st["address"],
                "version": st["version"],
                "certificate_expires": expiry.get(r.id),
                "targets": len(f.get("targets") or []) if f else None,
                "workloads": f.get("workloads") if f else None,
                "workload_quota": r.workload_quota,
                "last_test": _run_brief(last_test.get(r.id)),
                "last_failover": _run_brief(last_failover.get(r.id)),
                "alarms": open_alarms.get(r.id, 0),
            }
        )
    return {
        "summary": summary,
        "tenants": items,
        "page": page,
        "pages": pages,
        "size": size,
        "matched": matched,
        "q": q,
        "state": state,
        "alarms_only": alarms,
    }


def _pages(matched: int, page: int, size: int) -> tuple[int, int]:
    """How many pages ``matched`` tenants fill, and ``page`` brought within them (a page past the last
    shows the last: a link kept while tenants were removed still shows tenants)."""
    pages = max(1, -(-matched // size))
    return pages, min(max(1, page), pages)


def _run_brief(run: RunRow | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "id": run.id,
        "state": run.state,
        "at": run.ended_at or run.started_at or run.created_at,
        "rto_seconds": run.rto_seconds,
    }


def etag(data: Any) -> str:
    """A strong validator of a JSON answer (polling with If-None-Match costs a 304, not a page)."""
    body = json.dumps(data, sort_keys=True, default=str).encode()
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def tenant_detail(director: Director, row: TenantRow) -> dict[str, Any]:
    runs = director.jobs.records.of_tenant(row.id, kinds=FAILOVER_KINDS, limit=50)
    return {
        "tenant": row,
        "status": director.status(row),
        "facts": director.jobs.records.facts(row.id),
        "events": list(reversed(director.store.events(tenant_id=row.id, limit=50))),
        "runs": runs,
        "alarms": director.alarms.records.history(tenant_id=row.id, limit=50),
        "certificate_expires": director.alarms.records.certificate_expiry([row.id]).get(row.id),
        "users": director.accounts.users(row.id),
        "running": director.jobs.records.locked_by(row.id),
    }


def portal_state(director: Director, tenant_id: str) -> dict[str, Any]:
    """The tenant portal's view: its VMs (as last read), networks, running run and history."""
    row = director.store.tenant(tenant_id)
    if row is None:
        raise DirectorError(404, "not found")
    facts = director.jobs.records.facts(tenant_id)
    running = director.jobs.records.locked_by(tenant_id)
    listing = next(iter(director.jobs.records.of_tenant(tenant_id, kinds=("vms",), limit=1)), None)
    runs = director.jobs.records.of_tenant(tenant_id, kinds=FAILOVER_KINDS, limit=20)
    vms = facts["vms"] or []
    max_age = director.settings.portal_vms_max_age
    # A list read before the last run ended shows what that run changed (copies, VMs in production) wrongly:
    # it is read again, and until then the follow-up buttons go by the runs alone.
    last_ended = max((r.ended_at for r in runs if r.ended_at is not None), default=None)
    current = facts["vms_at"] is not None and (last_ended is None or float(facts["vms_at"]) >= last_ended)
    fresh = current and time.time() - float(facts["vms_at"]) <= max_age
    return {
        "tenant": {"name": row.name, "description": row.description},
        "vms": vms,
        "networks": facts["networks"] or [],
        "targets": facts["targets"] or [],
        "vms_at": facts["vms_at"],
        "fresh": fresh,
        "reading": listing is not None and listing.active,
        "listing_error": listing.message if listing is not None and listing.state == "failed" else "",
        "running": running.public(row.name) if running is not None else None,
        "runs": [r.public(row.name) for r in runs],
        "next": next_actions(vms if current else [], runs),
        "jobs_enabled": director.jobs.enabled,
    }


def next_actions(vms: list[dict[str, Any]], runs: list[RunRow]) -> list[str]:
    """Which follow-up buttons to offer: clean up after a test, fail back after a failover.

    From what the VM list shows (copies or VMs in production) and the last run of each kind.
    """
    out = []
    copies = any(v.get("where") == "test copy" for v in vms)
    in_production = any(v.get("where") == "production" for v in vms)
    last = {r.kind: r for r in reversed(runs)}  # newest wins
    if copies or (
        "test" in last and last["test"].state == "successful" and _after(last.get("cleanup"), last["test"]) is False
    ):
        out.append("cleanup")
    if in_production or (
        "failover" in last
        and last["failover"].state == "successful"
        and _after(last.get("failback"), last["failover"]) is False
    ):
        out.append("failback")
    return out


def _after(later: RunRow | None, earlier: RunRow) -> bool:
    return later is not None and later.created_at > earlier.created_at and later.state == "successful"


def run_view(director: Director, run: RunRow) -> dict[str, Any]:
    name = director._tenant_name(run.tenant_id) if run.tenant_id else None
    report = run.result.get("report") if isinstance(run.result.get("report"), dict) else None
    return {
        "run": run.public(name),
        "report": report,
        "listing": run.result.get("listing"),
        "audit": run.result.get("audit"),
        "timeline": director.jobs.report_file(run, "timeline.svg") is not None,
    }

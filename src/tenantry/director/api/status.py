"""Admin routes for the Director's status and its event log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

import tenantry
from tenantry.director.api.deps import Admin, DirectorDep
from tenantry.director.api.schemas import EventOut, StatusOut, TenantStatus

router = APIRouter(prefix="/api/v1", tags=["status"])

MAX_EVENT_ID = (1 << 63) - 1  # SQLite INTEGER


@router.get("/events")
async def events(
    _: Admin,
    director: DirectorDep,
    after: Annotated[int, Query(ge=0, le=MAX_EVENT_ID, description="the last event id seen")] = 0,
    tenant: Annotated[str | None, Query(max_length=64)] = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[EventOut]:
    tenant_id = director.tenant_or_404(tenant).id if tenant else None
    rows = director.store.events(after_id=after, tenant_id=tenant_id, kind=kind, limit=limit)
    return [EventOut(**r.__dict__) for r in rows]


@router.get("/status")
async def status(
    _: Admin,
    director: DirectorDep,
    after: Annotated[str | None, Query(max_length=64, description="the last tenant name of the previous page")] = None,
    limit: Annotated[int | None, Query(ge=1, le=1000, description="tenants per page (default: all)")] = None,
) -> StatusOut:
    rows = director.store.tenants_page(after=after, limit=limit)
    statuses = director.statuses(rows)
    return StatusOut(
        version=tenantry.__version__,
        started_at=director.started_at,
        setup_port=director.setup_port,
        uplink_ports=director.hub.ports,
        tenants={r.name: TenantStatus.model_validate(statuses[r.id]) for r in rows},
        next_after=rows[-1].name if limit is not None and len(rows) == limit else None,
    )

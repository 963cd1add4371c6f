"""Public routes: health, and the enrollment endpoints a Transporter uses with its one-time credentials."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

import tenantry
from tenantry.director.api.deps import DirectorDep
from tenantry.director.api.schemas import ConnectionCheck, EnrollCa, EnrollInfo, EnrollRequest, EnrollResponse, Health
from tenantry.director.service import Director
from tenantry.protocol.identity import is_tenant_id

router = APIRouter(prefix="/api/v1")


@router.get("/health", tags=["status"], responses={503: {"description": "this Director cannot reach the database"}})
async def health(director: DirectorDep, response: Response) -> Health:
    hub = director.hub
    cluster = director.cluster
    healthy = director.healthy()
    if not healthy:
        response.status_code = 503  # a load balancer stops sending new clients here
    return Health(
        status="ok" if healthy else "unavailable",
        director_id=director.director_id,
        directors_alive=len(cluster.alive()) if cluster is not None else 1,
        tenants_online_cluster=_cluster_online(director) if cluster is not None and healthy else None,
        version=tenantry.__version__,
        tenants_online=len(hub.sessions),
        uplink_handshakes=hub.handshakes,
        uplink_handshakes_peak=hub.peak_handshakes,
        uplink_admitted_peak=hub.peak_admitted,
        uplink_throttled=hub.throttled,
    )


def _cluster_online(director: Director) -> int | None:
    assert director.cluster is not None
    try:
        return director.cluster.online_count()
    except Exception:  # the database is away: health still answers
        return None


@router.get("/enroll/info", tags=["enrollment"])
async def enroll_info(director: DirectorDep) -> EnrollInfo:
    return EnrollInfo(
        version=tenantry.__version__,
        setup_port=director.setup_port,
        uplink_port=director.settings.uplink_port,
        ca_sha256=director.authority.ca_sha256,
    )


@router.get("/enroll/ca", tags=["enrollment"])
async def enroll_ca(director: DirectorDep) -> EnrollCa:
    return EnrollCa(ca_pem=director.authority.ca_pem, ca_sha256=director.authority.ca_sha256)


@router.post("/enroll", tags=["enrollment"])
async def enroll(director: DirectorDep, body: EnrollRequest, request: Request) -> EnrollResponse:
    source = request.client.host if request.client else "?"
    result = await director.enroll(
        tenant_id=body.tenant_id, secret=body.token.get_secret_value(), csr_pem=body.csr_pem, source=source
    )
    return EnrollResponse(**result.__dict__)


@router.get("/enroll/check/{tenant_id}", tags=["enrollment"])
async def connection_check(director: DirectorDep, tenant_id: str) -> ConnectionCheck:
    row = director.store.tenant(tenant_id) if is_tenant_id(tenant_id) else None
    return ConnectionCheck(
        tenant_id=tenant_id,
        known=row is not None and row.revoked_at is None,
        enrolled=row is not None and row.enrolled_at is not None and row.revoked_at is None,
        online=row is not None and tenant_id in director.hub.sessions,
    )

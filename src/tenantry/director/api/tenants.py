"""Admin routes for tenants: create, read, change, revoke, remove, credentials, renewal, status, commands."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from tenantry.director.api.deps import Admin, DirectorDep, transporter_answer, transporter_error, uplink
from tenantry.director.api.schemas import (
    Credentials,
    DirectConnectOut,
    DirectConnectSpec,
    TenantCreate,
    TenantCreated,
    TenantOut,
    TenantPatch,
    TenantStatus,
)
from tenantry.director.errors import DirectorError
from tenantry.director.service import Director, Issued
from tenantry.director.store import TenantRow
from tenantry.protocol.messages import CommandRequest, CommandResult, Dashboard

router = APIRouter(prefix="/api/v1/tenants")


def tenant_out(director: Director, row: TenantRow, status: dict[str, Any] | None = None) -> TenantOut:
    dc = row.direct_connect
    return TenantOut(
        id=row.id,
        name=row.name,
        kind=row.kind,
        description=row.description,
        contact=row.contact,
        workload_quota=row.workload_quota,
        created_at=row.created_at,
        updated_at=row.updated_at,
        enrolled_at=row.enrolled_at,
        revoked_at=row.revoked_at,
        direct_connect=DirectConnectOut(address=dc["address"], auth=dc["auth"], psk_set=bool(dc.get("psk")))
        if dc
        else None,
        status=TenantStatus.model_validate(status if status is not None else director.status(row)),
    )


def _dc_stored(spec: DirectConnectSpec | None) -> dict[str, Any] | None:
    if spec is None:
        return None
    out: dict[str, Any] = {"address": spec.address, "auth": spec.auth}
    if spec.psk is not None:
        out["psk"] = spec.psk.get_secret_value()
    return out


def _credentials(director: Director, issued: Issued) -> Credentials:
    return Credentials(
        enrollment_key=issued.enrollment_key,
        tenant_id=issued.tenant.id,
        token=issued.secret,
        ca_sha256=director.authority.ca_sha256,
        setup_url=director.public_url(),
        expires_at=issued.expires_at,
    )


@router.get("", tags=["tenants"])
async def list_tenants(
    _: Admin,
    director: DirectorDep,
    response: Response,
    name: str | None = None,
    after: Annotated[str | None, Query(max_length=64, description="the last tenant name of the previous page")] = None,
    limit: Annotated[int | None, Query(ge=1, le=1000, description="tenants per page (default: all)")] = None,
) -> list[TenantOut]:
    if name is not None:
        found = director.store.tenant_by_name(name)
        rows = [found] if found is not None else []
    else:
        rows = director.store.tenants_page(after=after, limit=limit)
        if limit is not None and len(rows) == limit:
            query = urlencode({"after": rows[-1].name, "limit": limit})
            response.headers["Link"] = f'</api/v1/tenants?{query}>; rel="next"'
    statuses = director.statuses(rows)
    return [tenant_out(director, r, statuses[r.id]) for r in rows]


@router.post("", status_code=201, tags=["tenants"])
async def create_tenant(_: Admin, director: DirectorDep, body: TenantCreate) -> TenantCreated:
    result = await director.create_tenant(
        name=body.name,
        kind=body.kind,
        description=body.description,
        contact=body.contact,
        workload_quota=body.workload_quota,
        direct_connect=_dc_stored(body.direct_connect),
    )
    if isinstance(result, Issued):
        return TenantCreated(tenant=tenant_out(director, result.tenant), credentials=_credentials(director, result))
    return TenantCreated(tenant=tenant_out(director, result), credentials=None)


@router.get("/{name}", tags=["tenants"])
async def get_tenant(_: Admin, director: DirectorDep, name: str) -> TenantOut:
    return tenant_out(director, director.tenant_or_404(name))


@router.patch("/{name}", tags=["tenants"])
async def patch_tenant(_: Admin, director: DirectorDep, name: str, body: TenantPatch) -> TenantOut:
    changes = body.model_dump(exclude_unset=True)
    if "direct_connect" in changes:
        current = director.tenant_or_404(name).direct_connect or {}
        spec = body.direct_connect
        stored = _dc_stored(spec)
        if stored is not None and spec is not None and spec.auth == "psk" and "psk" not in stored:
            if not current.get("psk"):
                raise DirectorError(422, "direct_connect.auth 'psk' needs psk")
            stored["psk"] = current["psk"]
        changes["direct_connect"] = stored
    return tenant_out(director, director.update_tenant(name, changes))


@router.delete("/{name}", tags=["tenants"])
async def delete_tenant(_: Admin, director: DirectorDep, name: str) -> TenantOut:
    row = director.revoke(name, remove=True)
    out = tenant_out(director, row)
    out.revoked_at = out.revoked_at or out.updated_at
    return out


@router.post("/{name}/revoke", tags=["tenants"])
async def revoke_tenant(_: Admin, director: DirectorDep, name: str) -> TenantOut:
    director.revoke(name, remove=False)
    return tenant_out(director, director.tenant_or_404(name))


@router.post("/{name}/credentials", status_code=201, tags=["tenants"])
async def new_credentials(_: Admin, director: DirectorDep, name: str) -> Credentials:
    return _credentials(director, await director.reissue_credentials(name))


@router.post("/{name}/renew", tags=["tenants"])
async def renew(_: Admin, director: DirectorDep, name: str) -> TenantOut:
    await director.renew(name)
    return tenant_out(director, director.tenant_or_404(name))


@router.get("/{name}/status", tags=["status"])
async def tenant_status(_: Admin, director: DirectorDep, name: str) -> TenantStatus:
    return TenantStatus.model_validate(director.status(director.tenant_or_404(name)))


@router.get("/{name}/dashboard", tags=["status"])
async def dashboard(_: Admin, director: DirectorDep, name: str) -> Dashboard:
    _row, session = director.session_for(name)
    limit = director.settings.max_message_bytes
    resp = await uplink(session.channel.request("GET", "/v1/dashboard", timeout=15, limit=limit))
    if resp.status != 200:
        raise DirectorError(502, f"Transporter answered HTTP {resp.status}")
    return transporter_answer(Dashboard, resp)


@router.post("/{name}/commands", tags=["tenants"])
async def command(_: Admin, director: DirectorDep, name: str, body: CommandRequest) -> JSONResponse:
    _row, session = director.session_for(name)
    payload = body.model_dump_json().encode()
    limit = director.settings.max_message_bytes
    resp = await uplink(session.channel.request("POST", "/v1/commands", payload, timeout=3600, limit=limit))
    if resp.status == 200:
        return JSONResponse(transporter_answer(CommandResult, resp).model_dump())
    status = resp.status if resp.status >= 400 else 502
    return JSONResponse(transporter_error(resp.body, resp.status), status_code=status)

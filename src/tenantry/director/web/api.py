"""REST routes of the console and portal: fleet, runs, portal, alarms, users, drift audits, /metrics.

Each route asks the same action as the page and form that show or change the same thing
(``Allowed``, accounts/access.py).  The admin token may call every MSP route; a console session
may call the routes its role allows, with its CSRF token (``X-CSRF-Token``) on every change.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from tenantry.director.accounts import Principal
from tenantry.director.alarms import CONTENT_TYPE
from tenantry.director.api.deps import Allowed, DirectorDep
from tenantry.director.errors import DirectorError
from tenantry.director.web import portal as portal_pages
from tenantry.director.web import views

router = APIRouter()
MAX_ID = (1 << 63) - 1  # SQLite INTEGER

Read = Annotated[Principal, Depends(Allowed("fleet.read"))]
Operate = Annotated[Principal, Depends(Allowed("tenants.operate"))]
Ack = Annotated[Principal, Depends(Allowed("alarms.ack"))]
Users = Annotated[Principal, Depends(Allowed("users.manage"))]
AuditRun = Annotated[Principal, Depends(Allowed("audit.run"))]
PortalRead = Annotated[Principal, Depends(Allowed("portal.read"))]
PortalRun = Annotated[Principal, Depends(Allowed("portal.run"))]
Session = Annotated[Principal, Depends(Allowed("session"))]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunRequest(Strict):
    kind: Literal["test", "cleanup", "failover", "failback", "vms"]
    vms: list[str] = Field(default_factory=list, max_length=1000)
    destination_vlan: int | None = Field(None, ge=1, le=4094)


class PortalRunRequest(Strict):
    mode: Literal["test", "failover", "cleanup", "failback"]
    vms: list[str] = Field(default_factory=list, max_length=1000)
    destination_vlan: int | None = Field(None, ge=1, le=4094)
    confirm: str = Field("", max_length=100)


class UserCreate(Strict):
    username: str = Field(min_length=1, max_length=64)
    role: Literal["admin", "operator", "readonly", "tenant"]
    tenant: str | None = Field(None, max_length=64)
    password: SecretStr
    full_name: str = Field("", max_length=200)
    email: str = Field("", max_length=200)
    disabled: bool = False


class UserPatch(Strict):
    role: Literal["admin", "operator", "readonly", "tenant"] | None = None
    tenant: str | None = Field(None, max_length=64)
    password: SecretStr | None = None
    full_name: str | None = Field(None, max_length=200)
    email: str | None = Field(None, max_length=200)
    disabled: bool | None = None
    unlock: bool | None = None


class Finding(BaseModel):
    model_config = ConfigDict(extra="allow")
    check: str = Field(max_length=100)
    key: str = Field("", max_length=400)
    tenant: str | None = Field(None, max_length=64)
    subject: str = Field("", max_length=200)
    message: str = Field(max_length=2000)


class AuditUpload(Strict):
    source: str = Field("ansible-playbook", max_length=100)
    summary: list[str] = Field(default_factory=list, max_length=1000)
    findings: list[Finding] = Field(default_factory=list, max_length=10000)


def _cached(request: Request, data: Any) -> Response:
    tag = views.etag(data)
    if request.headers.get("if-none-match") == tag:
        return Response(status_code=304, headers={"ETag": tag, "Cache-Control": "no-cache"})
    return JSONResponse(data, headers={"ETag": tag, "Cache-Control": "no-cache"})


# ------------------------------------------------------------------------------ fleet and runs
@router.get("/api/v1/fleet", tags=["console"])
async def fleet(
    request: Request,
    director: DirectorDep,
    who: Read,
    q: Annotated[str, Query(max_length=100)] = "",
    state: Annotated[str, Query(max_length=32)] = "",
    alarms: bool = False,
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
    size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    """One page of the fleet; polled with ``If-None-Match`` (304 while nothing changed)."""
    return _cached(request, views.fleet(director, q=q, state=state, alarms=alarms, page=page, size=size))


@router.get("/api/v1/tenants/{name}/runs", tags=["runs"])
async def tenant_runs(director: DirectorDep, who: Read, name: str, limit: int = Query(50, ge=1, le=500)) -> Any:
    row = director.tenant_or_404(name)
    return [r.public(row.name) for r in director.jobs.records.of_tenant(row.id, limit=limit)]


@router.post("/api/v1/tenants/{name}/runs", status_code=201, tags=["runs"])
async def tenant_run_start(director: DirectorDep, who: Operate, name: str, body: RunRequest) -> JSONResponse:
    row = director.tenant_or_404(name)
    params: dict[str, Any] = {"vms": body.vms}
    if body.destination_vlan is not None:
        params["destination_vlan"] = body.destination_vlan
    run, started = director.jobs.start(
        body.kind, tenant_id=row.id, tenant_name=row.name, params=params, actor=who.username
    )
    return JSONResponse({"started": started, "run": run.public(row.name)}, status_code=201 if started else 200)


@router.get("/api/v1/runs/{run_id}", tags=["runs"])
async def run_detail(request: Request, director: DirectorDep, who: Read, run_id: str) -> Response:
    run = director.jobs.get(run_id)
    if run is None:
        raise DirectorError(404, "not found")
    return _cached(request, views.run_view(director, run))


@router.get("/api/v1/runs/{run_id}/events", tags=["runs"])
async def run_events(director: DirectorDep, who: Read, run_id: str, after: int = Query(0, ge=0, le=1 << 62)) -> Any:
    run = director.jobs.get(run_id)
    if run is None:
        raise DirectorError(404, "not found")
    return [e.__dict__ for e in director.jobs.records.events(run.id, after)]


# ------------------------------------------------------------------------------ the portal
@router.get("/api/v1/portal", tags=["portal"])
async def portal(request: Request, director: DirectorDep, who: PortalRead) -> Response:
    """The user's tenant: VMs (as last read; a new read starts when they are older than portal_vms_max_age),
    networks, the running run and the history."""
    assert who.tenant_id is not None
    state = views.portal_state(director, who.tenant_id)
    if portal_pages.maybe_refresh(director, who, state):
        state = views.portal_state(director, who.tenant_id)
    return _cached(request, state)


@router.post("/api/v1/portal/vms", status_code=202, tags=["portal"])
async def portal_refresh(director: DirectorDep, who: PortalRun) -> Any:
    return portal_pages.refresh_vms(director, who).public(who.tenant_name)


@router.get("/api/v1/portal/runs", tags=["portal"])
async def portal_runs(director: DirectorDep, who: PortalRead, limit: int = Query(50, ge=1, le=500)) -> Any:
    assert who.tenant_id is not None
    runs = director.jobs.records.of_tenant(who.tenant_id, kinds=views.FAILOVER_KINDS, limit=limit)
    return [r.public(who.tenant_name) for r in runs]


@router.post("/api/v1/portal/runs", status_code=201, tags=["portal"])
async def portal_run_start(director: DirectorDep, who: PortalRun, body: PortalRunRequest) -> JSONResponse:
    run, started = portal_pages.start_run(director, who, body.mode, body.vms, body.destination_vlan, body.confirm)
    return JSONResponse({"started": started, "run": run.public(who.tenant_name)}, status_code=201 if started else 200)


@router.get("/api/v1/portal/runs/{run_id}", tags=["portal"])
async def portal_run(request: Request, director: DirectorDep, who: PortalRead, run_id: str) -> Response:
    run = portal_pages.own_run(director, who, run_id)
    return _cached(request, views.run_view(director, run))


@router.get("/api/v1/portal/runs/{run_id}/events", tags=["portal"])
async def portal_run_events(
    director: DirectorDep, who: PortalRead, run_id: str, after: int = Query(0, ge=0, le=1 << 62)
) -> Any:
    run = portal_pages.own_run(director, who, run_id)
    return [e.__dict__ for e in director.jobs.records.events(run.id, after)]


# ------------------------------------------------------------------------------ alarms
@router.get("/api/v1/alarms", tags=["alarms"])
async def alarms(
    director: DirectorDep, who: Read, state: Literal["open", "all"] = "open", limit: int = Query(200, ge=1, le=1000)
) -> Any:
    rows = director.alarms.records.open_alarms() if state == "open" else director.alarms.records.history(limit=limit)
    names = director.store.tenant_names(a.tenant_id for a in rows if a.tenant_id)
    return [a.public(names.get(a.tenant_id or "")) for a in rows]


@router.post("/api/v1/alarms/{alarm_id}/ack", tags=["alarms"])
async def alarm_ack(director: DirectorDep, who: Ack, alarm_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Any:
    alarm = director.alarms.ack(alarm_id, who.label)
    if alarm is None:
        raise DirectorError(404, "no such alarm")
    return alarm.public(director._tenant_name(alarm.tenant_id) if alarm.tenant_id else None)


# ------------------------------------------------------------------------------ users
def _user_out(director: DirectorDep, username: str) -> dict[str, Any]:
    row = director.accounts.user_or_404(username)
    return row.public(director._tenant_name(row.tenant_id) if row.tenant_id else None)


@router.get("/api/v1/users", tags=["users"])
async def users(director: DirectorDep, who: Users, name: str | None = Query(None, max_length=64)) -> Any:
    rows = director.accounts.users()
    if name is not None:
        rows = [r for r in rows if r.username == name.lower()]
    return [r.public(director._tenant_name(r.tenant_id) if r.tenant_id else None) for r in rows]


@router.post("/api/v1/users", status_code=201, tags=["users"])
async def user_create(director: DirectorDep, who: Users, body: UserCreate) -> Any:
    tenant_id = director.tenant_or_404(body.tenant).id if body.tenant else None
    row = await director.accounts.create_user(
        username=body.username,
        role=body.role,
        password=body.password.get_secret_value(),
        tenant_id=tenant_id,
        full_name=body.full_name,
        email=body.email,
        disabled=body.disabled,
        actor=who.label,
    )
    return _user_out(director, row.username)


@router.get("/api/v1/users/{username}", tags=["users"])
async def user_get(director: DirectorDep, who: Users, username: str) -> Any:
    return _user_out(director, username)


@router.patch("/api/v1/users/{username}", tags=["users"])
async def user_patch(director: DirectorDep, who: Users, username: str, body: UserPatch) -> Any:
    changes: dict[str, Any] = body.model_dump(exclude_unset=True, exclude={"password", "tenant"})
    if "tenant" in body.model_fields_set:
        changes["tenant_id"] = director.tenant_or_404(body.tenant).id if body.tenant else None
    if body.password is not None:
        changes["password"] = body.password.get_secret_value()
    await director.accounts.update_user(username, changes, who.label)
    return _user_out(director, username)


@router.delete("/api/v1/users/{username}", tags=["users"])
async def user_delete(director: DirectorDep, who: Users, username: str) -> Any:
    out = _user_out(director, username)
    director.accounts.delete_user(username, who.label)
    return out


@router.get("/api/v1/me", tags=["users"])
async def me(who: Session) -> Any:
    return {"username": who.username, "role": who.role, "tenant": who.tenant_name}


# ------------------------------------------------------------------------------ drift audit
@router.post("/api/v1/audit", status_code=201, tags=["audit"])
async def audit_upload(director: DirectorDep, who: AuditRun, body: AuditUpload) -> Any:
    """Findings of ``playbooks/audit.yml`` run elsewhere (ansible-playbook, AWX): kept, and turned into alarms."""
    findings = [f.model_dump() for f in body.findings]
    report = director.ingest_audit(findings, body.source, None, "\n".join(body.summary))
    return {"id": report, "findings": len(findings)}


@router.get("/api/v1/audit", tags=["audit"])
async def audit_reports(director: DirectorDep, who: Read, limit: int = Query(10, ge=1, le=100)) -> Any:
    return director.alarms.records.audits(limit=limit)


@router.post("/api/v1/audit/runs", status_code=201, tags=["audit"])
async def audit_start(director: DirectorDep, who: AuditRun) -> Any:
    """Run playbooks/audit.yml now (the director role's systemd timer calls this)."""
    run, _ = director.jobs.start("audit", tenant_id=None, tenant_name=None, actor=who.label)
    return run.public(None)


# ------------------------------------------------------------------------------ metrics
@router.get("/metrics", tags=["status"], response_class=Response)
async def metrics(director: DirectorDep, who: Read) -> Response:
    """Prometheus text format (admin token as bearer, or an MSP session)."""
    return Response(director.metrics.render(), media_type=CONTENT_TYPE)

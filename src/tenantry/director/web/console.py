"""The MSP console: fleet, tenant pages, runs, Expert Settings, alarms, users, drift audits.

Each page and each form it posts is guarded by the same action as its REST route
(``Allowed(...)``: see ``accounts/access.py``); forms carry the session's CSRF token.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from tenantry.director import settings as registry
from tenantry.director.accounts import ROLES, Principal
from tenantry.director.api.deps import Allowed, DirectorDep
from tenantry.director.api.tenants import dashboard as api_dashboard
from tenantry.director.errors import DirectorError
from tenantry.director.web import views
from tenantry.director.web.render import fragment, page

router = APIRouter(prefix="/console", include_in_schema=False)

Read = Annotated[Principal, Depends(Allowed("fleet.read"))]
Operate = Annotated[Principal, Depends(Allowed("tenants.operate"))]
Ack = Annotated[Principal, Depends(Allowed("alarms.ack"))]
SettingsWrite = Annotated[Principal, Depends(Allowed("settings.write"))]
Users = Annotated[Principal, Depends(Allowed("users.manage"))]
Audit = Annotated[Principal, Depends(Allowed("audit.run"))]


def _back(path: str, note: str = "") -> RedirectResponse:
    from urllib.parse import quote

    return RedirectResponse(path + (f"?note={quote(note)}" if note else ""), status_code=303)


# ------------------------------------------------------------------------------- fleet
@router.get("")
async def fleet_page(
    request: Request,
    director: DirectorDep,
    who: Read,
    q: Annotated[str, Query(max_length=100)] = "",
    state: Annotated[str, Query(max_length=32)] = "",
    alarms: bool = False,
    page_no: Annotated[int, Query(alias="page", ge=1, le=100000)] = 1,
    size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    data = views.fleet(director, q=q, state=state, alarms=alarms, page=page_no, size=size)
    return page(request, "fleet.html", who, fleet=data, states=views.STATES, sizes=views.PAGE_SIZES)


@router.get("/fleet/rows")
async def fleet_rows(
    request: Request,
    director: DirectorDep,
    who: Read,
    q: Annotated[str, Query(max_length=100)] = "",
    state: Annotated[str, Query(max_length=32)] = "",
    alarms: bool = False,
    page_no: Annotated[int, Query(alias="page", ge=1, le=100000)] = 1,
    size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    """The fleet table alone, polled by the page (ETag: 304 while nothing changed)."""
    data = views.fleet(director, q=q, state=state, alarms=alarms, page=page_no, size=size)
    return fragment(request, "_fleet.html", who, fleet=data)


# ------------------------------------------------------------------------------- a tenant
@router.get("/tenants/{name}")
async def tenant_page(request: Request, director: DirectorDep, who: Read, name: str) -> Response:
    row = director.tenant_or_404(name)
    detail = views.tenant_detail(director, row)
    dash: dict[str, Any] | None = None
    dash_error = ""
    if detail["status"]["online"]:
        try:
            dash = (await asyncio.wait_for(api_dashboard(None, director, row.name), timeout=5)).model_dump()
        except (DirectorError, TimeoutError) as exc:
            dash_error = exc.message if isinstance(exc, DirectorError) else "the Transporter did not answer within 5 s"
    return page(
        request,
        "tenant.html",
        who,
        **detail,
        dashboard=dash,
        dashboard_error=dash_error,
        note=request.query_params.get("note", ""),
    )


@router.post("/tenants/{name}/credentials")
async def tenant_credentials(request: Request, director: DirectorDep, who: Operate, name: str) -> Response:
    issued = await director.reissue_credentials(name)
    return page(
        request,
        "credentials.html",
        who,
        tenant=issued.tenant,
        enrollment_key=issued.enrollment_key,
        expires_at=issued.expires_at,
    )


@router.post("/tenants/{name}/revoke")
async def tenant_revoke(
    director: DirectorDep, who: Operate, name: str, confirm: Annotated[str, Form(max_length=100)] = ""
) -> Response:
    row = director.tenant_or_404(name)
    if confirm != row.name:
        return _back(f"/console/tenants/{row.name}", "Not revoked: type the tenant's name to confirm.")
    director.revoke(row.name, remove=False)
    return _back(f"/console/tenants/{row.name}", f"Tenant {row.name} revoked by {who.username}.")


@router.post("/tenants/{name}/renew")
async def tenant_renew(director: DirectorDep, who: Operate, name: str) -> Response:
    row = director.tenant_or_404(name)
    await director.renew(row.name)
    return _back(f"/console/tenants/{row.name}", "Certificate renewed over the uplink.")


@router.post("/tenants/{name}/vms")
async def tenant_vms(director: DirectorDep, who: Operate, name: str) -> Response:
    row = director.tenant_or_404(name)
    run, _ = director.jobs.start("vms", tenant_id=row.id, tenant_name=row.name, actor=who.username)
    return _back(f"/console/runs/{run.id}")


# ------------------------------------------------------------------------------- runs
@router.get("/runs/{run_id}")
async def run_page(request: Request, director: DirectorDep, who: Read, run_id: str) -> Response:
    run = director.jobs.get(run_id)
    if run is None:
        raise DirectorError(404, "not found")
    view = views.run_view(director, run)
    return page(request, "run.html", who, **view, base=f"/console/runs/{run.id}", api=f"/api/v1/runs/{run.id}")


@router.get("/runs/{run_id}/progress")
async def run_progress(request: Request, director: DirectorDep, who: Read, run_id: str) -> Response:
    run = director.jobs.get(run_id)
    if run is None:
        raise DirectorError(404, "not found")
    return fragment(request, "_progress.html", who, run=views.run_view(director, run)["run"])


@router.get("/runs/{run_id}/{file}")
async def run_file(director: DirectorDep, who: Read, run_id: str, file: str) -> Response:
    run = director.jobs.get(run_id)
    path = director.jobs.report_file(run, file) if run is not None else None
    if path is None:
        raise DirectorError(404, "not found")
    return FileResponse(path, media_type=_MEDIA[path.suffix], filename=f"{run_id}-{file}")


_MEDIA = {".json": "application/json", ".svg": "image/svg+xml", ".txt": "text/plain; charset=utf-8"}


# ------------------------------------------------------------------------------- settings
def _settings_page(
    request: Request, director: DirectorDep, who: Principal, message: str = "", status: int = 200
) -> Response:
    described = registry.describe()
    return page(
        request,
        "settings.html",
        who,
        http_status=status,
        values=registry.public_values(director.settings),
        registry=described,
        message=message,
        note=request.query_params.get("note", ""),
    )


@router.get("/settings")
async def settings_page(request: Request, director: DirectorDep, who: Read) -> Response:
    return _settings_page(request, director, who)


def _form_value(definition: dict[str, Any], raw: str) -> Any:
    kind = definition["type"]
    raw = raw.strip()
    if kind == "integer":
        return int(raw) if raw.lstrip("-").isdigit() else raw
    if kind == "number":
        try:
            return float(raw)
        except ValueError:
            return raw
    if kind == "array":
        return [part.strip() for part in raw.replace(",", "\n").splitlines() if part.strip()]
    return raw


@router.post("/settings")
async def settings_save(request: Request, director: DirectorDep, who: SettingsWrite) -> Response:
    form = await request.form()
    described = registry.describe()
    current = director.settings.model_dump()
    changes: dict[str, Any] = {}
    for key, definition in described.items():
        if definition["type"] == "boolean":
            if f"present_{key}" in form:
                value: Any = form.get(key) == "on"
                if value != current[key]:
                    changes[key] = value
            continue
        raw = form.get(key)
        if not isinstance(raw, str):
            continue
        if definition.get("secret"):
            if form.get(f"clear_{key}") == "on":
                if current[key]:
                    changes[key] = ""
            elif raw:
                changes[key] = raw
            continue
        value = _form_value(definition, raw)
        if value != current[key]:
            changes[key] = value
    if not changes:
        return _back("/console/settings", "Nothing changed.")
    try:
        _new, changed = await director.change_settings(changes)
    except DirectorError as exc:
        return _settings_page(request, director, who, exc.message, status=exc.status)
    restart = [k for k in changed if described[k]["applies"] == "restart"]
    note = f"Changed: {', '.join(changed)}." + (f" Restart the Director for: {', '.join(restart)}." if restart else "")
    return _back("/console/settings", note)


@router.post("/settings/test-delivery")
async def settings_test(request: Request, director: DirectorDep, who: SettingsWrite) -> Response:
    result = await director.alarms.test_delivery()
    return _back("/console/settings", "Test: " + "; ".join(f"{k}: {v}" for k, v in result.items()))


# ------------------------------------------------------------------------------- alarms
@router.get("/alarms")
async def alarms_page(request: Request, director: DirectorDep, who: Read) -> Response:
    open_alarms = director.alarms.records.open_alarms()
    history = director.alarms.records.history(limit=200)
    names = director.store.tenant_names(a.tenant_id for a in (*open_alarms, *history) if a.tenant_id)
    return page(
        request,
        "alarms.html",
        who,
        open_alarms=open_alarms,
        history=history,
        names=names,
        note=request.query_params.get("note", ""),
    )


@router.post("/alarms/{alarm_id}/ack")
async def alarm_ack(
    director: DirectorDep, who: Ack, alarm_id: Annotated[int, Path(ge=1, le=(1 << 63) - 1)]
) -> Response:
    if director.alarms.ack(alarm_id, who.username) is None:
        raise DirectorError(404, "no such alarm")
    return _back("/console/alarms", f"Alarm {alarm_id} acknowledged.")


# ------------------------------------------------------------------------------- users
@router.get("/users")
async def users_page(request: Request, director: DirectorDep, who: Users) -> Response:
    users = director.accounts.users()
    names = director.store.tenant_names(u.tenant_id for u in users if u.tenant_id)
    return page(
        request,
        "users.html",
        who,
        users=users,
        names=names,
        roles=ROLES,
        note=request.query_params.get("note", ""),
        message="",
    )


@router.post("/users")
async def users_create(
    director: DirectorDep,
    who: Users,
    username: Annotated[str, Form(max_length=64)],
    role: Annotated[str, Form(max_length=16)],
    password: Annotated[str, Form(max_length=1024)],
    tenant: Annotated[str, Form(max_length=64)] = "",
    full_name: Annotated[str, Form(max_length=200)] = "",
    email: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    try:
        tenant_id = director.tenant_or_404(tenant.strip()).id if tenant.strip() else None
        await director.accounts.create_user(
            username=username,
            role=role,
            password=password,
            tenant_id=tenant_id,
            full_name=full_name,
            email=email,
            actor=who.username,
        )
    except DirectorError as exc:
        return _back("/console/users", f"Not created: {exc.message}")
    return _back("/console/users", f"User {username.lower()} created.")


@router.post("/users/{username}")
async def users_update(
    director: DirectorDep,
    who: Users,
    username: str,
    action: Annotated[str, Form(max_length=16)],
    password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    changes: dict[str, Any] = {}
    if action == "password":
        changes["password"] = password
    elif action in ("disable", "enable"):
        changes["disabled"] = action == "disable"
    elif action == "unlock":
        changes["unlock"] = True
    elif action == "delete":
        if username.lower() == who.username:
            return _back("/console/users", "You cannot remove your own account.")
        director.accounts.delete_user(username, who.username)
        return _back("/console/users", f"User {username} removed.")
    else:
        raise DirectorError(422, "invalid request: action")
    try:
        await director.accounts.update_user(username, changes, who.username)
    except DirectorError as exc:
        return _back("/console/users", f"Not changed: {exc.message}")
    return _back("/console/users", f"User {username}: {action} done.")


# ------------------------------------------------------------------------------- drift audit
@router.get("/audit")
async def audit_page(request: Request, director: DirectorDep, who: Read) -> Response:
    return page(
        request,
        "audit.html",
        who,
        reports=director.alarms.records.audits(limit=10),
        runs=director.jobs.records.recent(kinds=("audit",), limit=10),
        jobs_enabled=director.jobs.enabled,
        note=request.query_params.get("note", ""),
        dumps=json.dumps,
    )


@router.post("/audit")
async def audit_start(director: DirectorDep, who: Audit) -> Response:
    run, _ = director.jobs.start("audit", tenant_id=None, tenant_name=None, actor=who.username)
    return _back(f"/console/runs/{run.id}")

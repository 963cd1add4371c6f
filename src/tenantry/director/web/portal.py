"""The tenant portal: its VMs and networks, the big red button, live progress, the RTO report.

The tenant is always the logged-in user's (``who.tenant_id``); no page, form or API route takes a
tenant from the request.  A run of another tenant answers 404, like a run that does not exist.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from tenantry.director.accounts import Principal, authorize
from tenantry.director.api.deps import Allowed, DirectorDep
from tenantry.director.errors import DirectorError
from tenantry.director.jobs import RunRow
from tenantry.director.service import Director
from tenantry.director.web import views
from tenantry.director.web.render import fragment, page

router = APIRouter(prefix="/portal", include_in_schema=False)

PortalRead = Annotated[Principal, Depends(Allowed("portal.read"))]
PortalRun = Annotated[Principal, Depends(Allowed("portal.run"))]
MODES = ("test", "failover", "cleanup", "failback")


def own_run(director: Director, who: Principal, run_id: str) -> RunRow:
    """The run, if it is the user's tenant's (another tenant's run is 'not found', as is a missing one)."""
    run = director.jobs.get(run_id)
    if run is None or run.tenant_id is None:
        raise DirectorError(404, "not found")
    authorize(who, "portal.read", run.tenant_id)
    return run


def refresh_vms(director: Director, who: Principal) -> RunRow:
    assert who.tenant_id is not None
    run, _ = director.jobs.start("vms", tenant_id=who.tenant_id, tenant_name=who.tenant_name, actor=who.username)
    return run


def maybe_refresh(director: Director, who: Principal, state: dict[str, Any]) -> bool:
    """Read the VMs again when the list is older than ``portal_vms_max_age`` (and no read is running)."""
    if state["jobs_enabled"] and not state["fresh"] and not state["reading"] and not state["listing_error"]:
        refresh_vms(director, who)
        return True
    return False


def start_run(
    director: Director, who: Principal, mode: str, vms: list[str], vlan: int | None, confirm: str
) -> tuple[RunRow, bool]:
    """The big red button, checked against what the tenant may use; ``(run, started)``."""
    assert who.tenant_id is not None and who.tenant_name is not None
    if mode not in MODES:
        raise DirectorError(422, f"invalid request: mode: one of {', '.join(MODES)}")
    running = director.jobs.records.locked_by(who.tenant_id)
    if running is not None:
        return running, False
    facts = director.jobs.records.facts(who.tenant_id)
    known = {str(v.get("name")) for v in facts["vms"] or []}
    params: dict[str, Any] = {}
    if mode in ("test", "failover"):
        if not vms:
            raise DirectorError(422, "Tick at least one VM.")
        unknown = sorted(set(vms) - known)
        if unknown:
            raise DirectorError(422, f"Not one of your VMs: {', '.join(unknown[:5])}. Reload the VM list.")
        params["vms"] = vms
    if mode == "failover":
        allowed = {int(n["vlan"]) for n in facts["networks"] or []}
        if vlan is None or vlan not in allowed:
            raise DirectorError(422, "Pick one of your destination networks.")
        if confirm != who.tenant_name:
            raise DirectorError(422, f"Type the tenant's name ({who.tenant_name}) to confirm the failover.")
        params["destination_vlan"] = vlan
    return director.jobs.start(
        mode, tenant_id=who.tenant_id, tenant_name=who.tenant_name, params=params, actor=who.username
    )


def _page(request: Request, director: Director, who: Principal, message: str = "", status: int = 200) -> Response:
    assert who.tenant_id is not None
    state = views.portal_state(director, who.tenant_id)
    if maybe_refresh(director, who, state):
        state = views.portal_state(director, who.tenant_id)
    return page(
        request,
        "portal.html",
        who,
        http_status=status,
        **state,
        message=message,
        note=request.query_params.get("note", ""),
    )


@router.get("")
async def portal(request: Request, director: DirectorDep, who: PortalRead) -> Response:
    return _page(request, director, who)


@router.post("/refresh")
async def portal_refresh(director: DirectorDep, who: PortalRun) -> Response:
    refresh_vms(director, who)
    return RedirectResponse("/portal", status_code=303)


@router.post("/runs")
async def portal_start(request: Request, director: DirectorDep, who: PortalRun) -> Response:
    form = await request.form()
    vms = [str(v) for v in form.getlist("vms") if isinstance(v, str)][:1000]
    raw_vlan = form.get("destination_vlan")
    vlan = int(raw_vlan) if isinstance(raw_vlan, str) and raw_vlan.isdigit() else None
    confirm = form.get("confirm")
    mode = form.get("mode")
    try:
        run, started = start_run(
            director, who, mode if isinstance(mode, str) else "", vms, vlan, confirm if isinstance(confirm, str) else ""
        )
    except DirectorError as exc:
        if exc.status != 422:
            raise
        return _page(request, director, who, exc.message, status=422)
    note = "" if started else "?note=A+run+of+yours+is+in+progress%3A+here+it+is."
    return RedirectResponse(f"/portal/runs/{run.id}{note}", status_code=303)


@router.get("/runs/{run_id}")
async def portal_run(request: Request, director: DirectorDep, who: PortalRead, run_id: str) -> Response:
    run = own_run(director, who, run_id)
    view = views.run_view(director, run)
    state = views.portal_state(director, run.tenant_id or "")
    return page(
        request,
        "run.html",
        who,
        **view,
        base=f"/portal/runs/{run.id}",
        api=f"/api/v1/portal/runs/{run.id}",
        next=state["next"] if not run.active else [],
        note=request.query_params.get("note", ""),
    )


@router.get("/runs/{run_id}/progress")
async def portal_run_progress(request: Request, director: DirectorDep, who: PortalRead, run_id: str) -> Response:
    run = own_run(director, who, run_id)
    return fragment(request, "_progress.html", who, run=views.run_view(director, run)["run"])


@router.get("/runs/{run_id}/{file}")
async def portal_run_file(director: DirectorDep, who: PortalRead, run_id: str, file: str) -> Response:
    run = own_run(director, who, run_id)
    path = director.jobs.report_file(run, file)
    if path is None:
        raise DirectorError(404, "not found")
    media = {".json": "application/json", ".svg": "image/svg+xml", ".txt": "text/plain; charset=utf-8"}
    return FileResponse(path, media_type=media[path.suffix], filename=f"{run_id}-{file}")

"""Admin routes for backups: repositories, jobs, runs, snapshots, restores (docs/backup.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from tenantry.director.api.deps import Admin, DirectorDep
from tenantry.director.backups.models import (
    JobOut,
    JobSpec,
    RepositoryOut,
    RepositorySpec,
    RestoreSpec,
    Retention,
    RunOut,
    RunRequest,
    SnapshotOut,
)
from tenantry.director.backups.store import RunRow
from tenantry.director.errors import DirectorError
from tenantry.director.service import Director

router = APIRouter(prefix="/api/v1", tags=["backups"])

RunId = Annotated[int, Path(ge=1, le=(1 << 63) - 1, description="a run's id")]


def _run_out(director: Director, run: RunRow) -> RunOut:
    tenant = director.store.tenant(run.tenant_id)
    return RunOut(
        id=run.id,
        tenant=tenant.name if tenant else run.tenant_id,
        kind=run.kind,
        job=run.job_name,
        state=run.state,
        trigger=run.trigger,
        started_at=run.started_at,
        finished_at=run.finished_at,
        message=run.message,
        detail=run.detail,
        progress=director.backups.live(run.id),
    )


def _repository_out(director: Director, tenant_id: str, name: str) -> RepositoryOut:
    row = director.repositories.row(tenant_id)
    if row is None:
        raise DirectorError(404, f"tenant {name!r} has no backup repository")
    snaps = director.backups.store.snapshots(tenant_id, location=row.location)
    return RepositoryOut(
        tenant=name,
        location=row.location,  # type: ignore[arg-type]
        quota_bytes=row.quota_bytes,
        secondary=bool(row.secondary),
        check_subset=row.check_subset,
        check_schedule=row.check_schedule,
        path=str(director.repositories.path(tenant_id)) if row.location == "msp" else None,
        used_bytes=row.used_bytes,
        secondary_used_bytes=row.secondary_used_bytes,
        snapshots=len(snaps),
        last_check_at=row.last_check_at,
        last_check_ok=None if row.last_check_ok is None else bool(row.last_check_ok),
        last_check_message=row.last_check_message,
        last_copy_at=row.last_copy_at,
        last_copy_ok=None if row.last_copy_ok is None else bool(row.last_copy_ok),
        last_copy_message=row.last_copy_message,
        last_retention_at=row.last_retention_at,
    )


# ---------------------------------------------------------------------- repositories
@router.get("/tenants/{name}/backup-repository")
async def get_repository(_: Admin, director: DirectorDep, name: str) -> RepositoryOut:
    row = director.tenant_or_404(name)
    return _repository_out(director, row.id, name)


@router.put("/tenants/{name}/backup-repository")
async def put_repository(
    _: Admin, director: DirectorDep, name: str, body: RepositorySpec, response: Response
) -> RepositoryOut:
    row = director.tenant_or_404(name)
    existed = director.repositories.row(row.id) is not None
    changed = director.backups.set_repository(row.id, body)
    if body.location == "msp":
        await director.repositories.ensure(row.id)
    if changed:
        director.event("repository_changed", f"backup repository of {name}: {body.model_dump_json()}", row.id)
    response.status_code = 200 if existed else 201
    return _repository_out(director, row.id, name)


@router.post("/tenants/{name}/backup-repository/{action}", status_code=202)
async def repository_action(
    _: Admin,
    director: DirectorDep,
    name: str,
    action: Literal["check", "retention", "copy"],
    body: Retention | None = None,
    vms: Annotated[list[str] | None, Query(max_length=1000)] = None,
) -> RunOut:
    row = director.tenant_or_404(name)
    if action == "retention" and body is not None and body.flags():
        if director.repositories.row(row.id) is None:
            raise DirectorError(404, f"tenant {name!r} has no backup repository")
        return _run_out(director, director.backups.apply_retention_now(row.id, body, vms or []))
    return _run_out(director, director.backups.start_maintenance(row.id, action))


# ---------------------------------------------------------------------- jobs
def _job_out(director: Director, tenant: str, job: object) -> JobOut:
    from tenantry.director.backups.store import JobRow

    assert isinstance(job, JobRow)
    return JobOut(
        **job.spec,
        name=job.name,
        tenant=tenant,
        created_at=job.created_at,
        updated_at=job.updated_at,
        last_run_id=job.last_run_id,
        next_run_at=director.backups.next_run(job),
    )


@router.get("/tenants/{name}/backup-jobs")
async def list_jobs(_: Admin, director: DirectorDep, name: str) -> list[JobOut]:
    row = director.tenant_or_404(name)
    return [_job_out(director, name, j) for j in director.backups.store.jobs(row.id)]


@router.get("/tenants/{name}/backup-jobs/{job}")
async def get_job(_: Admin, director: DirectorDep, name: str, job: str) -> JobOut:
    row = director.tenant_or_404(name)
    return _job_out(director, name, director.backups.job_or_404(row.id, job))


@router.put("/tenants/{name}/backup-jobs/{job}")
async def put_job(_: Admin, director: DirectorDep, name: str, job: str, body: JobSpec, response: Response) -> JobOut:
    row = director.tenant_or_404(name)
    if not _JOB_NAME(job):
        raise DirectorError(422, "job names are lower-case letters, digits and dashes (at most 63)")
    if director.repositories.row(row.id) is None:
        director.backups.set_repository(row.id, RepositorySpec.model_validate({}))
    found, created = director.backups.put_job(row.id, job, body)
    if created:
        director.event("backup_job_created", f"backup job {job} for {len(body.vms)} VM(s)", row.id, job=job)
    response.status_code = 201 if created else 200
    return _job_out(director, name, found)


@router.delete("/tenants/{name}/backup-jobs/{job}", status_code=204)
async def delete_job(_: Admin, director: DirectorDep, name: str, job: str) -> Response:
    row = director.tenant_or_404(name)
    if not director.backups.store.delete_job(row.id, job):
        raise DirectorError(404, f"no backup job {job!r} for this tenant")
    director.event("backup_job_deleted", f"backup job {job} removed (its backups stay)", row.id, job=job)
    return Response(status_code=204)


@router.post("/tenants/{name}/backup-jobs/{job}/run", status_code=202)
async def run_job(_: Admin, director: DirectorDep, name: str, job: str, body: RunRequest | None = None) -> RunOut:
    row = director.tenant_or_404(name)
    run = director.backups.start_backup(row.id, job, body.vms if body else None)
    return _run_out(director, run)


# ---------------------------------------------------------------------- runs
@router.get("/backup-runs/{run_id}")
async def get_run(_: Admin, director: DirectorDep, run_id: RunId) -> RunOut:
    run = director.backups.store.run(run_id)
    if run is None:
        raise DirectorError(404, f"no backup run {run_id}")
    return _run_out(director, run)


@router.post("/backup-runs/{run_id}/cancel", status_code=202)
async def cancel_run(_: Admin, director: DirectorDep, run_id: RunId) -> RunOut:
    run = director.backups.store.run(run_id)
    if run is None:
        raise DirectorError(404, f"no backup run {run_id}")
    if not director.backups.cancel(run_id):
        raise DirectorError(409, f"run {run_id} is not running")
    return _run_out(director, run)


@router.get("/tenants/{name}/backup-runs")
async def list_runs(
    _: Admin,
    director: DirectorDep,
    name: str,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    kind: Annotated[str | None, Query(max_length=20)] = None,
) -> list[RunOut]:
    row = director.tenant_or_404(name)
    return [_run_out(director, r) for r in director.backups.store.runs(row.id, limit=limit, kind=kind)]


# ---------------------------------------------------------------------- snapshots and restores
@router.get("/tenants/{name}/backups")
async def list_backups(
    _: Admin, director: DirectorDep, name: str, vm: Annotated[str | None, Query(max_length=80)] = None
) -> list[SnapshotOut]:
    row = director.tenant_or_404(name)
    return [
        SnapshotOut(
            id=s.snapshot_id,
            vm=s.vm,
            time=s.taken_at,
            job=s.job_name,
            run_id=s.run_id,
            location=s.location,
            total_bytes=s.total_bytes,
            added_bytes=s.added_bytes,
            uplink_bytes=s.uplink_bytes,
            copied=bool(s.copied),
        )
        for s in director.backups.store.snapshots(row.id, vm)
    ]


@router.get("/tenants/{name}/backups/{snapshot}/file", response_class=FileResponse)
async def backup_file(
    _: Admin,
    director: DirectorDep,
    name: str,
    snapshot: Annotated[str, Path(pattern=r"^[0-9a-f]{8,64}$")],
    path: Annotated[str, Query(min_length=1, max_length=4096, description="absolute path in the disk's filesystem")],
    disk: Annotated[int | None, Query(description="the disk's device key (default: the first disk)")] = None,
    partition: Annotated[
        int | None, Query(ge=0, le=128, description="partition number (default: the only one)")
    ] = None,
) -> FileResponse:
    """One file out of a backed-up disk where its format allows (ext2/3/4, raw or partitioned)."""
    row = director.tenant_or_404(name)
    out = await director.backups.extract_file(row.id, snapshot, path, disk, partition)
    director.event("file_restored", f"{path} read from backup {snapshot[:8]}", row.id, path=path)
    return FileResponse(
        out,
        media_type="application/octet-stream",
        filename=path.rstrip("/").rsplit("/", 1)[-1] or "file",
        background=BackgroundTask(out.unlink, missing_ok=True),
    )


@router.post("/tenants/{name}/restores", status_code=202)
async def restore(_: Admin, director: DirectorDep, name: str, body: RestoreSpec) -> RunOut:
    row = director.tenant_or_404(name)
    return _run_out(director, director.backups.start_restore(row.id, body))


@router.get("/backups/overview")
async def overview(_: Admin, director: DirectorDep) -> list[dict[str, object]]:
    """Per tenant with backups: where its repository is, usage and quota, its latest run (the MSP's dashboard)."""
    out: list[dict[str, object]] = []
    for repo in director.repositories.store.all():
        tenant = director.store.tenant(repo.tenant_id)
        if tenant is None:
            continue
        last = director.backups.store.last_run(repo.tenant_id)
        out.append(
            {
                "tenant": tenant.name,
                "location": repo.location,
                "used_bytes": repo.used_bytes,
                "quota_bytes": repo.quota_bytes,
                "secondary_used_bytes": repo.secondary_used_bytes,
                "last_check_ok": None if repo.last_check_ok is None else bool(repo.last_check_ok),
                "last_copy_ok": None if repo.last_copy_ok is None else bool(repo.last_copy_ok),
                "last_run": None
                if last is None
                else {"id": last.id, "state": last.state, "started_at": last.started_at, "message": last.message},
            }
        )
    return out


def _JOB_NAME(value: str) -> bool:
    import re

    return bool(re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", value))

"""The Director's backup jobs: definitions, runs over the uplink, schedules, retention, checks, 3-2-1, restores.

A *job* (per tenant: VMs, schedule, retention, changed-block tracking) becomes a *run* when it
is started (API, playbook or schedule).  A run backs up each VM as its own task on the tenant's
Transporter, at most ``max_concurrent_tasks`` (Expert Setting) at once per Transporter:

1. the Director opens ``POST /v1/jobs/backup`` on the tenant's uplink with the VM, the parent
   snapshot and, for a repository at the MSP, the repository's password and a one-job token;
2. once the Transporter answers ``200`` (its loopback endpoint listens), the Director opens the
   job's carriers and serves restic's REST protocol on them from the tenant's repository
   (append-only, quota at write time, bound to the session's tenant);
3. progress lines arrive until the result; the Director records the snapshot and what crossed
   the uplink.  A quota refusal, a cancel or a lost uplink resets the job stream: the
   Transporter stops restic and removes the VM snapshot; lock files the job's restic left are
   removed here.

After the VMs, with the repository to itself, the Director forgets the run's partial snapshots,
applies the job's retention (``forget`` per VM, ``prune``), copies to the secondary repository
when 3-2-1 is on (verified) and refreshes its record of the repository's snapshots.  Failures
raise alarms (events ``backup_failed``, ``repository_check_failed``, ``repository_copy_failed``
with ``severity: error``) and call :attr:`Backups.on_alarm` hooks; what recovers from one (a later
successful run of the same kind and job, a verified copy) calls :attr:`Backups.on_recovered`, so the
console's alarm opens with the failure and clears with the recovery.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import h2.errors

from tenantry.backup import files, restic
from tenantry.backup.layout import MANIFEST, VmManifest
from tenantry.backup.restore import Target, restore_vm
from tenantry.backup.vsphere import Endpoint, VSphere
from tenantry.director.backups.models import JobSpec, RepositorySpec, RestoreSpec, Retention
from tenantry.director.backups.schedule import Schedule
from tenantry.director.backups.store import BackupStore, JobRow, RunRow, SnapshotRow
from tenantry.director.errors import DirectorError
from tenantry.director.limits import Slots
from tenantry.director.repository.carrier import Carriers
from tenantry.director.repository.manager import Repositories
from tenantry.director.repository.rest import RestSession
from tenantry.director.settings import ExpertSettings
from tenantry.protocol.backup import BackupJob, JobEvent, RepositoryAccess, RestoreJob, RestoreTargetSpec
from tenantry.protocol.channel import Channel, ChannelClosed, H2Stream, StreamError

log = logging.getLogger(__name__)

_LINE_LIMIT = 1 << 20
_TICK = 15.0


class Events(Protocol):
    def __call__(self, kind: str, message: str, tenant_id: str | None = None, **data: object) -> None: ...


class JobFailed(RuntimeError):
    pass


Alarm = Callable[[str, str, str | None, dict[str, Any]], None]
# (alarm kind, tenant id, job name or None, why): the condition behind that alarm is over.
Recovered = Callable[[str, str, str | None, str], None]


@dataclass
class _Live:
    task: asyncio.Task[None] | None = None
    progress: dict[str, Any] = field(default_factory=dict)


class Backups:
    def __init__(
        self,
        *,
        repositories: Repositories,
        channel_of: Callable[[str], Channel | None],
        settings: Callable[[], ExpertSettings],
        events: Events,
        tenant_name: Callable[[str], str],
        staging: Path,
    ) -> None:
        self.repos = repositories
        self.staging = staging
        self.store = BackupStore(repositories.store.db)
        self._channel_of = channel_of
        self._settings = settings
        self._events = events
        self._name = tenant_name
        self._live: dict[int, _Live] = {}
        self._slots: dict[str, Slots] = {}
        self._ticker: asyncio.Task[None] | None = None
        self.on_alarm: list[Alarm] = []
        self.on_recovered: list[Recovered] = []

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        abandoned = self.store.abandon_running()
        if abandoned:
            log.warning("%d backup run(s) were in progress when the Director stopped: marked failed", abandoned)
        self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        tasks = [live.task for live in self._live.values() if live.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------------ repositories
    def set_repository(self, tenant_id: str, spec: RepositorySpec) -> bool:
        """Create or change a tenant's repository settings; ``True`` when something changed."""
        if spec.secondary and self.repos.secondary_root is None:
            raise DirectorError(409, "3-2-1 needs a secondary repository root on this Director")
        current = self.repos.row(tenant_id)
        wanted = {
            "location": spec.location,
            "quota_bytes": spec.quota_bytes,
            "secondary": int(spec.secondary),
            "check_subset": spec.check_subset,
            "check_schedule": spec.check_schedule,
        }
        if current is not None and all(getattr(current, k) == v for k, v in wanted.items()):
            return False
        if current is not None and current.location != spec.location and self.store.snapshots(tenant_id):
            raise DirectorError(409, "the repository holds backups; its location cannot change")
        self.repos.store.upsert(tenant_id, **wanted)
        return True

    def tenant_removed(self, tenant_id: str) -> None:
        """The tenant left: its runs stop, its jobs go; its repository's data stays for the MSP to decide."""
        for run_id in self.running(tenant_id):
            self.cancel(run_id)
        for job in self.store.jobs(tenant_id):
            self.store.delete_job(tenant_id, job.name)

    # ------------------------------------------------------------------ jobs
    def put_job(self, tenant_id: str, name: str, spec: JobSpec) -> tuple[JobRow, bool]:
        return self.store.put_job(tenant_id, name, spec.model_dump(mode="json"))

    def job_or_404(self, tenant_id: str, name: str) -> JobRow:
        job = self.store.job(tenant_id, name)
        if job is None:
            raise DirectorError(404, f"no backup job {name!r} for this tenant")
        return job

    def next_run(self, job: JobRow) -> float | None:
        spec = JobSpec.model_validate(job.spec)
        if not spec.enabled or not spec.schedule:
            return None
        return Schedule.parse(spec.schedule).next_after(time.time())

    # ------------------------------------------------------------------ runs
    def live(self, run_id: int) -> dict[str, Any]:
        live = self._live.get(run_id)
        return dict(live.progress) if live else {}

    def _spawn(self, run: RunRow, coro: Any) -> RunRow:
        live = _Live()
        self._live[run.id] = live
        live.task = asyncio.get_running_loop().create_task(coro)
        live.task.add_done_callback(lambda _t: self._live.pop(run.id, None))
        return run

    def running(self, tenant_id: str, job_name: str | None = None, kind: str | None = None) -> list[int]:
        out = []
        for run_id in self._live:
            row = self.store.run(run_id)
            if (
                row
                and row.tenant_id == tenant_id
                and (job_name is None or row.job_name == job_name)
                and (kind is None or row.kind == kind)
            ):
                out.append(run_id)
        return out

    def cancel(self, run_id: int) -> bool:
        live = self._live.get(run_id)
        if live is None or live.task is None:
            return False
        live.task.cancel()
        return True

    def _location(self, tenant_id: str) -> str:
        row = self.repos.row(tenant_id)
        return row.location if row is not None else "msp"

    def start_backup(self, tenant_id: str, job_name: str, vms: list[str] | None = None, trigger: str = "api") -> RunRow:
        job = self.job_or_404(tenant_id, job_name)
        spec = JobSpec.model_validate(job.spec)
        chosen = vms or spec.vms
        unknown = sorted(set(chosen) - set(spec.vms))
        if unknown:
            raise DirectorError(422, f"VM(s) not in job {job_name!r}: {', '.join(unknown)}")
        if self._channel_of(tenant_id) is None:
            raise DirectorError(409, "the tenant's Transporter is not online")
        if self.running(tenant_id, job_name, "backup"):
            raise DirectorError(409, f"job {job_name!r} is running already")
        run = self.store.add_run(tenant_id, "backup", job_name=job_name, trigger=trigger)
        self.store.job_ran(job.id, run_id=run.id)
        self._events("backup_started", f"backup job {job_name} started ({len(chosen)} VM(s))", tenant_id, run=run.id)
        return self._spawn(run, self._backup_run(run, spec, chosen))

    async def _backup_run(self, run: RunRow, spec: JobSpec, vms: list[str]) -> None:
        tenant_id = run.tenant_id
        location = self._location(tenant_id)
        live = self._live[run.id]
        results: dict[str, Any] = {}
        state, message = "failed", ""
        try:
            if location == "msp":
                await self.repos.ensure(tenant_id)
            slots = self._slots.setdefault(
                tenant_id, Slots(lambda: self._settings().max_concurrent_tasks, queue=1 << 20, what="backup tasks")
            )

            async def one(vm: str) -> None:
                live.progress[vm] = {"phase": "queued"}
                async with slots.hold():
                    try:
                        results[vm] = await self._backup_vm(run, spec, vm, location, live.progress)
                    except (JobFailed, DirectorError, ChannelClosed, StreamError, OSError) as exc:
                        results[vm] = {"ok": False, "error": str(exc)}
                        live.progress[vm] = {"phase": "failed", "message": str(exc)[:500]}

            async with self.repos.gate(tenant_id).shared():
                await asyncio.gather(*(one(vm) for vm in vms))
            failed = sorted(vm for vm, r in results.items() if not r.get("ok"))
            if location == "msp":
                results["_maintenance"] = await self._after_backup(tenant_id, spec, vms, results)
            else:
                usage = [r.get("repository_usage") for r in results.values() if isinstance(r, dict)]
                if any(isinstance(u, int) for u in usage):
                    self.repos.store.upsert(tenant_id, used_bytes=max(u for u in usage if isinstance(u, int)))
            if failed:
                message = f"{len(failed)} of {len(vms)} VM(s) failed: " + "; ".join(
                    f"{vm}: {results[vm].get('error', '')}"[:300] for vm in failed
                )
            else:
                state, message = "succeeded", f"{len(vms)} VM(s) backed up"
        except asyncio.CancelledError:
            state, message = "cancelled", "cancelled"
        except Exception as exc:  # recorded, never lost
            log.exception("backup run %d failed", run.id)
            message = f"{type(exc).__name__}: {exc}"
        finally:
            self.store.finish_run(run.id, state, message, {"vms": results, "location": location})
            self._finished(run, state, message)

    def _finished(self, run: RunRow, state: str, message: str) -> None:
        what = f"{run.kind} {run.job_name or ''}".strip()
        if state == "succeeded":
            self._events(f"{run.kind}_succeeded", f"{what}: {message}", run.tenant_id, run=run.id)
            self._recovered(f"{run.kind}_failed", run.tenant_id, run.job_name, f"run {run.id} succeeded")
        elif state == "failed":
            self._alarm(f"{run.kind}_failed", f"{what} failed: {message}", run.tenant_id, run=run.id, job=run.job_name)
        else:
            self._events(f"{run.kind}_{state}", f"{what}: {message}", run.tenant_id, run=run.id)

    def _alarm(self, kind: str, message: str, tenant_id: str | None, **data: Any) -> None:
        self._events(kind, message, tenant_id, severity="error", **data)
        for hook in self.on_alarm:
            try:
                hook(kind, message, tenant_id, data)
            except Exception:
                log.exception("alarm hook failed")

    def _recovered(self, kind: str, tenant_id: str, job: str | None, why: str) -> None:
        for hook in self.on_recovered:
            try:
                hook(kind, tenant_id, job, why)
            except Exception:
                log.exception("recovery hook failed")

    def _job_repository(self, tenant_id: str, location: str) -> tuple[Channel, RestSession | None, RepositoryAccess]:
        """The tenant's uplink, and how its Transporter reaches the repository of ``location`` for one job
        (the MSP's: a one-job token on a REST session the Director serves over the uplink)."""
        channel = self._channel_of(tenant_id)
        if channel is None:
            raise JobFailed("the tenant's Transporter is offline")
        if location != "msp":
            return channel, None, RepositoryAccess(location="site")
        token = secrets.token_urlsafe(24)
        session = RestSession(self.repos.directory(tenant_id), token)
        return channel, session, RepositoryAccess(location="msp", token=token)

    def _job_body(self, req: BackupJob | RestoreJob, tenant_id: str, location: str) -> dict[str, Any]:
        """The job's request; the MSP repository's password goes only into the request, never a model."""
        body = req.model_dump(mode="json")
        if location == "msp":
            body["repository"]["password"] = self.repos.password(tenant_id)
        return body

    async def _backup_vm(
        self, run: RunRow, spec: JobSpec, vm: str, location: str, progress: dict[str, Any]
    ) -> dict[str, Any]:
        tenant_id = run.tenant_id
        channel, session, access = self._job_repository(tenant_id, location)
        job_id = secrets.token_hex(8)
        parent = self.store.latest(tenant_id, vm, location)
        req = BackupJob(
            job_id=job_id,
            vm=vm,
            repository=access,
            parent=parent.snapshot_id if parent else None,
            changed_blocks=spec.changed_blocks,
            tags=[f"job={run.job_name}", f"run={run.id}"],
            retention=spec.retention.flags() if location == "site" else {},
        )
        body = self._job_body(req, tenant_id, location)
        started = time.monotonic()
        result = await self._follow(channel, "/v1/jobs/backup", job_id, body, session, progress, vm)
        data = result.result
        snapshot_id = str(data.get("snapshot_id") or "")
        if not snapshot_id or not all(c in "0123456789abcdef" for c in snapshot_id):
            raise JobFailed("the Transporter reported no snapshot")
        uplink = session.bytes_in if session is not None else None
        self.store.add_snapshot(
            SnapshotRow(
                tenant_id=tenant_id,
                snapshot_id=snapshot_id,
                vm=vm,
                taken_at=time.time(),
                run_id=run.id,
                job_name=run.job_name,
                location=location,
                path=f"/{vm}",
                total_bytes=_int(data.get("total_bytes")),
                added_bytes=_int(data.get("data_added")),
                uplink_bytes=uplink,
                copied=0,
            )
        )
        partials = [str(p) for p in data.get("partial_snapshots") or [] if isinstance(p, str)]
        site = data.get("site_snapshots")
        if location == "site" and isinstance(site, list):
            # The site applied its retention: the Director's record follows what its repository holds.
            self.store.keep_only(tenant_id, "site", {str(s) for s in site if isinstance(s, str)}, vm=vm)
        out = {
            "ok": True,
            "snapshot_id": snapshot_id,
            "mode": str(data.get("mode", "")),
            "total_bytes": _int(data.get("total_bytes")),
            "bytes_read": _int(data.get("bytes_read")),
            "data_added": _int(data.get("data_added")),
            "uplink_bytes": uplink,
            "segments_total": _int(data.get("segments_total")),
            "segments_changed": _int(data.get("segments_changed")),
            "restic_runs": _int(data.get("restic_runs")),
            "partial_snapshots": partials,
            "seconds": round(time.monotonic() - started, 3),
        }
        if isinstance(data.get("repository_usage"), int):
            out["repository_usage"] = data["repository_usage"]
        return out

    async def _follow(
        self,
        channel: Channel,
        path: str,
        job_id: str,
        body: dict[str, Any],
        session: RestSession | None,
        progress: dict[str, Any],
        key: str,
    ) -> JobEvent:
        """Open a job stream, serve its carriers, follow its progress; the successful result event."""
        data = json.dumps(body).encode()
        quota: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        if session is not None:

            def over_quota(msg: str) -> None:
                if not quota.done():
                    quota.set_result(msg)

            session.on_quota = over_quota
        stream = channel.open_stream(
            [
                (":method", "POST"),
                (":path", path),
                (":scheme", "https"),
                (":authority", "transporter"),
                ("content-type", "application/json"),
                ("content-length", str(len(data))),
            ]
        )
        carriers: Carriers | None = None
        try:
            await stream.write(data)
            stream.end()
            headers = dict(await asyncio.wait_for(_headers(stream, channel), 60))
            if headers.get(":status") != "200":
                detail = await stream.read_all(64 << 10)
                raise JobFailed(_error_text(detail, headers.get(":status")))
            if session is not None:
                carriers = Carriers(channel, job_id, session, frame_size=self._settings().repository_frame_size)
                carriers.start()
            reader = asyncio.ensure_future(self._events_of(stream, progress, key))
            waits: list[asyncio.Future[Any]] = [reader, quota]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            if quota.done() and not reader.done():
                reader.cancel()
                raise JobFailed(quota.result())
            event = reader.result()
            if not event.ok:
                raise JobFailed(event.error or "the job failed at the Transporter")
            return event
        finally:
            if not stream._local_closed or not stream._eof:
                with contextlib.suppress(Exception):
                    stream.reset(h2.errors.ErrorCodes.CANCEL)
            if carriers is not None:
                await carriers.close()
            if session is not None and session.locks:
                tenant_id = session.repo.root.name
                gone = self.repos.remove_locks(tenant_id, session.locks)
                if gone:
                    log.info("removed %d lock(s) the job's restic left in the repository of %s", gone, tenant_id)

    async def _events_of(self, stream: H2Stream, progress: dict[str, Any], key: str) -> JobEvent:
        buf = b""
        while True:
            chunk = await stream.read()
            if not chunk:
                raise JobFailed("the Transporter ended the job without a result")
            buf += chunk
            if len(buf) > _LINE_LIMIT and b"\n" not in buf:
                raise JobFailed("the Transporter sent an overlong progress line")
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if not line.strip():
                    continue
                try:
                    event = JobEvent.model_validate_json(line)
                except ValueError:
                    raise JobFailed("the Transporter sent a malformed progress line") from None
                if event.event == "result":
                    progress[key] = {"phase": "done" if event.ok else "failed", "message": (event.error or "")[:500]}
                    return event
                progress[key] = event.model_dump(exclude_none=True, exclude={"event", "result", "ok", "error"})

    async def _after_backup(
        self, tenant_id: str, spec: JobSpec, vms: list[str], results: dict[str, Any]
    ) -> dict[str, Any]:
        """The MSP's work after a run: partial snapshots, retention, 3-2-1 copy, the snapshot record."""
        done: dict[str, Any] = {}
        partials = [p for r in results.values() if isinstance(r, dict) for p in r.get("partial_snapshots") or []]
        row = self.repos.row(tenant_id)
        async with self.repos.gate(tenant_id).exclusive():
            try:
                if partials:
                    await self.repos.forget(tenant_id, partials)
                    done["partials_forgotten"] = len(partials)
                keep = spec.retention.flags()
                if keep:
                    removed = await self.repos.retention(tenant_id, keep, hosts=vms)
                    done["retention_removed"] = removed
                await self._refresh(tenant_id)
                if row is not None and row.secondary and self.repos.secondary_root is not None:
                    done["copy"] = await self._copy(tenant_id, row.check_subset)
            except Exception as exc:
                log.exception("maintenance after the backup of tenant %s failed", tenant_id)
                done["error"] = str(exc)
                self._alarm("repository_maintenance_failed", f"maintenance after a backup failed: {exc}", tenant_id)
            else:
                self._recovered("repository_maintenance_failed", tenant_id, None, "maintenance after a backup done")
            self.repos.recount(tenant_id)
        return done

    async def _refresh(self, tenant_id: str) -> set[str]:
        present = {str(s["id"]) for s in await self.repos.snapshots(tenant_id)}
        self.store.keep_only(tenant_id, "msp", present)
        return present

    async def _copy(self, tenant_id: str, subset: str) -> dict[str, Any]:
        result = await self.repos.copy(tenant_id, subset)
        if result.verified:
            self.store.mark_copied(tenant_id, {s.snapshot_id for s in self.store.snapshots(tenant_id, location="msp")})
            self._recovered("repository_copy_failed", tenant_id, None, "3-2-1 copy verified")
        else:
            self._alarm("repository_copy_failed", f"3-2-1 copy not verified: {result.check[:500]}", tenant_id)
        return {"copied": result.copied, "verified": result.verified, "missing": result.missing[:20]}

    # ------------------------------------------------------------------ the MSP's own runs
    def start_maintenance(self, tenant_id: str, action: str, trigger: str = "api") -> RunRow:
        row = self.repos.row(tenant_id)
        if row is None or row.location != "msp":
            raise DirectorError(409, "the tenant has no repository at the MSP")
        if action == "copy" and (not row.secondary or self.repos.secondary_root is None):
            raise DirectorError(409, "3-2-1 copies are off for this tenant (or no secondary root is configured)")
        if action not in ("check", "retention", "copy"):
            raise DirectorError(404, f"unknown repository action {action!r}")
        run = self.store.add_run(tenant_id, action, job_name=None, trigger=trigger)
        return self._spawn(run, self._maintenance_run(run, action, row.check_subset))

    async def _maintenance_run(self, run: RunRow, action: str, subset: str) -> None:
        tenant_id = run.tenant_id
        state, message = "failed", ""
        detail: dict[str, Any] = {}
        try:
            await self.repos.ensure(tenant_id)
            async with self.repos.gate(tenant_id).exclusive():
                if action == "check":
                    ok, text = await self.repos.check(tenant_id, subset)
                    detail = {"output": text[-2000:], "read_data_subset": subset}
                    state, message = ("succeeded", "no errors found") if ok else ("failed", text[-500:])
                    if ok:
                        self._recovered("repository_check_failed", tenant_id, None, "repository check passed")
                    else:
                        self._alarm("repository_check_failed", f"repository check failed: {text[-300:]}", tenant_id)
                elif action == "retention":
                    removed: list[str] = []
                    for job in self.store.jobs(tenant_id):
                        spec = JobSpec.model_validate(job.spec)
                        keep = spec.retention.flags()
                        if keep:
                            removed += await self.repos.retention(tenant_id, keep, hosts=spec.vms)
                    await self._refresh(tenant_id)
                    detail = {"removed": removed}
                    state, message = "succeeded", f"{len(removed)} snapshot(s) removed"
                else:
                    row = self.repos.row(tenant_id)
                    detail = await self._copy(tenant_id, row.check_subset if row else "5%")
                    ok = bool(detail["verified"])
                    state = "succeeded" if ok else "failed"
                    message = f"{detail['copied']} snapshot(s) copied, " + ("verified" if ok else "NOT verified")
                self.repos.recount(tenant_id)
        except asyncio.CancelledError:
            state, message = "cancelled", "cancelled"
        except Exception as exc:
            log.exception("%s of tenant %s failed", action, tenant_id)
            message = f"{type(exc).__name__}: {exc}"
        finally:
            self.store.finish_run(run.id, state, message, detail)
            self._finished(run, state, message)

    def apply_retention_now(self, tenant_id: str, keep: Retention, vms: list[str]) -> RunRow:
        """A retention run with an explicit policy (tests and the API's retention with a body)."""
        run = self.store.add_run(tenant_id, "retention", job_name=None, trigger="api")

        async def go() -> None:
            state, message = "failed", ""
            detail: dict[str, Any] = {}
            try:
                async with self.repos.gate(tenant_id).exclusive():
                    removed = await self.repos.retention(tenant_id, keep.flags(), hosts=vms)
                    await self._refresh(tenant_id)
                detail = {"removed": removed}
                state, message = "succeeded", f"{len(removed)} snapshot(s) removed"
            except Exception as exc:
                message = str(exc)
            finally:
                self.store.finish_run(run.id, state, message, detail)
                self._finished(run, state, message)

        return self._spawn(run, go())

    # ------------------------------------------------------------------ restores
    def start_restore(self, tenant_id: str, spec: RestoreSpec) -> RunRow:
        location = self._location(tenant_id)
        snaps = self.store.snapshots(tenant_id, spec.vm, location)
        if spec.snapshot == "latest":
            if not snaps:
                raise DirectorError(404, f"no backup of {spec.vm!r}")
            snapshot = snaps[0]
        else:
            found = [s for s in snaps if s.snapshot_id.startswith(spec.snapshot)]
            if len(found) != 1:
                raise DirectorError(404, f"no single backup {spec.snapshot!r} of {spec.vm!r}")
            snapshot = found[0]
        if spec.destination == "production":
            if spec.vcenter is None:
                raise DirectorError(422, "a restore into production needs the production vCenter (vcenter)")
            if location != "msp":
                raise DirectorError(409, "the backups of this tenant are at its own site, not at the MSP")
        elif self._channel_of(tenant_id) is None:
            raise DirectorError(409, "the tenant's Transporter is not online")
        run = self.store.add_run(tenant_id, "restore", job_name=None, trigger="api")
        return self._spawn(run, self._restore_run(run, spec, snapshot, location))

    async def _restore_run(self, run: RunRow, spec: RestoreSpec, snap: SnapshotRow, location: str) -> None:
        tenant_id = run.tenant_id
        live = self._live[run.id]
        state, message = "failed", ""
        detail: dict[str, Any] = {"vm": spec.vm, "snapshot": snap.snapshot_id}
        name = spec.name or spec.vm
        try:
            if spec.destination == "production":
                detail |= await self._restore_production(tenant_id, spec, snap, name, live.progress)
            else:
                detail |= await self._restore_site(run, spec, snap, name, location, live.progress)
            state, message = "succeeded", f"{spec.vm} restored as {name} ({spec.destination})"
        except asyncio.CancelledError:
            state, message = "cancelled", "cancelled"
        except Exception as exc:
            log.info("restore run %d failed: %s", run.id, exc)
            message = str(exc)[:2000]
        finally:
            self.store.finish_run(run.id, state, message, detail)
            self._finished(run, state, message)

    async def _restore_site(
        self, run: RunRow, spec: RestoreSpec, snap: SnapshotRow, name: str, location: str, progress: dict[str, Any]
    ) -> dict[str, Any]:
        tenant_id = run.tenant_id
        channel, session, access = self._job_repository(tenant_id, location)
        job_id = secrets.token_hex(8)
        req = RestoreJob(
            job_id=job_id,
            repository=access,
            snapshot=snap.snapshot_id,
            vm_dir=snap.path or f"/{spec.vm}",
            target=RestoreTargetSpec(name=name, **spec.placement()),
        )
        body = self._job_body(req, tenant_id, location)
        async with self.repos.gate(tenant_id).shared():
            event = await self._follow(channel, "/v1/jobs/restore", job_id, body, session, progress, spec.vm)
        out = {k: event.result.get(k) for k in ("vm", "datastore", "disks", "bytes_written", "seconds")}
        out["downlink_bytes"] = session.bytes_out if session is not None else None
        return out

    async def _restore_production(
        self, tenant_id: str, spec: RestoreSpec, snap: SnapshotRow, name: str, progress: dict[str, Any]
    ) -> dict[str, Any]:
        assert spec.vcenter is not None
        vc = spec.vcenter
        vs = VSphere(
            Endpoint(
                hostname=vc.hostname,
                port=vc.port,
                username=vc.username,
                password=vc.password.get_secret_value(),
                ca_file=Path(vc.ca_file) if vc.ca_file else None,
                insecure=vc.insecure,
                datacenter=vc.datacenter,
            )
        )
        await vs.connect()
        try:
            async with self.repos.gate(tenant_id).shared():
                done = await restore_vm(
                    self.repos.restic_repo(tenant_id),
                    snap.snapshot_id,
                    snap.path or f"/{spec.vm}",
                    vs,
                    Target(name=name, **spec.placement()),
                    lambda m: progress.__setitem__(spec.vm, m),
                    staging=self.staging,
                )
        finally:
            await vs.close()
        return {
            "vm": done.vm,
            "datastore": done.datastore,
            "disks": done.disks,
            "bytes_written": done.bytes_written,
            "seconds": round(done.seconds, 3),
        }

    # ------------------------------------------------------------------ single files
    async def extract_file(
        self, tenant_id: str, snapshot: str, path: str, disk_key: int | None, partition: int | None
    ) -> Path:
        """One file out of a backed-up disk (ext filesystems), into a temporary file the caller removes."""
        if self._location(tenant_id) != "msp":
            raise DirectorError(409, "the backups of this tenant are at its own site, not at the MSP")
        found = [s for s in self.store.snapshots(tenant_id, location="msp") if s.snapshot_id.startswith(snapshot)]
        if len(found) != 1:
            raise DirectorError(404, f"no single backup {snapshot!r}")
        snap = found[0]
        repo = self.repos.restic_repo(tenant_id)
        work = self.staging / f"file-{secrets.token_hex(6)}"
        work.mkdir(parents=True, mode=0o700)
        try:
            async with self.repos.gate(tenant_id).shared():
                await restic.restore(repo, snap.snapshot_id, work, [f"{snap.path}/{MANIFEST}"])
                manifest = VmManifest.model_validate_json((work / snap.path.strip("/") / MANIFEST).read_bytes())
                disks = [d for d in manifest.disks if disk_key is None or d.key == disk_key]
                if not disks:
                    raise DirectorError(404, f"the backup has no disk {disk_key}")
                image = await files.disk_image(repo, snap.snapshot_id, snap.path, disks[0], work)
            out = self.staging / f"file-{secrets.token_hex(6)}.out"
            try:
                await files.extract(image, path, partition, out)
            except files.FileRestoreError as exc:
                raise DirectorError(422, str(exc)) from None
            return out
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)

    # ------------------------------------------------------------------ schedules
    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(_TICK)
            try:
                self.run_schedules(time.time())
            except Exception:
                log.exception("backup scheduler")

    def run_schedules(self, now: float) -> list[int]:
        started: list[int] = []
        for job in self.store.jobs():
            spec = JobSpec.model_validate(job.spec)
            if not spec.enabled or not spec.schedule:
                continue
            last = max(job.last_scheduled_at or job.created_at, now - 3 * 86400)
            if not Schedule.parse(spec.schedule).due(last, now):
                continue
            self.store.job_ran(job.id, scheduled_at=now)
            try:
                started.append(self.start_backup(job.tenant_id, job.name, trigger="schedule").id)
            except DirectorError as exc:
                message = f"scheduled backup {job.name} not started: {exc.message}"
                self._alarm("backup_failed", message, job.tenant_id, job=job.name)
        for row in self.repos.store.all():
            if row.location != "msp" or not row.check_schedule:
                continue
            last = max(row.last_check_at or row.created_at, now - 3 * 86400)
            if Schedule.parse(row.check_schedule).due(last, now) and not self.running(row.tenant_id, kind="check"):
                self.repos.store.update(row.tenant_id, last_check_at=now)
                started.append(self.start_maintenance(row.tenant_id, "check", trigger="schedule").id)
        return started


async def _headers(stream: H2Stream, channel: Channel) -> list[tuple[str, str]]:
    pending: list[asyncio.Future[Any]] = [stream.response_headers, channel.closed]
    await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    if not stream.response_headers.done():
        raise ChannelClosed(channel.close_reason or "channel closed")
    return stream.response_headers.result()


def _error_text(body: bytes, status: str | None) -> str:
    try:
        data = json.loads(body)
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            return f"the Transporter refused the job (HTTP {status}): {data['error'][:500]}"
    except ValueError:
        pass
    return f"the Transporter refused the job (HTTP {status})"


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

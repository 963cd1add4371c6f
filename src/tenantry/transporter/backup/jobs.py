"""Backup and restore jobs at the client site, started by the Director over the uplink.

A job stream (``POST /v1/jobs/backup`` or ``/restore``) is answered with ``200`` once this
job's loopback endpoint (:class:`~tenantry.transporter.backup.relay.Relay`) listens; the Director
then opens the job's carriers and reads progress lines until the result line.  The Director
resetting the job stream, or the uplink going away, cancels the job: restic is stopped and the
VM's backup snapshot removed.  Carriers are accepted only for a job that is running here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from tenantry.backup import restic
from tenantry.backup.restore import RestoreError, Target, restore_vm
from tenantry.backup.vsphere import Endpoint, VSphere, VSphereError
from tenantry.protocol.backup import BackupJob, JobEvent, RepositoryAccess, RestoreJob
from tenantry.protocol.channel import ChannelClosed, H2Stream, StreamError
from tenantry.protocol.messages import TaskInfo
from tenantry.transporter.backup.relay import Relay
from tenantry.transporter.backup.source import SNAPSHOT_PREFIX, BackupError, Options, SourceBackup
from tenantry.transporter.config import StateDir, TransporterConfig

log = logging.getLogger(__name__)

_CARRIER = re.compile(r"^/v1/jobs/([0-9a-f]{8,32})/carrier$")
_MAX_REQUEST = 64 << 10
M = TypeVar("M", bound=BaseModel)


class Jobs:
    def __init__(
        self,
        config: TransporterConfig,
        state_dir: StateDir,
        tasks: dict[str, TaskInfo],
        max_tasks: Callable[[], int],
    ) -> None:
        self.config = config
        self.state_dir = state_dir
        self.tasks = tasks
        self.max_tasks = max_tasks
        self.relays: dict[str, Relay] = {}
        backup = config.backup
        self.staging = backup.staging_dir or state_dir.path / "backup-staging"
        self.state_root = state_dir.path / "backup-state"
        self.cache = state_dir.path / "restic-cache"

    # ------------------------------------------------------------------ dispatch
    async def handle(self, stream: H2Stream, extra: list[tuple[str, str]]) -> None:
        method, path = stream.method, stream.path
        carrier = _CARRIER.match(path)
        if carrier and method == "POST":
            relay = self.relays.get(carrier.group(1))
            if relay is None:
                await _reply(stream, 404, {"error": "no such job running here"}, extra)
                return
            await relay.carry(stream)
        elif (method, path) == ("POST", "/v1/jobs/backup"):
            await self._job(stream, BackupJob, self._backup, "backup", extra)
        elif (method, path) == ("POST", "/v1/jobs/restore"):
            await self._job(stream, RestoreJob, self._restore, "restore", extra)
        elif (method, path) == ("GET", "/v1/jobs/janitor"):
            removed = await self.janitor()
            await _reply(stream, 200, {"removed": removed}, extra)
        else:
            await _reply(stream, 404, {"error": f"{method} {path[:100]} is not served here"}, extra)

    def vsphere(self) -> VSphere:
        cfg = self.config.backup.vsphere
        if cfg is None:
            raise BackupError("this Transporter has no [backup.vsphere] configured: it cannot reach the site's vCenter")
        try:
            password = cfg.password_file.read_text().strip()
        except OSError as exc:
            raise BackupError(f"cannot read the vCenter password file {cfg.password_file}: {exc.strerror}") from None
        return VSphere(
            Endpoint(
                hostname=cfg.hostname,
                port=cfg.port,
                username=cfg.username,
                password=password,
                ca_file=cfg.ca_file,
                insecure=cfg.insecure,
                datacenter=cfg.datacenter,
            )
        )

    async def _job(
        self,
        stream: H2Stream,
        model: type[M],
        run: Callable[[M, Relay, Callable[[dict[str, Any]], None]], Awaitable[dict[str, Any]]],
        kind: str,
        extra: list[tuple[str, str]],
    ) -> None:
        raw = await stream.read_all(_MAX_REQUEST)
        try:
            req = model.model_validate_json(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            await _reply(stream, 400, {"error": f"malformed {model.__name__}: {first['loc']}: {first['msg']}"}, extra)
            return
        job_id = str(req.model_dump()["job_id"])
        if len(self.tasks) >= self.max_tasks():
            await _reply(stream, 429, {"error": f"{len(self.tasks)} tasks running; max is {self.max_tasks()}"}, extra)
            return
        if job_id in self.relays:
            await _reply(stream, 409, {"error": "this job is running already"}, extra)
            return
        relay = Relay(job_id)
        await relay.start()
        self.relays[job_id] = relay
        self.tasks[job_id] = TaskInfo(id=job_id, command=kind, started_at=time.time())
        events: asyncio.Queue[JobEvent | None] = asyncio.Queue(maxsize=64)

        def progress(msg: dict[str, Any]) -> None:
            event = JobEvent(event="progress", **_progress_fields(msg))
            with contextlib.suppress(asyncio.QueueFull):
                events.put_nowait(event)

        async def writer() -> None:
            while (event := await events.get()) is not None:
                await stream.write(event.model_dump_json(exclude_none=True).encode() + b"\n")

        writing: asyncio.Task[None] | None = None
        try:
            stream.send_headers([(":status", "200"), ("content-type", "application/x-ndjson"), *extra])
            writing = asyncio.ensure_future(writer())
            try:
                result = await run(req, relay, progress)
                final = JobEvent(event="result", ok=True, result=result | {"relay": _relay_stats(relay)})
            except (BackupError, VSphereError, restic.ResticError, RestoreError, OSError) as exc:
                log.warning("%s job %s failed: %s", kind, job_id, exc)
                final = JobEvent(event="result", ok=False, error=str(exc)[:2000], result={"relay": _relay_stats(relay)})
            await events.put(None)
            await writing
            await stream.write(final.model_dump_json(exclude_none=True).encode() + b"\n")
            stream.end()
        except (ChannelClosed, StreamError):
            log.info("%s job %s: the Director went away; the job was stopped", kind, job_id)
        finally:
            if writing is not None:
                writing.cancel()
            await relay.close()
            self.relays.pop(job_id, None)
            self.tasks.pop(job_id, None)

    # ------------------------------------------------------------------ repositories
    def _repo(self, access: RepositoryAccess, relay: Relay) -> restic.Repo:
        binary = self.config.backup.restic
        if access.location == "site":
            path = self.config.backup.site_repository
            if path is None:
                raise BackupError("this Transporter has no site_repository configured")
            return restic.Repo(str(path), self._site_password(), cache_dir=self.cache, binary=binary)
        if access.password is None or access.token is None:
            raise BackupError("the job carries no repository credentials")
        url = f"rest:http://tenantry:{access.token}@127.0.0.1:{relay.port}/"
        return restic.Repo(url, access.password.get_secret_value(), cache_dir=self.cache, binary=binary)

    def _site_password(self) -> str:
        key = self.state_dir.path / "site-repository.key"
        if not key.exists():
            from tenantry.common import pki

            pki.write_private(key, (secrets.token_urlsafe(32) + "\n").encode())
        return key.read_text().strip()

    async def _ensure_site_repository(self, repo: restic.Repo) -> None:
        if not (Path(repo.location) / "config").exists():
            Path(repo.location).mkdir(parents=True, exist_ok=True, mode=0o700)
            await restic.init(repo)

    # ------------------------------------------------------------------ jobs
    async def _backup(self, req: BackupJob, relay: Relay, progress: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        repo = self._repo(req.repository, relay)
        if req.repository.location == "site":
            await self._ensure_site_repository(repo)
        vs = self.vsphere()
        await vs.connect()
        try:
            task = SourceBackup(
                vs,
                repo,
                Options(
                    job_id=req.job_id,
                    vm=req.vm,
                    parent=req.parent,
                    changed_blocks=req.changed_blocks,
                    tags=list(req.tags),
                    staging_bytes=self.config.backup.staging_bytes,
                ),
                staging_root=self.staging,
                state_root=self.state_root / req.repository.location,
                progress=progress,
            )
            done = await task.run()
        finally:
            await vs.close()
        result = dict(done.__dict__)
        if req.repository.location == "site":
            # This site's own repository: its partial snapshots and its retention are handled here.
            await restic.forget_ids(repo, done.partial_snapshots)
            if req.retention:
                groups = await restic.forget(repo, req.retention, hosts=[req.vm], tags=["tenantry"])
                if any(g.get("remove") for g in groups):
                    await restic.prune(repo)
            result["partial_snapshots"] = []
            found = await restic.snapshots(repo, hosts=[req.vm], tags=["tenantry"])
            result["site_snapshots"] = [str(s["id"]) for s in found]
            result["repository_usage"] = await asyncio.to_thread(_du, Path(repo.location))
        return result

    async def _restore(
        self, req: RestoreJob, relay: Relay, progress: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any]:
        repo = self._repo(req.repository, relay)
        vs = self.vsphere()
        await vs.connect()
        try:
            t = req.target
            done = await restore_vm(
                repo,
                req.snapshot,
                req.vm_dir,
                vs,
                Target(
                    name=t.name,
                    datastore=t.datastore,
                    folder=t.folder,
                    resource_pool=t.resource_pool,
                    host=t.host,
                    power_on=t.power_on,
                    replace=t.replace,
                    network_map=dict(t.network_map),
                ),
                progress,
                staging=self.staging,
            )
        finally:
            await vs.close()
        return dict(done.__dict__)

    async def janitor(self) -> list[str]:
        """Remove backup snapshots a killed Transporter left on the VMs it backs up."""
        if self.config.backup.vsphere is None:
            return []
        active = self.state_root / "active"
        names = sorted({p.stem for p in self.state_root.glob("*/*.json")} | {p.name for p in active.glob("*")})
        removed: list[str] = []
        if not names:
            return removed
        vs = self.vsphere()
        try:
            await vs.connect()
            for name in names:
                vm = await vs.call(vs.find_vm, name)
                if vm is None:
                    continue
                for snap in await vs.call(vs.snapshots_named, vm, SNAPSHOT_PREFIX):
                    await vs.call(vs.remove_snapshot, snap)
                    removed.append(name)
                (active / name).unlink(missing_ok=True)
        except (VSphereError, BackupError) as exc:
            log.warning("backup janitor: %s", exc)
        finally:
            await vs.close()
        if removed:
            log.warning("removed leftover backup snapshots of %s", ", ".join(removed))
        return removed


def _progress_fields(msg: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("phase", "message"):
        if isinstance(msg.get(key), str):
            out[key] = msg[key][:2000]
    for key in ("bytes_done", "bytes_total"):
        if isinstance(msg.get(key), int) and msg[key] >= 0:
            out[key] = msg[key]
    return out


def _relay_stats(relay: Relay) -> dict[str, int]:
    return {"bytes_up": relay.bytes_up, "bytes_down": relay.bytes_down, "connections": relay.connections}


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


async def _reply(stream: H2Stream, status: int, body: dict[str, Any], extra: list[tuple[str, str]]) -> None:
    data = json.dumps(body).encode()
    stream.send_headers(
        [(":status", str(status)), ("content-type", "application/json"), ("content-length", str(len(data))), *extra]
    )
    await stream.write(data)
    stream.end()

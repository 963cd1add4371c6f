"""How a button becomes a run: one run per tenant at a time, executed by a backend, followed event by
event, and kept (events, progress, report, timeline) with the run."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tenantry.director.config import JobsConfig
from tenantry.director.errors import DirectorError
from tenantry.director.jobs import timeline
from tenantry.director.jobs.awx import AwxBackend
from tenantry.director.jobs.backend import Backend, JobError, JobOutcome, JobSpec
from tenantry.director.jobs.progress import Progress, event_row
from tenantry.director.jobs.records import ACTIVE, KINDS, RunRecords, RunRow
from tenantry.director.settings import ExpertSettings
from tenantry.director.store import Database

log = logging.getLogger(__name__)

# What a VM name may be when it goes into a job (also refused by the failover module when unknown).
VM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._()+-]{0,79}$")
MAX_VMS = 1000
_FLUSH = 0.25  # seconds between two progress writes while events stream in

Finished = Callable[[RunRow], None]
REPORT_FILES = ("report.json", "timeline.svg", "summary.txt")


class JobManager:
    def __init__(
        self,
        db: Database,
        *,
        config: JobsConfig,
        jobs_dir: Path,
        settings: Callable[[], ExpertSettings],
        events: Callable[..., None],
        backends: dict[str, Backend] | None = None,
        owner: str | None = None,
        alive: Callable[[], set[str]] | None = None,
    ) -> None:
        """``owner`` and ``alive`` with several Directors: this Director's id, and the ids of those whose
        heartbeat is current (runs are recorded with their Director; only a gone one's are interrupted)."""
        from tenantry.director.jobs.runner import RunnerBackend

        self.records = RunRecords(db)
        self.config = config
        self.dir = jobs_dir
        self._settings = settings
        self._event = events
        self.backends: dict[str, Backend] = backends or {
            "runner": RunnerBackend(config),
            "awx": AwxBackend(settings),
        }
        self.on_finished: list[Finished] = []
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.owner = owner
        self._alive = alive

    # ------------------------------------------------------------------ state
    @property
    def backend_name(self) -> str:
        return self._settings().jobs_backend

    @property
    def enabled(self) -> bool:
        return self.backend_name == "awx" or self.config.enabled

    def recover(self, *, starting: bool = True) -> int:
        """At start: runs a previous Director left active are interrupted (their tenant is free again).

        A failover module finishes and journals on its own even when its playbook was killed; running
        the same button again resumes it from its journal.
        """
        count = 0
        for run in self.orphans(starting=starting):
            self.records.update(
                run.id,
                state="interrupted",
                lock_key=None,
                ended_at=time.time(),
                message=(
                    "interrupted by a Director restart; run it again to resume"
                    if run.director_id in (None, self.owner)
                    else f"interrupted: its Director ({run.director_id}) is gone; run it again to resume"
                ),
            )
            count += 1
        return count

    def orphans(self, *, starting: bool = False) -> list[RunRow]:
        """Active runs no live process follows: at start a previous process's own; with several Directors
        also those of a Director that is gone (its heartbeat stopped), never a live one's."""
        active = self.records.active()
        if self.owner is None:  # one Director: every active run is its own
            return active if starting else []
        alive = self._alive() if self._alive is not None else set()
        mine = {self.owner, None} if starting else set()
        return [
            r for r in active if r.director_id in mine or (r.director_id not in alive and r.director_id != self.owner)
        ]

    async def stop(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        for task in list(self._tasks.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def run_dir(self, run_id: str) -> Path:
        return self.dir / run_id

    # ------------------------------------------------------------------ starting
    def start(
        self,
        kind: str,
        *,
        tenant_id: str | None,
        tenant_name: str | None,
        params: dict[str, Any] | None = None,
        actor: str = "",
    ) -> tuple[RunRow, bool]:
        """Start a run; ``(run, True)``, or ``(the tenant's running run, False)`` when one is active."""
        if kind not in KINDS:
            raise DirectorError(422, f"invalid request: kind: one of {', '.join(KINDS)}")
        if not self.enabled:
            raise DirectorError(
                409, "jobs are not enabled on this Director (its [jobs] configuration, or jobs_backend awx)"
            )
        params = _checked(kind, params or {})
        exclusive = KINDS[kind][2]
        if exclusive and tenant_id is None:
            raise DirectorError(422, f"invalid request: a {kind} run needs a tenant")
        run = RunRow(
            id=time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3),
            tenant_id=tenant_id,
            kind=kind,
            state="queued",
            lock_key=tenant_id if exclusive else None,
            backend=self.backend_name,
            backend_ref="",
            params=params,
            created_by=actor,
            created_at=time.time(),
            started_at=None,
            ended_at=None,
            director_id=self.owner,
        )
        if not self.records.add(run):
            running = self.records.locked_by(tenant_id or "")
            if running is not None:
                return running, False
            if not self.records.add(run):  # it ended in between
                raise DirectorError(409, "another run of this tenant is starting; try again")
        self._event(
            "run_started",
            f"{kind} run {run.id} started by {actor or '?'}",
            tenant_id,
            run=run.id,
            run_kind=kind,
            params=params,
        )
        spec = JobSpec(
            run_id=run.id,
            kind=kind,
            playbook=KINDS[kind][0],
            title=KINDS[kind][1],
            tenant=tenant_name,
            extravars=_extravars(kind, tenant_name, params),
            timeout=self._settings().jobs_timeout,
            directory=self.run_dir(run.id),
            unsafe={"tenant", "vms"},
        )
        task = asyncio.get_running_loop().create_task(self._execute(run, spec), name=f"run-{run.id}")
        self._tasks[run.id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(run.id, None))
        return run, True

    # ------------------------------------------------------------------ running
    async def _execute(self, run: RunRow, spec: JobSpec) -> None:
        progress = Progress()
        seq = 0
        pending: list[tuple[int, float, str, str, str, str]] = []
        last_flush = 0.0
        backend = self.backends[run.backend]
        spec.directory.mkdir(parents=True, exist_ok=True)

        def flush(force: bool = False) -> None:
            nonlocal last_flush, pending
            now = time.monotonic()
            if not force and now - last_flush < _FLUSH:
                return
            self.records.add_events(run.id, pending)
            pending = []
            self.records.update(run.id, progress=progress.progress())
            last_flush = now

        def emit(event: dict[str, Any]) -> None:
            nonlocal seq
            seq += 1
            row = event_row(event, seq)
            pending.append((row[0], row[1] or time.time(), *row[2:]))
            progress.feed(event)
            flush(force=progress.changed)

        def started(ref: str) -> None:
            self.records.update(run.id, state="running", started_at=time.time(), backend_ref=ref)

        outcome: JobOutcome
        try:
            outcome = await backend.run(spec, emit, started)
        except JobError as exc:
            outcome = JobOutcome("failed", message=str(exc))
        except asyncio.CancelledError:
            flush(force=True)
            self.records.update(
                run.id, state="interrupted", lock_key=None, ended_at=time.time(), message="the Director stopped"
            )
            raise
        except Exception as exc:  # a bug must not leave the tenant locked
            log.exception("run %s failed in the Director", run.id)
            outcome = JobOutcome("failed", message=f"the Director failed to run the job: {exc}")
        flush(force=True)
        self._finish(run, outcome, progress)

    def _finish(self, run: RunRow, outcome: JobOutcome, progress: Progress) -> None:
        result = progress.result()
        report = result.get("report")
        state = outcome.status
        # The playbook's own words first (a refused preflight says what to do), then how the job ended.
        message = progress.error or outcome.message
        if progress.error and outcome.message and outcome.message.startswith("stopped"):
            message = f"{outcome.message}: {progress.error}"
        if isinstance(report, dict) and report.get("status") == "failed":
            state = "failed"
        if state != "successful" and not message:
            message = progress.error or "the job failed"
        rto = report.get("rto_seconds") if isinstance(report, dict) else None
        if isinstance(report, dict):
            self._save_report(run.id, report, result.get("summary") or [])
        self.records.update(
            run.id,
            state=state,
            lock_key=None,
            ended_at=time.time(),
            result=result,
            progress=progress.progress(),
            rto_seconds=float(rto) if isinstance(rto, int | float) else None,
            message=message[:2000],
        )
        listing = result.get("listing")
        if run.kind == "vms" and run.tenant_id and isinstance(listing, dict):
            names = {str(v.get("name")) for v in listing.get("vms") or [] if isinstance(v, dict)}
            self.records.save_facts(
                run.tenant_id,
                targets=listing.get("targets") or [],
                networks=listing.get("networks") or [],
                vms=listing.get("vms") or [],
                workloads=len(names),
                vms_at=time.time(),
            )
        self._event(
            "run_finished",
            f"{run.kind} run {run.id}: {state}" + (f" ({message[:200]})" if message and state != "successful" else ""),
            run.tenant_id,
            run=run.id,
            run_kind=run.kind,
            state=state,
            rto_seconds=rto,
        )
        done = self.records.get(run.id)
        for callback in self.on_finished:
            try:
                callback(done or run)
            except Exception:
                log.exception("after run %s", run.id)
        self._prune(run.tenant_id)

    def _save_report(self, run_id: str, report: dict[str, Any], summary: list[str]) -> None:
        folder = self.run_dir(run_id)
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in (
            ("report.json", json.dumps(report, indent=1, sort_keys=True) + "\n"),
            ("timeline.svg", timeline.svg(report)),
            ("summary.txt", "\n".join(str(line) for line in summary) + "\n"),
        ):
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.")  # 0600; two writers never share one
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
            os.replace(tmp, folder / name)

    def _prune(self, tenant_id: str | None) -> None:
        """Keep the newest ``keep_runs`` artifact directories of a tenant (the records stay)."""
        if tenant_id is None:
            return
        old = self.records.of_tenant(tenant_id, limit=1000, offset=self.config.keep_runs)
        for run in old:
            shutil.rmtree(self.run_dir(run.id), ignore_errors=True)

    # ------------------------------------------------------------------ reading
    def get(self, run_id: str) -> RunRow | None:
        return self.records.get(run_id) if re.match(r"^[0-9TZ]{16}-[0-9a-f]{6}$", run_id) else None

    def report_file(self, run: RunRow, name: str) -> Path | None:
        """A finished run's report, timeline or summary file. The run's record (in the database every
        Director shares) is the truth; the files are written from it where the run finished, and again on
        any other Director asked for them (several Directors), or after the artifacts were pruned."""
        if name not in REPORT_FILES:
            return None
        path = self.run_dir(run.id) / name
        report = run.result.get("report")
        if not path.is_file() and not run.active and isinstance(report, dict):
            self._save_report(run.id, report, run.result.get("summary") or [])
        return path if path.is_file() else None

    def stuck(self, older_than: float) -> list[RunRow]:
        now = time.time()
        return [
            r
            for r in self.records.active()
            if r.kind in ("test", "failover", "failback", "cleanup")
            and now - (r.started_at or r.created_at) > older_than
        ]

    def counts(self) -> dict[str, int]:
        counts = {state: 0 for state in ("queued", "running", "successful", "failed", "canceled", "interrupted")}
        counts.update(self.records.counts_by_state())
        return counts

    def active_count(self) -> int:
        return sum(1 for r in self.records.active() if r.state in ACTIVE)


def _checked(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """Only what each kind takes; VM names checked (they are also marked never to be templated)."""
    out: dict[str, Any] = {}
    vms = params.get("vms") or []
    if kind in ("test", "failover", "failback"):
        if not isinstance(vms, list) or len(vms) > MAX_VMS or not all(isinstance(v, str) for v in vms):
            raise DirectorError(422, "invalid request: vms: a list of VM names")
        bad = [v for v in vms if not VM_NAME.match(v)]
        if bad:
            raise DirectorError(422, f"invalid request: vms: not a VM name: {bad[0][:80]!r}")
        out["vms"] = sorted(set(vms))
    if kind == "failover":
        vlan = params.get("destination_vlan")
        if not isinstance(vlan, int) or isinstance(vlan, bool) or not 1 <= vlan <= 4094:
            raise DirectorError(422, "invalid request: destination_vlan: a VLAN id from 1 to 4094")
        out["destination_vlan"] = vlan
    return out


def _extravars(kind: str, tenant: str | None, params: dict[str, Any]) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if tenant is not None:
        extra["tenant"] = tenant
    if params.get("vms"):
        extra["vms"] = list(params["vms"])
    if kind == "failover":
        extra["destination_vlan"] = params["destination_vlan"]
    if kind == "cleanup":
        extra["cleanup"] = True
    if kind == "audit":
        extra["audit_post"] = False  # the Director reads the findings from the job's events
    return extra

"""The alarm rules, evaluated every ``alarm_check_interval`` seconds, and their delivery.

* ``transporter_offline``: a remote tenant's Transporter has been offline longer than
  ``alarm_offline_after``; cleared when it is online again (or the tenant is revoked or removed);
* ``certificate_expiring``: its valid certificate expires within ``alarm_certificate_days``; cleared
  once a renewed certificate is further away;
* ``run_failed``: a failover, test failover, clean-up or failback run failed or was interrupted;
  cleared when a later run of that kind succeeds;
* ``run_stuck``: such a run has been running longer than ``alarm_run_stuck_after``; cleared when it ends;
* ``drift``: the drift audit reports a finding; cleared when an audit no longer reports it;
* ``quota_exceeded``: a tenant has more workloads (VMs) than its ``workload_quota``; cleared when it is
  within its quota;
* backups (docs/backup.md): ``backup_failed`` (per job, also a scheduled run that could not start),
  ``restore_failed``, ``retention_failed``, ``repository_check_failed``, ``repository_copy_failed``
  (the 3-2-1 copy not verified), ``repository_maintenance_failed``; cleared when a later run of the
  same kind (and job) succeeds, a check passes or a copy verifies.

An alarm is one row from raise to clear (one open alarm per condition, ``open_key``); history
stays.  Operators acknowledge alarms; only recovery clears them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tenantry.director.alarms import delivery
from tenantry.director.alarms.records import AlarmRecords, AlarmRow
from tenantry.director.settings import ExpertSettings
from tenantry.director.store import Database

log = logging.getLogger(__name__)
FAILOVER_KINDS = ("test", "cleanup", "failover", "failback")
SEVERITY = {
    "transporter_offline": "major",
    "certificate_expiring": "warning",
    "run_failed": "major",
    "run_stuck": "major",
    "drift": "warning",
    "quota_exceeded": "warning",
    "backup_failed": "major",
    "restore_failed": "major",
    "retention_failed": "warning",
    "repository_check_failed": "major",
    "repository_copy_failed": "major",
    "repository_maintenance_failed": "warning",
}
# A failed check or copy run raises the same alarm as the failure it found.
_BACKUP_ALIASES = {"check_failed": "repository_check_failed", "copy_failed": "repository_copy_failed"}


@dataclass(frozen=True)
class TenantView:
    id: str
    name: str
    kind: str
    state: str  # online | offline | awaiting_enrollment | revoked | local
    since: float | None
    workload_quota: int


class RunView(Protocol):
    id: str
    tenant_id: str | None
    kind: str
    state: str
    message: str
    started_at: float | None
    created_at: float


def _backup_key(kind: str, tenant_id: str, job: Any) -> str:
    return f"{kind}:{tenant_id}" + (f":{job}" if job else "")


def _minutes(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class AlarmManager:
    def __init__(
        self,
        db: Database,
        *,
        settings: Callable[[], ExpertSettings],
        tenants: Callable[[], list[TenantView]],
        workloads: Callable[[], dict[str, int | None]],
        stuck_runs: Callable[[float], Sequence[RunView]],
        events: Callable[..., None],
        console_url: Callable[[], str],
    ) -> None:
        self.records = AlarmRecords(db)
        self._settings = settings
        self._tenants = tenants
        self._workloads = workloads
        self._stuck = stuck_runs
        self._event = events
        self._console_url = console_url
        self._task: asyncio.Task[None] | None = None
        self._deliveries: set[asyncio.Task[None]] = set()
        self._names: dict[str, str] = {}

    # ------------------------------------------------------------------ loop
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="alarms")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        pending = list(self._deliveries)
        if pending:
            await asyncio.wait(pending, timeout=5)

    async def _loop(self) -> None:
        while True:
            try:
                self.evaluate()
            except Exception:
                log.exception("alarm rules failed")
            await asyncio.sleep(self._settings().alarm_check_interval)

    # ------------------------------------------------------------------ rules
    def evaluate(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        s = self._settings()
        tenants = self._tenants()
        self._names = {t.id: t.name for t in tenants}
        expiry = self.records.certificate_expiry()
        workloads = self._workloads()
        wanted: dict[str, tuple[str, str | None, str, str, dict[str, Any]]] = {}
        for t in tenants:
            if (
                t.kind == "remote"
                and t.state == "offline"
                and t.since is not None
                and now - t.since >= s.alarm_offline_after
            ):
                wanted[f"transporter_offline:{t.id}"] = (
                    "transporter_offline",
                    t.id,
                    t.name,
                    f"the Transporter of tenant {t.name} has been offline for {_minutes(now - t.since)}",
                    {"since": t.since},
                )
            not_after = expiry.get(t.id)
            if t.kind == "remote" and t.state not in ("revoked",) and not_after is not None:
                left = not_after - now
                if left < s.alarm_certificate_days * 86400:
                    what = "expired" if left <= 0 else f"expires in {left / 86400:.1f} days"
                    wanted[f"certificate_expiring:{t.id}"] = (
                        "certificate_expiring",
                        t.id,
                        t.name,
                        f"the certificate of tenant {t.name} {what} (renew it, or the site re-enrolls)",
                        {"not_after": not_after},
                    )
            count = workloads.get(t.id)
            if t.workload_quota and count is not None and count > t.workload_quota:
                wanted[f"quota_exceeded:{t.id}"] = (
                    "quota_exceeded",
                    t.id,
                    t.name,
                    f"tenant {t.name} has {count} workloads, over its quota of {t.workload_quota}",
                    {"workloads": count, "quota": t.workload_quota},
                )
        for run in self._stuck(s.alarm_run_stuck_after):
            name = self._names.get(run.tenant_id or "", "?")
            since = run.started_at or run.created_at
            wanted[f"run_stuck:{run.id}"] = (
                "run_stuck",
                run.tenant_id,
                name,
                f"the {run.kind} run {run.id} of tenant {name} has been running for {_minutes(now - since)}",
                {"run": run.id},
            )
        current = self.records.open_by_key()
        for key, (kind, tenant_id, subject, message, data) in wanted.items():
            self._raise(key, kind, tenant_id, subject, message, data)
        for key in current:
            kind = key.split(":", 1)[0]
            if (
                kind in ("transporter_offline", "certificate_expiring", "quota_exceeded", "run_stuck")
                and key not in wanted
            ):
                self._clear(key, "recovered")

    def run_finished(self, run: RunView) -> None:
        if run.kind not in FAILOVER_KINDS or run.tenant_id is None:
            return
        key = f"run_failed:{run.tenant_id}:{run.kind}"
        name = self._names.get(run.tenant_id) or next(
            (t.name for t in self._tenants() if t.id == run.tenant_id), run.tenant_id
        )
        if run.state == "successful":
            self._clear(key, f"run {run.id} succeeded")
        elif run.state in ("failed", "interrupted"):
            self._raise(
                key,
                "run_failed",
                run.tenant_id,
                name,
                f"the {run.kind} run {run.id} of tenant {name} {run.state}: {run.message[:300]}",
                {"run": run.id},
            )
        self._clear(f"run_stuck:{run.id}", "the run ended")

    def audit(self, findings: list[dict[str, Any]], tenant_ids: dict[str, str]) -> None:
        """The drift audit's findings: one alarm per finding, cleared when the next audit lacks it."""
        wanted = set()
        for f in findings:
            key = "drift:" + str(f.get("key") or f"{f.get('check')}:{f.get('subject')}")[:400]
            wanted.add(key)
            tenant = str(f.get("tenant") or "")
            self._raise(
                key,
                "drift",
                tenant_ids.get(tenant),
                str(f.get("subject") or tenant or "site")[:200],
                str(f.get("message") or f.get("check") or "drift")[:1000],
                {"check": f.get("check"), "tenant": tenant or None},
            )
        for key in self.records.open_by_key():
            if key.startswith("drift:") and key not in wanted:
                self._clear(key, "no longer found by the audit")

    def backup_alarm(self, kind: str, message: str, tenant_id: str | None, data: dict[str, Any]) -> None:
        """A backup, restore or repository failure (``Backups.on_alarm``): one open alarm per tenant, kind and job."""
        kind = _BACKUP_ALIASES.get(kind, kind)
        if kind not in SEVERITY or tenant_id is None:
            return
        job = data.get("job")
        name = self._names.get(tenant_id) or next((t.name for t in self._tenants() if t.id == tenant_id), tenant_id)
        info = {k: v for k, v in data.items() if k in ("run", "job")}
        self._raise(_backup_key(kind, tenant_id, job), kind, tenant_id, name, f"tenant {name}: {message}"[:1000], info)

    def backup_recovered(self, kind: str, tenant_id: str, job: str | None, why: str) -> None:
        """What failed works again (``Backups.on_recovered``)."""
        self._clear(_backup_key(_BACKUP_ALIASES.get(kind, kind), tenant_id, job), why)

    # ------------------------------------------------------------------ raise / clear / ack
    def _raise(
        self, key: str, kind: str, tenant_id: str | None, subject: str, message: str, data: dict[str, Any]
    ) -> None:
        alarm = self.records.raise_(key, kind, SEVERITY.get(kind, "warning"), tenant_id, subject, message, data)
        if alarm is not None:
            self._event("alarm_raised", message, tenant_id, alarm=alarm.id, alarm_kind=kind)
            self._deliver(alarm, "raised")

    def _clear(self, key: str, why: str) -> None:
        alarm = self.records.clear(key, why)
        if alarm is not None:
            self._event("alarm_cleared", f"{alarm.message} - cleared: {why}", alarm.tenant_id, alarm=alarm.id)
            if self._settings().alarm_notify_cleared:
                self._deliver(alarm, "cleared")

    def ack(self, alarm_id: int, by: str) -> AlarmRow | None:
        alarm = self.records.ack(alarm_id, by)
        if alarm is not None:
            self._event("alarm_acknowledged", f"alarm {alarm_id} acknowledged by {by}", alarm.tenant_id)
        return alarm

    # ------------------------------------------------------------------ delivery
    def _deliver(self, alarm: AlarmRow, what: str) -> None:
        s = self._settings()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if s.smtp_host and s.smtp_to:
            self._spawn(loop, self._mail(alarm, what, s))
        if s.webhook_url:
            self._spawn(loop, self._webhook(alarm, what, s))

    def _spawn(self, loop: asyncio.AbstractEventLoop, coro: Any) -> None:
        task = loop.create_task(coro)
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    def _text(self, alarm: AlarmRow, what: str) -> tuple[str, str]:
        subject = f"[tenantry] {what.upper()} {alarm.severity}: {alarm.message}"[:200]
        lines = [
            f"Alarm {alarm.id} {what}: {alarm.message}",
            "",
            f"kind:     {alarm.kind}",
            f"severity: {alarm.severity}",
            f"tenant:   {self._names.get(alarm.tenant_id or '', alarm.subject)}",
            f"raised:   {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(alarm.raised_at))}",
        ]
        if alarm.cleared_at:
            lines.append(f"cleared:  {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(alarm.cleared_at))}")
        lines += ["", f"Console: {self._console_url()}/console/alarms"]
        return subject, "\n".join(lines) + "\n"

    async def _mail(self, alarm: AlarmRow, what: str, s: ExpertSettings) -> None:
        subject, body = self._text(alarm, what)
        try:
            detail = await asyncio.to_thread(delivery.send_mail, s, subject, body)
            ok = True
        except Exception as exc:  # SMTP errors, TLS, DNS, timeouts: recorded, never fatal
            detail, ok = f"{type(exc).__name__}: {exc}", False
            log.warning("alarm %d: e-mail failed: %s", alarm.id, detail)
        self.records.delivered(alarm.id, "email", what, ok, detail)

    async def _webhook(self, alarm: AlarmRow, what: str, s: ExpertSettings) -> None:
        payload = {"event": f"alarm.{what}", "alarm": alarm.public(self._names.get(alarm.tenant_id or ""))}
        try:
            detail = await asyncio.to_thread(delivery.post_webhook, s, payload)
            ok = True
        except Exception as exc:
            detail, ok = f"{type(exc).__name__}: {exc}", False
            log.warning("alarm %d: webhook failed: %s", alarm.id, detail)
        self.records.delivered(alarm.id, "webhook", what, ok, detail)

    async def test_delivery(self) -> dict[str, str]:
        """Send a test e-mail and webhook with the current settings (the settings page's button)."""
        s = self._settings()
        out: dict[str, str] = {}
        if s.smtp_host and s.smtp_to:
            try:
                out["email"] = await asyncio.to_thread(
                    delivery.send_mail, s, "[tenantry] test e-mail", "The Director's alarm e-mail works.\n"
                )
            except Exception as exc:
                out["email"] = f"failed: {type(exc).__name__}: {exc}"
        else:
            out["email"] = "not configured (smtp_host, smtp_to)"
        if s.webhook_url:
            try:
                out["webhook"] = await asyncio.to_thread(delivery.post_webhook, s, {"event": "test"})
            except Exception as exc:
                out["webhook"] = f"failed: {type(exc).__name__}: {exc}"
        else:
            out["webhook"] = "not configured (webhook_url)"
        return out

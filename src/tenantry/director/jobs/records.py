"""Runs, their events and what jobs learned about tenants (tables ``runs``, ``run_events``,
``tenant_facts`` of migration 0002)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from tenantry.director.store import Database, IntegrityError, in_list

# A run's kind -> (playbook under playbooks/, AWX job template title, exclusive per tenant)
KINDS: dict[str, tuple[str, str, bool]] = {
    "test": ("test_failover.yml", "test failover", True),
    "cleanup": ("test_failover.yml", "clean up test failover", True),
    "failover": ("failover.yml", "failover", True),
    "failback": ("failback.yml", "failback", True),
    "vms": ("failover_info.yml", "tenant VMs", False),
    "audit": ("audit.yml", "audit", False),
}
ACTIVE = ("queued", "running")
FINAL = ("successful", "failed", "canceled", "interrupted")


@dataclass
class RunRow:
    id: str
    tenant_id: str | None
    kind: str
    state: str
    lock_key: str | None
    backend: str
    backend_ref: str
    params: dict[str, Any]
    created_by: str
    created_at: float
    started_at: float | None
    ended_at: float | None
    progress: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    rto_seconds: float | None = None
    message: str = ""
    director_id: str | None = None  # several Directors: the one running it (migration 0004)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    def public(self, tenant_name: str | None) -> dict[str, Any]:
        report = self.result.get("report") if isinstance(self.result.get("report"), dict) else None
        return {
            "id": self.id,
            "tenant": tenant_name,
            "kind": self.kind,
            "state": self.state,
            "backend": self.backend,
            "params": self.params,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "rto_seconds": self.rto_seconds,
            "message": self.message,
            "progress": self.progress,
            "summary": self.result.get("summary", []),
            "report_status": report.get("status") if report else None,
            "has_report": report is not None,
        }


_COLUMNS = (
    "id, tenant_id, kind, state, lock_key, backend, backend_ref, params, created_by, created_at, started_at, "
    "ended_at, progress, result, rto_seconds, message, director_id"
)


def _run(row: tuple[Any, ...]) -> RunRow:
    values = list(row)
    for i in (7, 12, 13):
        values[i] = json.loads(values[i]) if values[i] else {}
    return RunRow(*values)


@dataclass
class EventRow:
    seq: int
    ts: float
    event: str
    task: str
    host: str
    text: str


class RunRecords:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, run: RunRow) -> bool:
        """Insert ``run``; False when its tenant already has an active exclusive run (lock_key taken).

        The check is for the common case; the UNIQUE lock_key decides a race (two Directors sharing
        PostgreSQL, whose transactions do not serialise like SQLite's).
        """
        try:
            self._insert(run)
        except IntegrityError:
            if run.lock_key is not None and self.locked_by(run.lock_key) is not None:
                return False
            raise
        return True

    def _insert(self, run: RunRow) -> None:
        with self.db.tx():
            if run.lock_key is not None and self.db.row("SELECT id FROM runs WHERE lock_key = ?", (run.lock_key,)):
                raise IntegrityError(f"runs.lock_key {run.lock_key} is taken")
            self.db.execute(
                f"INSERT INTO runs ({_COLUMNS}) VALUES ({', '.join('?' * 17)})",
                (
                    run.id,
                    run.tenant_id,
                    run.kind,
                    run.state,
                    run.lock_key,
                    run.backend,
                    run.backend_ref,
                    json.dumps(run.params),
                    run.created_by,
                    run.created_at,
                    run.started_at,
                    run.ended_at,
                    json.dumps(run.progress),
                    json.dumps(run.result),
                    run.rto_seconds,
                    run.message,
                    run.director_id,
                ),
            )

    def get(self, run_id: str) -> RunRow | None:
        row = self.db.row(f"SELECT {_COLUMNS} FROM runs WHERE id = ?", (run_id,))
        return _run(row) if row else None

    def locked_by(self, tenant_id: str) -> RunRow | None:
        row = self.db.row(f"SELECT {_COLUMNS} FROM runs WHERE lock_key = ?", (tenant_id,))
        return _run(row) if row else None

    def of_tenant(
        self, tenant_id: str, *, kinds: tuple[str, ...] | None = None, limit: int = 50, offset: int = 0
    ) -> list[RunRow]:
        sql = f"SELECT {_COLUMNS} FROM runs WHERE tenant_id = ?"
        args: list[Any] = [tenant_id]
        if kinds:
            sql += f" AND {in_list('kind', kinds)}"
            args += list(kinds)
        sql += " ORDER BY created_at DESC LIMIT ? OFFSET ?"
        args += [limit, offset]
        return [_run(r) for r in self.db.rows(sql, args)]

    def recent(self, *, kinds: tuple[str, ...] | None = None, limit: int = 50) -> list[RunRow]:
        sql = f"SELECT {_COLUMNS} FROM runs"
        args: list[Any] = []
        if kinds:
            sql += f" WHERE {in_list('kind', kinds)}"
            args += list(kinds)
        sql += " ORDER BY created_at DESC LIMIT ?"
        args.append(limit)
        return [_run(r) for r in self.db.rows(sql, args)]

    def active(self) -> list[RunRow]:
        rows = self.db.rows(f"SELECT {_COLUMNS} FROM runs WHERE state IN (?, ?) ORDER BY created_at", ACTIVE)
        return [_run(r) for r in rows]

    def last_of_kinds(self, kinds: tuple[str, ...], tenant_ids: list[str] | None = None) -> dict[str, RunRow]:
        """Per tenant id (all, or those of ``tenant_ids``), its newest run of one of ``kinds`` (for the fleet page)."""
        sql = (
            f"SELECT {_COLUMNS} FROM runs r WHERE {in_list('kind', kinds)} AND created_at = "
            f"(SELECT MAX(created_at) FROM runs s WHERE s.tenant_id = r.tenant_id AND {in_list('s.kind', kinds)})"
        )
        if tenant_ids is not None:
            if not tenant_ids:
                return {}
            sql += f" AND {in_list('r.tenant_id', tenant_ids)}"
        rows = self.db.rows(sql, (*kinds, *kinds, *(tenant_ids or ())))
        return {str(r[1]): _run(r) for r in rows if r[1] is not None}

    def counts_by_state(self) -> dict[str, int]:
        return {str(k): int(n) for k, n in self.db.rows("SELECT state, COUNT(*) FROM runs GROUP BY state")}

    def update(self, run_id: str, **fields: Any) -> None:
        for key in ("params", "progress", "result"):
            if key in fields:
                fields[key] = json.dumps(fields[key], default=str)
        cols = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(f"UPDATE runs SET {cols} WHERE id = ?", (*fields.values(), run_id))

    # ---------------------------------------------------------------- events
    def add_events(self, run_id: str, events: list[tuple[int, float, str, str, str, str]]) -> None:
        if events:
            self.db.executemany(
                "INSERT INTO run_events (run_id, seq, ts, event, task, host, text) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (run_id, seq) DO NOTHING",
                [(run_id, *e) for e in events],
            )

    def events(self, run_id: str, after: int = 0, limit: int = 500) -> list[EventRow]:
        rows = self.db.rows(
            "SELECT seq, ts, event, task, host, text FROM run_events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (run_id, after, limit),
        )
        return [EventRow(int(r[0]), float(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5])) for r in rows]

    # ---------------------------------------------------------------- tenant facts
    def facts(self, tenant_id: str) -> dict[str, Any]:
        row = self.db.row(
            "SELECT targets, networks, vms, workloads, vms_at, updated_at FROM tenant_facts WHERE tenant_id = ?",
            (tenant_id,),
        )
        if row is None:
            return {"targets": [], "networks": [], "vms": [], "workloads": None, "vms_at": None, "updated_at": None}
        return {
            "targets": json.loads(row[0]),
            "networks": json.loads(row[1]),
            "vms": json.loads(row[2]),
            "workloads": row[3],
            "vms_at": row[4],
            "updated_at": row[5],
        }

    def all_facts(self, tenant_ids: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """Targets and workload count per tenant id (all, or those of ``tenant_ids``)."""
        sql = "SELECT tenant_id, targets, workloads FROM tenant_facts"
        if tenant_ids is not None:
            if not tenant_ids:
                return {}
            sql += f" WHERE {in_list('tenant_id', tenant_ids)}"
        rows = self.db.rows(sql, tenant_ids or ())
        return {str(r[0]): {"targets": json.loads(r[1]), "workloads": r[2]} for r in rows}

    def save_facts(self, tenant_id: str, **fields: Any) -> None:
        now = time.time()
        values = {k: json.dumps(v) if k in ("targets", "networks", "vms") else v for k, v in fields.items()}
        values["updated_at"] = now
        cols = ", ".join(values)
        marks = ", ".join("?" * (len(values) + 1))
        updates = ", ".join(f"{k} = excluded.{k}" for k in values)
        self.db.execute(
            f"INSERT INTO tenant_facts (tenant_id, {cols}) VALUES ({marks}) "
            f"ON CONFLICT (tenant_id) DO UPDATE SET {updates}",
            (tenant_id, *values.values()),
        )

"""Queries over the backup tables of migration 0003: jobs, runs, snapshots."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from tenantry.director.store.db import Database


@dataclass
class JobRow:
    id: int
    tenant_id: str
    name: str
    spec: dict[str, Any]
    created_at: float
    updated_at: float
    last_run_id: int | None
    last_scheduled_at: float | None


@dataclass
class RunRow:
    id: int
    tenant_id: str
    job_name: str | None
    kind: str
    state: str
    trigger: str
    started_at: float
    finished_at: float | None
    message: str
    detail: dict[str, Any]


@dataclass
class SnapshotRow:
    tenant_id: str
    snapshot_id: str
    vm: str
    taken_at: float
    run_id: int | None
    job_name: str | None
    location: str
    path: str
    total_bytes: int | None
    added_bytes: int | None
    uplink_bytes: int | None
    copied: int


_JOB = "id, tenant_id, name, spec, created_at, updated_at, last_run_id, last_scheduled_at"
_RUN = "id, tenant_id, job_name, kind, state, trigger, started_at, finished_at, message, detail"
_SNAP = (
    "tenant_id, snapshot_id, vm, taken_at, run_id, job_name, location, path, total_bytes, added_bytes, "
    "uplink_bytes, copied"
)


def _job(r: tuple[Any, ...]) -> JobRow:
    return JobRow(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6], r[7])


def _run(r: tuple[Any, ...]) -> RunRow:
    return RunRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], json.loads(r[9]))


class BackupStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------------ jobs
    def job(self, tenant_id: str, name: str) -> JobRow | None:
        r = self.db.row(f"SELECT {_JOB} FROM backup_jobs WHERE tenant_id = ? AND name = ?", (tenant_id, name))
        return _job(r) if r else None

    def jobs(self, tenant_id: str | None = None) -> list[JobRow]:
        if tenant_id is None:
            return [_job(r) for r in self.db.rows(f"SELECT {_JOB} FROM backup_jobs ORDER BY tenant_id, name")]
        rows = self.db.rows(f"SELECT {_JOB} FROM backup_jobs WHERE tenant_id = ? ORDER BY name", (tenant_id,))
        return [_job(r) for r in rows]

    def put_job(self, tenant_id: str, name: str, spec: dict[str, Any]) -> tuple[JobRow, bool]:
        """Create or replace; ``True`` when it was created."""
        now = time.time()
        current = self.job(tenant_id, name)
        if current is None:
            self.db.insert(
                "INSERT INTO backup_jobs (tenant_id, name, spec, created_at, updated_at, last_scheduled_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (tenant_id, name, json.dumps(spec), now, now, now),
            )
        elif current.spec != spec:
            self.db.execute(
                "UPDATE backup_jobs SET spec = ?, updated_at = ? WHERE id = ?", (json.dumps(spec), now, current.id)
            )
        found = self.job(tenant_id, name)
        assert found is not None
        return found, current is None

    def delete_job(self, tenant_id: str, name: str) -> bool:
        return self.db.execute("DELETE FROM backup_jobs WHERE tenant_id = ? AND name = ?", (tenant_id, name)) == 1

    def job_ran(self, job_id: int, run_id: int | None = None, scheduled_at: float | None = None) -> None:
        if run_id is not None:
            self.db.execute("UPDATE backup_jobs SET last_run_id = ? WHERE id = ?", (run_id, job_id))
        if scheduled_at is not None:
            self.db.execute("UPDATE backup_jobs SET last_scheduled_at = ? WHERE id = ?", (scheduled_at, job_id))

    # ------------------------------------------------------------------ runs
    def add_run(self, tenant_id: str, kind: str, *, job_name: str | None, trigger: str) -> RunRow:
        run_id = self.db.insert(
            "INSERT INTO backup_runs (tenant_id, job_name, kind, state, trigger, started_at) VALUES (?, ?, ?, ?, ?, ?)",
            (tenant_id, job_name, kind, "running", trigger, time.time()),
        )
        found = self.run(run_id)
        assert found is not None
        return found

    def run(self, run_id: int) -> RunRow | None:
        r = self.db.row(f"SELECT {_RUN} FROM backup_runs WHERE id = ?", (run_id,))
        return _run(r) if r else None

    def runs(self, tenant_id: str, *, limit: int = 50, kind: str | None = None) -> list[RunRow]:
        sql = f"SELECT {_RUN} FROM backup_runs WHERE tenant_id = ?"
        args: list[Any] = [tenant_id]
        if kind is not None:
            sql += " AND kind = ?"
            args.append(kind)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        return [_run(r) for r in self.db.rows(sql, args)]

    def finish_run(self, run_id: int, state: str, message: str, detail: dict[str, Any]) -> None:
        self.db.execute(
            "UPDATE backup_runs SET state = ?, finished_at = ?, message = ?, detail = ? WHERE id = ?",
            (state, time.time(), message[:4000], json.dumps(detail, default=str), run_id),
        )

    def abandon_running(self) -> int:
        """Runs a previous Director process left running (it stopped or died): failed."""
        return self.db.execute(
            "UPDATE backup_runs SET state = 'failed', finished_at = ?, message = ? WHERE state = 'running'",
            (time.time(), "the Director stopped while this run was in progress"),
        )

    def last_run(self, tenant_id: str, kind: str = "backup") -> RunRow | None:
        r = self.db.row(
            f"SELECT {_RUN} FROM backup_runs WHERE tenant_id = ? AND kind = ? ORDER BY id DESC LIMIT 1",
            (tenant_id, kind),
        )
        return _run(r) if r else None

    # ------------------------------------------------------------------ snapshots
    def add_snapshot(self, row: SnapshotRow) -> None:
        self.db.execute(
            f"INSERT INTO backup_snapshots ({_SNAP}) VALUES ({', '.join('?' * 12)}) "
            "ON CONFLICT (tenant_id, snapshot_id) DO NOTHING",
            (
                row.tenant_id,
                row.snapshot_id,
                row.vm,
                row.taken_at,
                row.run_id,
                row.job_name,
                row.location,
                row.path,
                row.total_bytes,
                row.added_bytes,
                row.uplink_bytes,
                row.copied,
            ),
        )

    def snapshots(self, tenant_id: str, vm: str | None = None, location: str | None = None) -> list[SnapshotRow]:
        sql = f"SELECT {_SNAP} FROM backup_snapshots WHERE tenant_id = ?"
        args: list[Any] = [tenant_id]
        if vm is not None:
            sql += " AND vm = ?"
            args.append(vm)
        if location is not None:
            sql += " AND location = ?"
            args.append(location)
        sql += " ORDER BY taken_at DESC"
        return [SnapshotRow(*r) for r in self.db.rows(sql, args)]

    def latest(self, tenant_id: str, vm: str, location: str) -> SnapshotRow | None:
        found = self.snapshots(tenant_id, vm, location)
        return found[0] if found else None

    def keep_only(self, tenant_id: str, location: str, present: set[str], vm: str | None = None) -> int:
        """Match the rows with the repository's (full) snapshot ids: drop what retention removed, and
        complete the short ids a backup reported."""
        gone = 0
        for snap in self.snapshots(tenant_id, vm=vm, location=location):
            full = [p for p in present if p.startswith(snap.snapshot_id)]
            if len(full) != 1:
                self.db.execute(
                    "DELETE FROM backup_snapshots WHERE tenant_id = ? AND snapshot_id = ?",
                    (tenant_id, snap.snapshot_id),
                )
                gone += 1
            elif full[0] != snap.snapshot_id:
                self.db.execute(
                    "UPDATE backup_snapshots SET snapshot_id = ? WHERE tenant_id = ? AND snapshot_id = ?",
                    (full[0], tenant_id, snap.snapshot_id),
                )
        return gone

    def mark_copied(self, tenant_id: str, ids: set[str]) -> None:
        for sid in ids:
            self.db.execute(
                "UPDATE backup_snapshots SET copied = 1 WHERE tenant_id = ? AND snapshot_id = ?", (tenant_id, sid)
            )

"""Alarms, their deliveries and drift audit reports (tables of migration 0002)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from tenantry.director.store import Database, IntegrityError, in_list

# The open alarms that concern a tenant.
_OPEN_TENANT_ALARMS = "FROM alarms WHERE open_key IS NOT NULL AND tenant_id IS NOT NULL"
# The tenants with an open alarm, as a subquery (the fleet's "with open alarms" filter, in SQL).
OPEN_ALARM_TENANTS = f"SELECT tenant_id {_OPEN_TENANT_ALARMS}"

_COLUMNS = (
    "id, alarm_key, kind, severity, tenant_id, subject, message, data, raised_at, last_seen, acked_at, acked_by, "
    "cleared_at, cleared_by"
)


@dataclass
class AlarmRow:
    id: int
    key: str
    kind: str
    severity: str
    tenant_id: str | None
    subject: str
    message: str
    data: dict[str, Any]
    raised_at: float
    last_seen: float
    acked_at: float | None
    acked_by: str | None
    cleared_at: float | None
    cleared_by: str | None

    @property
    def open(self) -> bool:
        return self.cleared_at is None

    def public(self, tenant_name: str | None) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": self.key,
            "kind": self.kind,
            "severity": self.severity,
            "tenant": tenant_name,
            "subject": self.subject,
            "message": self.message,
            "data": self.data,
            "raised_at": self.raised_at,
            "last_seen": self.last_seen,
            "acked_at": self.acked_at,
            "acked_by": self.acked_by,
            "cleared_at": self.cleared_at,
            "cleared_by": self.cleared_by,
            "open": self.open,
        }


def _alarm(row: tuple[Any, ...]) -> AlarmRow:
    values = list(row)
    values[7] = json.loads(values[7]) if values[7] else {}
    return AlarmRow(*values)


class AlarmRecords:
    def __init__(self, db: Database) -> None:
        self.db = db

    def open_alarms(self, tenant_id: str | None = None) -> list[AlarmRow]:
        sql = f"SELECT {_COLUMNS} FROM alarms WHERE open_key IS NOT NULL"
        args: list[Any] = []
        if tenant_id is not None:
            sql += " AND tenant_id = ?"
            args.append(tenant_id)
        return [_alarm(r) for r in self.db.rows(sql + " ORDER BY raised_at DESC", args)]

    def open_by_key(self) -> dict[str, AlarmRow]:
        return {a.key: a for a in self.open_alarms()}

    def get(self, alarm_id: int) -> AlarmRow | None:
        row = self.db.row(f"SELECT {_COLUMNS} FROM alarms WHERE id = ?", (alarm_id,))
        return _alarm(row) if row else None

    def history(
        self, *, tenant_id: str | None = None, limit: int = 100, before_id: int | None = None
    ) -> list[AlarmRow]:
        sql = f"SELECT {_COLUMNS} FROM alarms WHERE 1 = 1"
        args: list[Any] = []
        if tenant_id is not None:
            sql += " AND tenant_id = ?"
            args.append(tenant_id)
        if before_id is not None:
            sql += " AND id < ?"
            args.append(before_id)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        return [_alarm(r) for r in self.db.rows(sql, args)]

    def raise_(
        self,
        key: str,
        kind: str,
        severity: str,
        tenant_id: str | None,
        subject: str,
        message: str,
        data: dict[str, Any],
    ) -> AlarmRow | None:
        """Open an alarm for ``key``; None when one is open already (its message and last_seen refreshed).

        Several Directors evaluate the same rules against one database: when two open the same alarm at
        once, the UNIQUE open_key lets one win (it delivers); the other refreshes it.
        """
        try:
            return self._open(key, kind, severity, tenant_id, subject, message, data)
        except IntegrityError:
            if self.db.row("SELECT id FROM alarms WHERE open_key = ?", (key,)) is None:
                raise
            return self._open(key, kind, severity, tenant_id, subject, message, data)

    def _open(
        self,
        key: str,
        kind: str,
        severity: str,
        tenant_id: str | None,
        subject: str,
        message: str,
        data: dict[str, Any],
    ) -> AlarmRow | None:
        now = time.time()
        with self.db.tx():
            if self.db.row("SELECT id FROM alarms WHERE open_key = ?", (key,)):
                self.db.execute(
                    "UPDATE alarms SET last_seen = ?, message = ?, data = ? WHERE open_key = ?",
                    (now, message, json.dumps(data, default=str), key),
                )
                return None
            alarm_id = self.db.insert(
                "INSERT INTO alarms (alarm_key, open_key, kind, severity, tenant_id, subject, message, data, "
                "raised_at, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, key, kind, severity, tenant_id, subject, message, json.dumps(data, default=str), now, now),
            )
        return self.get(alarm_id)

    def clear(self, key: str, by: str) -> AlarmRow | None:
        now = time.time()
        with self.db.tx():
            row = self.db.row("SELECT id FROM alarms WHERE open_key = ?", (key,))
            if row is None:
                return None
            self.db.execute(
                "UPDATE alarms SET open_key = NULL, cleared_at = ?, cleared_by = ? WHERE id = ?", (now, by, row[0])
            )
        return self.get(int(row[0]))

    def ack(self, alarm_id: int, by: str) -> AlarmRow | None:
        self.db.execute(
            "UPDATE alarms SET acked_at = ?, acked_by = ? WHERE id = ? AND acked_at IS NULL",
            (time.time(), by, alarm_id),
        )
        return self.get(alarm_id)

    def counts(self) -> list[tuple[str, str, int]]:
        rows = self.db.rows(
            "SELECT kind, severity, COUNT(*) FROM alarms WHERE open_key IS NOT NULL GROUP BY kind, severity"
        )
        return [(str(k), str(s), int(n)) for k, s, n in rows]

    def open_counts_by_tenant(self, tenant_ids: list[str] | None = None) -> dict[str, int]:
        """Per tenant id (all, or those of ``tenant_ids``), how many of its alarms are open."""
        sql = f"SELECT tenant_id, COUNT(*) {_OPEN_TENANT_ALARMS}"
        if tenant_ids is not None:
            if not tenant_ids:
                return {}
            sql += f" AND {in_list('tenant_id', tenant_ids)}"
        rows = self.db.rows(sql + " GROUP BY tenant_id", tenant_ids or ())
        return {str(t): int(n) for t, n in rows}

    def open_tenant_alarm_count(self) -> int:
        """How many open alarms concern a tenant (one aggregate)."""
        row = self.db.row(f"SELECT COUNT(*) {_OPEN_TENANT_ALARMS}")
        return int(row[0]) if row else 0

    # ---------------------------------------------------------------- deliveries
    def delivered(self, alarm_id: int, channel: str, what: str, ok: bool, detail: str) -> None:
        self.db.insert(
            "INSERT INTO alarm_deliveries (alarm_id, ts, channel, what, ok, detail) VALUES (?, ?, ?, ?, ?, ?)",
            (alarm_id, time.time(), channel, what, int(ok), detail[:1000]),
        )

    def deliveries(self, alarm_id: int) -> list[dict[str, Any]]:
        rows = self.db.rows(
            "SELECT ts, channel, what, ok, detail FROM alarm_deliveries WHERE alarm_id = ? ORDER BY id", (alarm_id,)
        )
        return [{"ts": r[0], "channel": r[1], "what": r[2], "ok": bool(r[3]), "detail": r[4]} for r in rows]

    # ---------------------------------------------------------------- audits
    def add_audit(self, source: str, run_id: str | None, summary: str, findings: list[dict[str, Any]]) -> int:
        return self.db.insert(
            "INSERT INTO audit_reports (received_at, source, run_id, summary, findings) VALUES (?, ?, ?, ?, ?)",
            (time.time(), source, run_id, summary, json.dumps(findings)),
        )

    def audits(self, limit: int = 20) -> list[dict[str, Any]]:
        rows = self.db.rows(
            "SELECT id, received_at, source, run_id, summary, findings FROM audit_reports ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [
            {
                "id": r[0],
                "received_at": r[1],
                "source": r[2],
                "run_id": r[3],
                "summary": r[4],
                "findings": json.loads(r[5]),
            }
            for r in rows
        ]

    # ---------------------------------------------------------------- certificates (the Director's table)
    def certificate_expiry(self, tenant_ids: list[str] | None = None) -> dict[str, float]:
        """Per tenant id (all, or those of ``tenant_ids``), when its newest valid certificate expires."""
        sql = "SELECT tenant_id, MAX(not_after) FROM certificates WHERE revoked_at IS NULL"
        if tenant_ids is not None:
            if not tenant_ids:
                return {}
            sql += f" AND {in_list('tenant_id', tenant_ids)}"
        rows = self.db.rows(sql + " GROUP BY tenant_id", tenant_ids or ())
        return {str(t): float(n) for t, n in rows}

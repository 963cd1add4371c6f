"""The Director's state: tenants, certificates, settings, events (``store/db.py`` holds the
connection, the SQL dialect and the numbered migrations in ``store/migrations/``).

Every statement is a short indexed write or read (well under a millisecond),
so they run on the event loop thread; a commit is durable across a process kill.
A restart therefore loses nothing: the tenant registry, certificate serials,
revocations, settings and events all live here.  Other rooms keep their own
tables (their own migrations) and their own query code over :attr:`Store.db`.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tenantry.director.store.db import Database, DatabaseUnavailable, IntegrityError, SchemaError

__all__ = [
    "STORED_STATE_SQL",
    "CertRow",
    "Database",
    "DatabaseUnavailable",
    "EventRow",
    "IntegrityError",
    "SchemaError",
    "SessionCheck",
    "Store",
    "TenantBrief",
    "TenantQuery",
    "TenantRow",
    "in_list",
    "stored_state",
]


@dataclass
class TenantRow:
    id: str
    name: str
    kind: str
    description: str
    contact: str
    workload_quota: int
    created_at: float
    updated_at: float
    enroll_hash: str | None
    enroll_expires_at: float | None
    enrolled_at: float | None
    revoked_at: float | None
    last_seen: float | None
    last_address: str | None
    version: str | None
    hostname: str | None
    state_since: float | None
    direct_connect: dict[str, Any] | None


@dataclass(frozen=True)
class TenantBrief:
    id: str
    name: str
    kind: str
    revoked_at: float | None
    enrolled_at: float | None
    state_since: float | None
    workload_quota: int


@dataclass
class EventRow:
    id: int
    ts: float
    kind: str
    tenant_id: str | None
    message: str
    data: dict[str, Any]


@dataclass
class CertRow:
    serial: str
    tenant_id: str
    issued_at: float
    not_after: float
    revoked_at: float | None


# A tenant's state while none of its sessions is live, in Python and in SQL side by side (one rule:
# tests/unit/services/test_store.py holds them equal); a live session makes it "online" whatever this says.
def stored_state(kind: str, revoked_at: float | None, enrolled_at: float | None) -> str:
    if kind == "local":
        return "local"
    if revoked_at is not None:
        return "revoked"
    if enrolled_at is None:
        return "awaiting_enrollment"
    return "offline"


STORED_STATE_SQL = (
    "CASE WHEN kind = 'local' THEN 'local' WHEN revoked_at IS NOT NULL THEN 'revoked' "
    "WHEN enrolled_at IS NULL THEN 'awaiting_enrollment' ELSE 'offline' END"
)


@dataclass(frozen=True)
class TenantQuery:
    """Which tenants a paged listing shows, as SQL: the database filters, counts and pages them."""

    text: str = ""  # a part of the name or description, in any case
    stored_states: tuple[str, ...] = ()  # only tenants whose :func:`stored_state` is one of these
    # Subqueries selecting tenant ids (another room's condition, e.g. "with an open alarm"): a tenant
    # is listed only if every one selects it.
    within: tuple[str, ...] = ()

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        needle = self.text.strip().lower()
        if needle:
            pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            clauses.append("(LOWER(name) LIKE ? ESCAPE '\\' OR LOWER(description) LIKE ? ESCAPE '\\')")
            args += [pattern, pattern]
        if self.stored_states:
            clauses.append(in_list(STORED_STATE_SQL, self.stored_states))
            args += list(self.stored_states)
        clauses += [f"id IN ({sub})" for sub in self.within]
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def in_list(column: str, values: Sequence[Any]) -> str:
    """``column IN (?, ?, ...)``, one placeholder per value (the values are the query's arguments)."""
    return f"{column} IN ({', '.join('?' * len(values))})"


_TENANT_FIELDS = [f.name for f in dataclasses.fields(TenantRow)]
_TENANT_COLUMNS = ", ".join(_TENANT_FIELDS)


def _tenant(row: tuple[Any, ...]) -> TenantRow:
    values = dict(zip(_TENANT_FIELDS, row, strict=True))
    values["direct_connect"] = json.loads(values["direct_connect"]) if values["direct_connect"] else None
    return TenantRow(**values)


def _chunks(values: Sequence[str], size: int = 500) -> list[Sequence[str]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


@dataclass
class SessionCheck:
    """What admitting an uplink session needs to know about a certificate and its tenant (one query)."""

    cert_tenant_id: str
    cert_revoked_at: float | None
    tenant_kind: str | None  # None: the tenant is gone
    tenant_revoked_at: float | None
    other_valid: int  # the tenant's other certificates not revoked yet (superseded when this one is used)


class Store:
    def __init__(self, path: Path | str) -> None:
        self.path = path
        self.db = Database(path)
        self.db.migrate()
        # Writes that may wait a moment (session status, connection events): flushed together by
        # flush(), in one transaction, so a reconnect storm does not commit thousands of times.
        self._later: list[tuple[str, tuple[Any, ...]]] = []

    def close(self) -> None:
        self.db.close()

    def tx(self) -> AbstractContextManager[None]:
        return self.db.tx()

    # ---------------------------------------------------------------- tenants
    def add_tenant(self, row: TenantRow) -> None:
        values = {name: getattr(row, name) for name in _TENANT_FIELDS}
        values["direct_connect"] = json.dumps(row.direct_connect) if row.direct_connect is not None else None
        marks = ", ".join("?" * len(_TENANT_FIELDS))
        self.db.execute(f"INSERT INTO tenants ({_TENANT_COLUMNS}) VALUES ({marks})", tuple(values.values()))

    def tenant(self, tenant_id: str) -> TenantRow | None:
        self.settle()
        row = self.db.row(f"SELECT {_TENANT_COLUMNS} FROM tenants WHERE id = ?", (tenant_id,))
        return _tenant(row) if row else None

    def tenant_by_name(self, name: str) -> TenantRow | None:
        self.settle()
        row = self.db.row(f"SELECT {_TENANT_COLUMNS} FROM tenants WHERE name = ?", (name,))
        return _tenant(row) if row else None

    def tenants(self) -> list[TenantRow]:
        self.settle()
        rows = self.db.rows(f"SELECT {_TENANT_COLUMNS} FROM tenants ORDER BY name")
        return [_tenant(r) for r in rows]

    def tenants_page(self, *, after: str | None = None, limit: int | None = None) -> list[TenantRow]:
        """Tenants in name order after ``after`` (exclusive), at most ``limit`` (keyset paging on the unique name)."""
        self.settle()
        sql = f"SELECT {_TENANT_COLUMNS} FROM tenants"
        args: list[Any] = []
        if after is not None:
            sql += " WHERE name > ?"
            args.append(after)
        sql += " ORDER BY name"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [_tenant(r) for r in self.db.rows(sql, args)]

    def count_tenants(self, query: TenantQuery = TenantQuery()) -> int:
        self.settle()
        where, args = query.where()
        row = self.db.row(f"SELECT COUNT(*) FROM tenants{where}", args)
        return int(row[0]) if row else 0

    def tenants_where(self, query: TenantQuery, *, limit: int, offset: int = 0) -> list[TenantRow]:
        """One page of the tenants ``query`` selects, in name order (LIMIT/OFFSET on the name index)."""
        self.settle()
        where, args = query.where()
        sql = f"SELECT {_TENANT_COLUMNS} FROM tenants{where} ORDER BY name LIMIT ? OFFSET ?"
        return [_tenant(r) for r in self.db.rows(sql, [*args, limit, offset])]

    def tenant_states(self, query: TenantQuery = TenantQuery()) -> list[tuple[str, str]]:
        """(id, :func:`stored_state`) of every tenant ``query`` selects, in name order: what a filter on the
        live state (online, offline) needs besides the session registry, two short columns a tenant."""
        self.settle()
        where, args = query.where()
        rows = self.db.rows(f"SELECT id, {STORED_STATE_SQL} FROM tenants{where} ORDER BY name", args)
        return [(str(r[0]), str(r[1])) for r in rows]

    def tenant_briefs(self) -> list[TenantBrief]:
        """Every tenant, only the columns its state needs (the alarm rules' and /metrics' look at all)."""
        self.settle()
        rows = self.db.rows(
            "SELECT id, name, kind, revoked_at, enrolled_at, state_since, workload_quota FROM tenants ORDER BY name"
        )
        return [TenantBrief(*r) for r in rows]

    def tenants_by_ids(self, ids: Sequence[str]) -> list[TenantRow]:
        """The tenants of ``ids`` that exist, in the order of ``ids``."""
        self.settle()
        found: dict[str, TenantRow] = {}
        for chunk in _chunks(ids):
            rows = self.db.rows(f"SELECT {_TENANT_COLUMNS} FROM tenants WHERE {in_list('id', chunk)}", chunk)
            found.update((r.id, r) for r in map(_tenant, rows))
        return [found[i] for i in ids if i in found]

    def tenant_names(self, ids: Iterable[str]) -> dict[str, str]:
        """id -> name of the tenants of ``ids`` that exist (for pages that name the tenants of a few rows)."""
        wanted = sorted(set(ids))
        out: dict[str, str] = {}
        for chunk in _chunks(wanted):
            rows = self.db.rows(f"SELECT id, name FROM tenants WHERE {in_list('id', chunk)}", chunk)
            out.update((str(r[0]), str(r[1])) for r in rows)
        return out

    def update_tenant(self, tenant_id: str, **fields: Any) -> None:
        if not fields:
            return
        if "direct_connect" in fields and fields["direct_connect"] is not None:
            fields["direct_connect"] = json.dumps(fields["direct_connect"])
        fields.setdefault("updated_at", time.time())
        cols = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(f"UPDATE tenants SET {cols} WHERE id = ?", (*fields.values(), tenant_id))

    def touch_status(self, tenant_id: str, **fields: Any) -> None:
        """Status columns (last_seen, address, version, ...) without bumping ``updated_at``."""
        cols = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(f"UPDATE tenants SET {cols} WHERE id = ?", (*fields.values(), tenant_id))

    def mark_offline_since(self, when: float, *, except_director: str | None = None) -> int:
        """Every enrolled remote tenant is offline "since" ``when`` (a Director start after a crash);
        with several Directors, except those whose session another live Director holds."""
        sql = "UPDATE tenants SET state_since = ? WHERE kind = 'remote' AND enrolled_at IS NOT NULL"
        args: list[Any] = [when]
        if except_director is not None:
            sql += (
                " AND id NOT IN (SELECT s.tenant_id FROM tenant_sessions s JOIN directors d ON d.id = s.director_id "
                "WHERE s.director_id != ? AND d.heartbeat_at > ?)"
            )
            args += [except_director, when - 10.0]
        return self.db.execute(sql, args)

    def later(self, sql: str, params: tuple[Any, ...]) -> None:
        """Any write that may wait for the next :meth:`flush` (kept in order with the others)."""
        self._later.append((sql, params))

    def touch_status_later(self, tenant_id: str, **fields: Any) -> None:
        """:meth:`touch_status` at the next :meth:`flush`."""
        cols = ", ".join(f"{k} = ?" for k in fields)
        self._later.append((f"UPDATE tenants SET {cols} WHERE id = ?", (*fields.values(), tenant_id)))

    def flush(self) -> int:
        """Write what was deferred, in one transaction (statements in their order); how many."""
        if not self._later:
            return 0
        batch, self._later = self._later, []
        with self.tx():
            i = 0
            while i < len(batch):  # runs of one statement go through executemany (pipelined on PostgreSQL)
                j = i
                while j < len(batch) and batch[j][0] == batch[i][0]:
                    j += 1
                if j - i == 1:
                    self.db.execute(*batch[i])
                else:
                    self.db.executemany(batch[i][0], [params for _sql, params in batch[i:j]])
                i = j
        return len(batch)

    def settle(self) -> None:
        """Reads of tenants and events see every write made before them: deferred ones are written first."""
        if self._later:
            self.flush()

    @property
    def deferred(self) -> int:
        return len(self._later)

    def delete_tenant(self, tenant_id: str) -> None:
        self.db.execute("DELETE FROM tenants WHERE id = ?", (tenant_id,))

    def consume_enrollment(self, tenant_id: str, expected_hash: str) -> bool:
        """Atomically burn the one-time credentials; ``False`` if someone else used them first."""
        changed = self.db.execute(
            "UPDATE tenants SET enroll_hash = NULL, enroll_expires_at = NULL, enrolled_at = ?, updated_at = ? "
            "WHERE id = ? AND enroll_hash = ?",
            (time.time(), time.time(), tenant_id, expected_hash),
        )
        return changed == 1

    # ---------------------------------------------------------------- certificates
    def add_certificate(self, serial: str, tenant_id: str, not_after: float) -> None:
        self.db.execute(
            "INSERT INTO certificates (serial, tenant_id, issued_at, not_after) VALUES (?, ?, ?, ?)",
            (serial, tenant_id, time.time(), not_after),
        )

    def session_check(self, serial: str) -> SessionCheck | None:
        """The certificate ``serial`` and its tenant in one query; ``None`` for an unknown certificate."""
        row = self.db.row(
            "SELECT c.tenant_id, c.revoked_at, t.kind, t.revoked_at, "
            "(SELECT COUNT(*) FROM certificates o WHERE o.tenant_id = c.tenant_id AND o.revoked_at IS NULL "
            "AND o.serial != c.serial) "
            "FROM certificates c LEFT JOIN tenants t ON t.id = c.tenant_id WHERE c.serial = ?",
            (serial,),
        )
        return SessionCheck(*row) if row else None

    def revoked_among(self, serials: list[str]) -> dict[str, bool]:
        """Which of ``serials`` are revoked: serial -> whether its tenant is revoked or gone (else superseded)."""
        out: dict[str, bool] = {}
        for chunk in _chunks(serials):
            rows = self.db.rows(
                "SELECT c.serial, t.id IS NULL OR t.revoked_at IS NOT NULL FROM certificates c "
                "LEFT JOIN tenants t ON t.id = c.tenant_id "
                f"WHERE c.revoked_at IS NOT NULL AND {in_list('c.serial', chunk)}",
                chunk,
            )
            out.update({r[0]: bool(r[1]) for r in rows})
        return out

    def certificate(self, serial: str) -> CertRow | None:
        row = self.db.row(
            "SELECT serial, tenant_id, issued_at, not_after, revoked_at FROM certificates WHERE serial = ?", (serial,)
        )
        return CertRow(*row) if row else None

    def revoke_certificates(self, tenant_id: str) -> int:
        return self.db.execute(
            "UPDATE certificates SET revoked_at = ? WHERE tenant_id = ? AND revoked_at IS NULL",
            (time.time(), tenant_id),
        )

    def supersede_certificates(self, tenant_id: str, serial: str) -> int:
        """Revoke the tenant's certificates issued before ``serial``; returns how many."""
        return self.db.execute(
            "UPDATE certificates SET revoked_at = ? WHERE tenant_id = ? AND revoked_at IS NULL AND serial != ? "
            "AND issued_at <= (SELECT issued_at FROM certificates WHERE serial = ?)",
            (time.time(), tenant_id, serial, serial),
        )

    # ---------------------------------------------------------------- settings
    def settings(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self.db.rows("SELECT key, value FROM settings")}

    def save_settings(self, values: dict[str, Any]) -> None:
        with self.tx():
            self.db.executemany(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [(k, json.dumps(v)) for k, v in values.items()],
            )

    # ---------------------------------------------------------------- events
    _EVENT = "INSERT INTO events (ts, kind, tenant_id, message, data) VALUES (?, ?, ?, ?, ?)"

    def add_event(self, kind: str, message: str, tenant_id: str | None = None, **data: Any) -> int:
        return self.db.insert(self._EVENT, (time.time(), kind, tenant_id, message, json.dumps(data, default=str)))

    def add_event_later(self, kind: str, message: str, tenant_id: str | None = None, **data: Any) -> None:
        """:meth:`add_event` at the next :meth:`flush` (its time is now)."""
        self._later.append((self._EVENT, (time.time(), kind, tenant_id, message, json.dumps(data, default=str))))

    def events(
        self, *, after_id: int = 0, tenant_id: str | None = None, kind: str | None = None, limit: int = 100
    ) -> list[EventRow]:
        self.settle()
        sql = "SELECT id, ts, kind, tenant_id, message, data FROM events WHERE id > ?"
        args: list[Any] = [after_id]
        if tenant_id is not None:
            sql += " AND tenant_id = ?"
            args.append(tenant_id)
        if kind is not None:
            sql += " AND kind = ?"
            args.append(kind)
        # Without a cursor: the newest ``limit`` events; with one: the next ``limit`` after it.
        sql += " ORDER BY id ASC LIMIT ?" if after_id else " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        rows = self.db.rows(sql, args)
        if not after_id:
            rows.reverse()
        return [EventRow(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]

"""The Director's state in SQLite: tenants, certificates, settings, events.

Every statement is a short indexed write or read (well under a millisecond),
so they run on the event loop thread; WAL mode with ``synchronous=NORMAL``
keeps a commit durable across a process kill (only a power loss can take
the last transactions back).  A restart therefore loses nothing: the tenant
registry, certificate serials, revocations, settings and events all live here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    contact TEXT NOT NULL DEFAULT '',
    workload_quota INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    enroll_hash TEXT,
    enroll_expires_at REAL,
    enrolled_at REAL,
    revoked_at REAL,
    last_seen REAL,
    last_address TEXT,
    version TEXT,
    hostname TEXT,
    state_since REAL,
    direct_connect TEXT
);
CREATE TABLE IF NOT EXISTS certificates (
    serial TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    issued_at REAL NOT NULL,
    not_after REAL NOT NULL,
    revoked_at REAL
);
CREATE INDEX IF NOT EXISTS certificates_tenant ON certificates (tenant_id);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    tenant_id TEXT,
    message TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS events_tenant ON events (tenant_id, id);
"""


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


_TENANT_FIELDS = [f.name for f in dataclasses.fields(TenantRow)]
_TENANT_COLUMNS = ", ".join(_TENANT_FIELDS)


def _tenant(row: tuple[Any, ...]) -> TenantRow:
    values = dict(zip(_TENANT_FIELDS, row, strict=True))
    values["direct_connect"] = json.loads(values["direct_connect"]) if values["direct_connect"] else None
    return TenantRow(**values)


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # SQLite gives its -wal and -shm files the database file's mode: create that 0600 first.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        for name in (path.name, path.name + "-wal", path.name + "-shm"):  # older installs made them 0644
            with contextlib.suppress(FileNotFoundError):
                (path.parent / name).chmod(0o600)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # ---------------------------------------------------------------- tenants
    def add_tenant(self, row: TenantRow) -> None:
        values = {name: getattr(row, name) for name in _TENANT_FIELDS}
        values["direct_connect"] = json.dumps(row.direct_connect) if row.direct_connect is not None else None
        marks = ", ".join("?" * len(_TENANT_FIELDS))
        self._db.execute(f"INSERT INTO tenants ({_TENANT_COLUMNS}) VALUES ({marks})", tuple(values.values()))

    def tenant(self, tenant_id: str) -> TenantRow | None:
        row = self._db.execute(f"SELECT {_TENANT_COLUMNS} FROM tenants WHERE id = ?", (tenant_id,)).fetchone()
        return _tenant(row) if row else None

    def tenant_by_name(self, name: str) -> TenantRow | None:
        row = self._db.execute(f"SELECT {_TENANT_COLUMNS} FROM tenants WHERE name = ?", (name,)).fetchone()
        return _tenant(row) if row else None

    def tenants(self) -> list[TenantRow]:
        rows = self._db.execute(f"SELECT {_TENANT_COLUMNS} FROM tenants ORDER BY name").fetchall()
        return [_tenant(r) for r in rows]

    def update_tenant(self, tenant_id: str, **fields: Any) -> None:
        if not fields:
            return
        if "direct_connect" in fields and fields["direct_connect"] is not None:
            fields["direct_connect"] = json.dumps(fields["direct_connect"])
        fields.setdefault("updated_at", time.time())
        cols = ", ".join(f"{k} = ?" for k in fields)
        self._db.execute(f"UPDATE tenants SET {cols} WHERE id = ?", (*fields.values(), tenant_id))

    def touch_status(self, tenant_id: str, **fields: Any) -> None:
        """Status columns (last_seen, address, version, ...) without bumping ``updated_at``."""
        cols = ", ".join(f"{k} = ?" for k in fields)
        self._db.execute(f"UPDATE tenants SET {cols} WHERE id = ?", (*fields.values(), tenant_id))

    def delete_tenant(self, tenant_id: str) -> None:
        self._db.execute("DELETE FROM tenants WHERE id = ?", (tenant_id,))

    def consume_enrollment(self, tenant_id: str, expected_hash: str) -> bool:
        """Atomically burn the one-time credentials; ``False`` if someone else used them first."""
        cur = self._db.execute(
            "UPDATE tenants SET enroll_hash = NULL, enroll_expires_at = NULL, enrolled_at = ?, updated_at = ? "
            "WHERE id = ? AND enroll_hash = ?",
            (time.time(), time.time(), tenant_id, expected_hash),
        )
        return cur.rowcount == 1

    # ---------------------------------------------------------------- certificates
    def add_certificate(self, serial: str, tenant_id: str, not_after: float) -> None:
        self._db.execute(
            "INSERT INTO certificates (serial, tenant_id, issued_at, not_after) VALUES (?, ?, ?, ?)",
            (serial, tenant_id, time.time(), not_after),
        )

    def certificate(self, serial: str) -> CertRow | None:
        row = self._db.execute(
            "SELECT serial, tenant_id, issued_at, not_after, revoked_at FROM certificates WHERE serial = ?", (serial,)
        ).fetchone()
        return CertRow(*row) if row else None

    def revoke_certificates(self, tenant_id: str) -> int:
        cur = self._db.execute(
            "UPDATE certificates SET revoked_at = ? WHERE tenant_id = ? AND revoked_at IS NULL",
            (time.time(), tenant_id),
        )
        return cur.rowcount

    def supersede_certificates(self, tenant_id: str, serial: str) -> int:
        """Revoke the tenant's certificates issued before ``serial``; returns how many."""
        cur = self._db.execute(
            "UPDATE certificates SET revoked_at = ? WHERE tenant_id = ? AND revoked_at IS NULL AND serial != ? "
            "AND issued_at <= (SELECT issued_at FROM certificates WHERE serial = ?)",
            (time.time(), tenant_id, serial, serial),
        )
        return cur.rowcount

    # ---------------------------------------------------------------- settings
    def settings(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self._db.execute("SELECT key, value FROM settings")}

    def save_settings(self, values: dict[str, Any]) -> None:
        with self.tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)",
                [(k, json.dumps(v)) for k, v in values.items()],
            )

    # ---------------------------------------------------------------- events
    def add_event(self, kind: str, message: str, tenant_id: str | None = None, **data: Any) -> int:
        cur = self._db.execute(
            "INSERT INTO events (ts, kind, tenant_id, message, data) VALUES (?, ?, ?, ?, ?)",
            (time.time(), kind, tenant_id, message, json.dumps(data, default=str)),
        )
        return int(cur.lastrowid or 0)

    def events(
        self, *, after_id: int = 0, tenant_id: str | None = None, kind: str | None = None, limit: int = 100
    ) -> list[EventRow]:
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
        rows = self._db.execute(sql, args).fetchall()
        if not after_id:
            rows.reverse()
        return [EventRow(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]

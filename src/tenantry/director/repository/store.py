"""The ``backup_repositories`` table (migration 0003): one row per tenant with a repository."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

from tenantry.director.store.db import Database


@dataclass
class RepositoryRow:
    tenant_id: str
    location: str
    quota_bytes: int | None
    secondary: int
    check_subset: str
    check_schedule: str | None
    created_at: float
    updated_at: float
    used_bytes: int
    used_at: float | None
    secondary_used_bytes: int | None
    last_check_at: float | None
    last_check_ok: int | None
    last_check_message: str | None
    last_copy_at: float | None
    last_copy_ok: int | None
    last_copy_message: str | None
    last_retention_at: float | None


_FIELDS = [f.name for f in dataclasses.fields(RepositoryRow)]
_COLUMNS = ", ".join(_FIELDS)


class RepositoryStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, tenant_id: str) -> RepositoryRow | None:
        row = self.db.row(f"SELECT {_COLUMNS} FROM backup_repositories WHERE tenant_id = ?", (tenant_id,))
        return RepositoryRow(*row) if row else None

    def all(self) -> list[RepositoryRow]:
        return [RepositoryRow(*r) for r in self.db.rows(f"SELECT {_COLUMNS} FROM backup_repositories")]

    def upsert(self, tenant_id: str, **fields: Any) -> RepositoryRow:
        now = time.time()
        if self.get(tenant_id) is None:
            values = {"tenant_id": tenant_id, "created_at": now, "updated_at": now} | fields
            cols = ", ".join(values)
            marks = ", ".join("?" * len(values))
            self.db.execute(f"INSERT INTO backup_repositories ({cols}) VALUES ({marks})", tuple(values.values()))
        elif fields:
            self.update(tenant_id, updated_at=now, **fields)
        found = self.get(tenant_id)
        assert found is not None
        return found

    def update(self, tenant_id: str, **fields: Any) -> None:
        if not fields:
            return
        unknown = set(fields) - set(_FIELDS)
        if unknown:
            raise KeyError(f"unknown repository fields {sorted(unknown)}")
        cols = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(f"UPDATE backup_repositories SET {cols} WHERE tenant_id = ?", (*fields.values(), tenant_id))

    def delete(self, tenant_id: str) -> None:
        self.db.execute("DELETE FROM backup_repositories WHERE tenant_id = ?", (tenant_id,))

"""One database connection with one SQL dialect, transactions and numbered migrations.

Everything the Director stores goes through :class:`Database`: SQL is written once with
``?`` placeholders and portable types (``TEXT``, ``BIGINT``, ``DOUBLE PRECISION``,
``ON CONFLICT ... DO UPDATE``); a migration may say ``{serial_pk}`` for an auto-numbered
primary key.  Today the backend is SQLite (the embedded default); a PostgreSQL backend
implements the same few methods.

Migrations are the files ``migrations/NNNN_<name>.sql`` of this package, applied in order
at start inside one transaction each and recorded in ``schema_migrations``; a database
that is newer than this code is refused.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

Params = Sequence[Any]
_MIGRATION = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class SchemaError(RuntimeError):
    """The database cannot be used by this code (newer schema, broken migration)."""


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, SQL) of every migration shipped with this package, in order."""
    found = []
    for entry in resources.files("tenantry.director.store").joinpath("migrations").iterdir():
        match = _MIGRATION.match(entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text()))
    found.sort()
    versions = [v for v, _n, _s in found]
    # Numbers are reserved per room (0002 the console's, 0003 backups'), so a branch may ship a
    # later number before an earlier one exists; a missing one is applied when it arrives.
    if len(set(versions)) != len(versions) or (versions and versions[0] != 1):
        raise SchemaError(f"migrations must be numbered from 1, each number once, found {versions}")
    return found


class Database:
    """SQLite in WAL mode, ``synchronous=NORMAL``: a commit survives a process kill."""

    dialect = "sqlite"
    _TOKENS = {"serial_pk": "INTEGER PRIMARY KEY AUTOINCREMENT"}

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # SQLite gives its -wal and -shm files the database file's mode: create that 0600 first.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._depth = 0
        for name in (path.name, path.name + "-wal", path.name + "-shm"):  # older installs made them 0644
            with contextlib.suppress(FileNotFoundError):
                (path.parent / name).chmod(0o600)

    def close(self) -> None:
        self._db.close()

    # ---------------------------------------------------------------- statements
    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; the number of rows it changed."""
        return self._db.execute(sql, params).rowcount

    def insert(self, sql: str, params: Params = ()) -> int:
        """Run one INSERT; the id of the new row."""
        return int(self._db.execute(sql, params).lastrowid or 0)

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        self._db.executemany(sql, rows)

    def rows(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, params).fetchall()

    def row(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        found: tuple[Any, ...] | None = self._db.execute(sql, params).fetchone()
        return found

    @contextmanager
    def tx(self) -> Iterator[None]:
        """A transaction (nested calls join the outer one); rolled back on any exception."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self._db.execute("ROLLBACK")
            raise
        self._depth = 0
        self._db.execute("COMMIT")

    # ---------------------------------------------------------------- schema
    def migrate(self) -> list[int]:
        """Apply the migrations this database lacks; returns the versions applied."""
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
        )
        done = {int(r[0]) for r in self.rows("SELECT version FROM schema_migrations")}
        shipped = migrations()
        newest = shipped[-1][0] if shipped else 0
        if done and max(done) > newest:
            raise SchemaError(
                f"the database {self.path} has schema version {max(done)}, newer than this Director ({newest}); "
                "upgrade the Director"
            )
        applied = []
        for version, name, sql in shipped:
            if version in done:
                continue
            with self.tx():
                for statement in _statements(sql.format(**self._TOKENS)):
                    self._db.execute(statement)
                self.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (version, name, time.time()),
                )
            applied.append(version)
        return applied

    def schema_version(self) -> int:
        row = self.row("SELECT MAX(version) FROM schema_migrations")
        return int(row[0]) if row and row[0] is not None else 0


def _statements(sql: str) -> list[str]:
    """The statements of a migration file (``--`` comments dropped; ``;`` ends a statement)."""
    text = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in text.split(";") if s.strip()]

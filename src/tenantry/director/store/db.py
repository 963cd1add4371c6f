"""One database interface with one SQL dialect, transactions and numbered migrations; two backends.

Everything the Director stores goes through :class:`Database`: SQL is written once with
``?`` placeholders and portable types (``TEXT``, ``BIGINT``, ``DOUBLE PRECISION``,
``ON CONFLICT ... DO UPDATE``); a migration may say ``{serial_pk}`` for an auto-numbered
primary key.  ``Database(path)`` is SQLite, the embedded default (``store/sqlite.py``);
``Database("postgresql://...")`` is PostgreSQL, for several Directors sharing one state
(``store/postgres.py``, psycopg 3).  The same schema, the same statements and the same tests
run against both (STYLE rule 29).

Migrations are the files ``migrations/NNNN_<name>.sql`` of this package, applied in order
at start inside one transaction each and recorded in ``schema_migrations``; a database
that is newer than this code is refused.  Numbers are unique and increasing; each room owns
its own (0001 the Director, 0002 the console, 0003 backups, 0004 the cluster registry), so a
branch may ship 0004 before 0002 and 0003 exist: any missing migration is applied at the next
start, whatever its number.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from tenantry.director.store.errors import DatabaseUnavailable, IntegrityError, SchemaError

__all__ = ["Database", "DatabaseUnavailable", "IntegrityError", "SchemaError", "is_database_url", "migrations"]

Params = Sequence[Any]
_MIGRATION = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


def is_database_url(target: object) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


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


class Backend(Protocol):
    dialect: str
    tokens: dict[str, str]

    def describe(self) -> str: ...
    def close(self) -> None: ...
    def execute(self, sql: str, params: Params) -> int: ...
    def insert(self, sql: str, params: Params) -> int: ...
    def executemany(self, sql: str, rows: Sequence[Params]) -> None: ...
    def rows(self, sql: str, params: Params) -> list[tuple[Any, ...]]: ...
    def row(self, sql: str, params: Params) -> tuple[Any, ...] | None: ...
    def begin(self) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def script(self, statement: str) -> None: ...
    def migration_lock(self) -> Any: ...


class Database:
    """The store's one interface; SQLite (a path) or PostgreSQL (a ``postgresql://`` URL) behind it."""

    def __init__(self, target: Path | str) -> None:
        self.backend: Backend
        if is_database_url(target):
            from tenantry.director.store.postgres import PostgresBackend

            self.path: Path | None = None
            self.backend = PostgresBackend(str(target))
        else:
            from tenantry.director.store.sqlite import SQLiteBackend

            self.path = Path(target)
            self.backend = SQLiteBackend(self.path)
        self.dialect = self.backend.dialect
        self._depth = 0

    def describe(self) -> str:
        """Where the data lives, for messages (never a password)."""
        return self.backend.describe()

    def close(self) -> None:
        self.backend.close()

    # ---------------------------------------------------------------- statements
    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; the number of rows it changed."""
        return self.backend.execute(sql, params)

    def insert(self, sql: str, params: Params = ()) -> int:
        """Run one INSERT; the id of the new row."""
        return self.backend.insert(sql, params)

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        self.backend.executemany(sql, rows)

    def rows(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return self.backend.rows(sql, params)

    def row(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        return self.backend.row(sql, params)

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

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
        self.backend.begin()
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self.backend.rollback()
            raise
        self._depth = 0
        self.backend.commit()

    # ---------------------------------------------------------------- schema
    def migrate(self) -> list[int]:
        """Apply the migrations this database lacks; returns the versions applied."""
        with self.backend.migration_lock():
            self.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
            )
            done = {int(r[0]) for r in self.rows("SELECT version FROM schema_migrations")}
            shipped = migrations()
            newest = shipped[-1][0] if shipped else 0
            if done and max(done) > newest:
                raise SchemaError(
                    f"the database {self.describe()} has schema version {max(done)}, newer than this Director "
                    f"({newest}); upgrade the Director"
                )
            applied = []
            for version, name, sql in shipped:
                if version in done:
                    continue
                with self.tx():
                    for statement in _statements(sql.format(**self.backend.tokens)):
                        self.backend.script(statement)
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

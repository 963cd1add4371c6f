"""The SQLite backend of :class:`tenantry.director.store.db.Database` (the embedded default).

WAL mode with ``synchronous=NORMAL``: a commit survives a process kill.  The database file and
its ``-wal``/``-shm`` files are 0600.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tenantry.director.store.errors import IntegrityError

Params = Sequence[Any]


class SQLiteIntegrityError(IntegrityError, sqlite3.IntegrityError):
    """A constraint refused a write (also an ``sqlite3.IntegrityError``, as before)."""


class SQLiteBackend:
    dialect = "sqlite"
    tokens = {"serial_pk": "INTEGER PRIMARY KEY AUTOINCREMENT"}

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # SQLite gives its -wal and -shm files the database file's mode: create that 0600 first.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        for name in (path.name, path.name + "-wal", path.name + "-shm"):  # older installs made them 0644
            with contextlib.suppress(FileNotFoundError):
                (path.parent / name).chmod(0o600)

    def describe(self) -> str:
        return str(self.path)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.IntegrityError as exc:
            raise SQLiteIntegrityError(str(exc)) from exc

    def execute(self, sql: str, params: Params) -> int:
        with self._errors():
            return self._db.execute(sql, params).rowcount

    def insert(self, sql: str, params: Params) -> int:
        with self._errors():
            return int(self._db.execute(sql, params).lastrowid or 0)

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        with self._errors():
            self._db.executemany(sql, rows)

    def rows(self, sql: str, params: Params) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, params).fetchall()

    def row(self, sql: str, params: Params) -> tuple[Any, ...] | None:
        found: tuple[Any, ...] | None = self._db.execute(sql, params).fetchone()
        return found

    def begin(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")  # the write lock at once: no upgrade deadlock later

    def commit(self) -> None:
        self._db.execute("COMMIT")

    def rollback(self) -> None:
        self._db.execute("ROLLBACK")

    def script(self, statement: str) -> None:
        """One statement of a migration."""
        self._db.execute(statement)

    @contextmanager
    def migration_lock(self) -> Iterator[None]:
        yield  # one process per database file; BEGIN IMMEDIATE serializes each migration anyway

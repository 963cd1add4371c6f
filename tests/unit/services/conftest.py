"""Fixtures of the services' unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a Director's store lives: a SQLite file, or a fresh database on a real PostgreSQL server
    (STYLE rule 29: the same tests against both backends)."""
    if request.param == "sqlite":
        return tmp_path / "director.db"
    server = request.getfixturevalue("postgres_server")
    url: str = server.create_database()
    return url

"""The console's templates and static files must ship in the tenantry wheel the roles install.

setuptools ships non-Python files only when ``[tool.setuptools.package-data]`` names them; the same
holds for the store's numbered migrations.
"""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
WEB = REPO / "src" / "tenantry" / "director" / "web"


def test_package_data_covers_the_console_files() -> None:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = data.get("tenantry.director.web", [])
    files = [
        p.relative_to(WEB).as_posix() for p in WEB.rglob("*") if p.is_file() and p.suffix in (".html", ".css", ".js")
    ]
    assert files
    missing = [f for f in files if not any(fnmatch.fnmatch(f, pattern) for pattern in patterns)]
    assert missing == []


def test_package_data_covers_the_migrations() -> None:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    store = REPO / "src" / "tenantry" / "director" / "store"
    migrations = [p.relative_to(store).as_posix() for p in (store / "migrations").glob("*.sql")]
    assert migrations
    assert all(any(fnmatch.fnmatch(m, p) for p in data["tenantry.director.store"]) for m in migrations)

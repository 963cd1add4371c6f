"""The console's templates and static files must ship in the tenantry wheel the roles install.

setuptools ships non-Python files only when ``[tool.setuptools.package-data]`` names them.  The console
branch may not edit pyproject.toml, so this is marked as an expected failure until the line
``"tenantry.director.web" = ["templates/*.html", "static/*"]`` is added; then it passes, and ``strict``
makes the now-wrong marker fail so it gets removed.
"""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
WEB = REPO / "src" / "tenantry" / "director" / "web"


@pytest.mark.xfail(strict=True, reason="pyproject.toml lacks package-data for tenantry.director.web (lead to add)")
def test_package_data_covers_the_console_files() -> None:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = data.get("tenantry.director.web", [])
    files = [
        p.relative_to(WEB).as_posix() for p in WEB.rglob("*") if p.is_file() and p.suffix in (".html", ".css", ".js")
    ]
    assert files
    missing = [f for f in files if not any(fnmatch.fnmatch(f, pattern) for pattern in patterns)]
    assert missing == []

"""STYLE rules 11 and 12 for every role under roles/.

Public variables are ``<role>_*`` and live in ``defaults/main.yml`` only, each documented in
``meta/argument_specs.yml`` with the same default; internal variables (``vars/*.yml``) are
``__<role>_*`` and never redefine a default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from support import REPO

ROLES = sorted(p.name for p in (REPO / "roles").iterdir() if (p / "tasks").is_dir() and not p.name.startswith("_"))


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text()) if path.exists() else None


def test_there_are_roles() -> None:
    assert "nested_esxi_target" in ROLES


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_match_defaults(role: str) -> None:
    base = REPO / "roles" / role
    defaults = load(base / "defaults" / "main.yml") or {}
    specs = load(base / "meta" / "argument_specs.yml")
    assert specs, f"{role}: meta/argument_specs.yml is missing"
    options = specs["argument_specs"]["main"]["options"]
    assert set(options) == set(defaults), (
        f"{role}: only in defaults {sorted(set(defaults) - set(options))}, "
        f"only in argument_specs {sorted(set(options) - set(defaults))}"
    )
    for name, spec in options.items():
        assert name.startswith(f"{role}_"), f"{role}: public variable {name} must start with {role}_"
        assert spec.get("default") == defaults[name], f"{role}: {name} default differs from defaults/main.yml"
        assert spec.get("description"), f"{role}: {name} has no description"


@pytest.mark.parametrize("role", ROLES)
def test_internal_variables_are_private(role: str) -> None:
    base = REPO / "roles" / role
    defaults = set(load(base / "defaults" / "main.yml") or {})
    for path in sorted((base / "vars").glob("*.yml")):
        names = set(load(path) or {})
        assert all(n.startswith(f"__{role}_") for n in names), f"{path}: {sorted(names)}"
        assert not names & defaults, f"{path} redefines defaults {sorted(names & defaults)}"

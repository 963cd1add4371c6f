"""STYLE rule 12 for the roles of this area: meta/argument_specs.yml is in step with defaults/main.yml."""

from __future__ import annotations

import pytest
import yaml
from support import REPO

ROLES = ["switch_arp_lock", "dhcp_reservations"]


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_match_defaults(role: str) -> None:
    base = REPO / "roles" / role
    defaults = yaml.safe_load((base / "defaults" / "main.yml").read_text())
    options = yaml.safe_load((base / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    assert set(options) == set(defaults)
    for name, spec in options.items():
        assert name.startswith(role + "_"), name
        assert spec.get("default") == defaults[name], name
        assert spec.get("description"), name
    internal = yaml.safe_load((base / "vars" / "main.yml").read_text())
    assert all(name.startswith(f"__{role}_") for name in internal)

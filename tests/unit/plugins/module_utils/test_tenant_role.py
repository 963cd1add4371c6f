"""The tenant role's privilege list lives in one place (_tenant_role.py); the docs and the role follow it."""

from __future__ import annotations

import re

import yaml
from support import REPO

from ansible_collections.tenantry.msp.plugins.module_utils._nested_host import ARGUMENT_SPEC, check_input
from ansible_collections.tenantry.msp.plugins.module_utils._tenant_role import (
    PRODUCTION_PRIVILEGES,
    PRODUCTION_ROLE,
    PRODUCTION_ROLE_NAME,
    TENANT_PRIVILEGES,
    TENANT_ROLE,
)


def documented() -> dict[str, str]:
    """The privilege table of docs/nested-targets.md, "## The tenant role": {privilege: step}."""
    text = (REPO / "docs" / "nested-targets.md").read_text()
    section = text.split("## The tenant role", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Za-z.]+)` \| [^|]+ \| ([^|]+) \|$", section, flags=re.MULTILINE)
    return {privilege: step.strip() for privilege, step in rows}


def test_the_docs_list_exactly_the_role_with_the_same_reasons_and_the_source() -> None:
    assert documented() == dict(TENANT_ROLE)
    assert "helpcenter.veeam.com" in (REPO / "docs" / "nested-targets.md").read_text()


def test_the_list_has_no_host_privilege_and_no_duplicate() -> None:
    assert len(TENANT_PRIVILEGES) == len(set(TENANT_PRIVILEGES)) == len(TENANT_ROLE)
    assert not [p for p in TENANT_PRIVILEGES if p.startswith("Host.")]


def test_the_module_applies_it_when_no_privileges_are_given() -> None:
    access = ARGUMENT_SPEC["tenant_access"]["options"]["privileges"]
    assert "default" not in access  # one list: the module's docs and the role defer to TENANT_PRIVILEGES
    params = {
        "vmkernel": None,
        "routes": [],
        "default_gateway": None,
        "management_network": None,
        "management_portgroup": "Management Network",
        "nfs": {"server": "nfs", "path": "/x", "datastore": "ds"},
        "state": "present",
        "tenant_access": {"user": "t", "password": "p", "privileges": None, "entities": ["datastore"]},
    }
    check_input(params)
    assert params["tenant_access"]["privileges"] == TENANT_PRIVILEGES


def test_the_role_defers_to_the_module() -> None:
    role = REPO / "roles" / "nested_esxi_target"
    assert yaml.safe_load((role / "defaults" / "main.yml").read_text())["nested_esxi_target_privileges"] == []
    assert "privileges" in (role / "vars" / "main.yml").read_text()


def production_documented() -> dict[str, str]:
    """The privilege table of docs/failover.md, "## Permissions": {privilege: why}."""
    text = (REPO / "docs" / "failover.md").read_text()
    section = text.split("## Permissions", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Za-z.]+)` \| ([^|]+) \|$", section, flags=re.MULTILINE)
    return {privilege: why.strip() for privilege, why in rows}


def test_the_production_role_is_documented_and_operates_only_vms() -> None:
    assert production_documented() == dict(PRODUCTION_ROLE)
    assert PRODUCTION_ROLE_NAME in (REPO / "docs" / "nested-targets.md").read_text()
    assert len(PRODUCTION_PRIVILEGES) == len(set(PRODUCTION_PRIVILEGES)) == len(PRODUCTION_ROLE)
    allowed = ("VirtualMachine.Interact.", "VirtualMachine.State.")
    assert all(p.startswith(allowed) for p in PRODUCTION_PRIVILEGES)


def test_the_failover_module_and_role_default_to_it() -> None:
    from ansible_collections.tenantry.msp.plugins.modules import failover

    assert failover.ARGUMENT_SPEC["production_role"]["default"] == PRODUCTION_ROLE_NAME
    assert failover.ARGUMENT_SPEC["allow_admin_role"]["default"] is False
    defaults = yaml.safe_load((REPO / "roles" / "failover" / "defaults" / "main.yml").read_text())
    assert defaults["failover_production_role"] == "" and defaults["failover_allow_admin_role"] is False

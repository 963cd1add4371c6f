"""The backup modules' pure logic: desired state from options, the tenant file's backups section."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from support import REPO

from ansible_collections.tenantry.msp.plugins.filter.backups import backup_jobs_of, backup_repositories_of
from ansible_collections.tenantry.msp.plugins.module_utils._backup_base import (
    job_desired,
    job_view,
    repository_desired,
    restore_spec,
)
from ansible_collections.tenantry.msp.plugins.module_utils._tenant_model import TenantError, validate_tenant
from ansible_collections.tenantry.msp.plugins.module_utils.clients.director_api import DirectorApiError

ACME = yaml.safe_load((REPO / "inventories/lab/tenants/acme.yml").read_text())
# The lab's site settings (its routes go by the provider's management network).
_LAB_SITE = yaml.safe_load((REPO / "inventories/lab/tenants.tenantry.yaml").read_text())
SITE = {"management_pool": _LAB_SITE["management_pool"]}


def test_repository_options_given_are_managed_the_rest_kept() -> None:
    current = {
        "location": "msp",
        "quota_bytes": 5 << 30,
        "secondary": True,
        "check_subset": "5%",
        "check_schedule": "30 3 * * *",
        "used_bytes": 123,
    }
    assert repository_desired(current, {"quota_gb": None, "secondary": None}) == {
        k: current[k] for k in ("location", "quota_bytes", "secondary", "check_subset", "check_schedule")
    }
    changed = repository_desired(current, {"quota_gb": 0, "check_schedule": ""})
    assert changed["quota_bytes"] is None and changed["check_schedule"] is None
    assert repository_desired(None, {"quota_gb": 1.5})["quota_bytes"] == 3 << 29


def test_job_desired_and_view_compare_equal() -> None:
    params = {
        "vms": ["a"],
        "schedule": "0 2  * * *",
        "retention": {"keep_last": 3},
        "changed_blocks": True,
        "enabled": True,
    }
    desired = job_desired(params)
    api = {
        "name": "n",
        "vms": ["a"],
        "schedule": "0 2 * * *",
        "changed_blocks": True,
        "enabled": True,
        "retention": {
            "keep_last": 3,
            "keep_hourly": 0,
            "keep_daily": 0,
            "keep_weekly": 0,
            "keep_monthly": 0,
            "keep_yearly": 0,
        },
        "next_run_at": 1.0,
    }
    assert job_view(api) == desired
    with pytest.raises(DirectorApiError, match="at least one VM"):
        job_desired({**params, "vms": []})


def test_restore_spec_needs_a_vcenter_for_production() -> None:
    base: dict[str, Any] = {
        "vm": "a",
        "snapshot": "latest",
        "destination": "production",
        "replace": False,
        "power_on": True,
        "network_map": {},
        "vcenter": None,
    }
    with pytest.raises(DirectorApiError, match="needs vcenter"):
        restore_spec(base)
    vc = {
        "hostname": "vc",
        "port": 443,
        "username": "u",
        "password": "p",
        "validate_certs": False,
        "ca_file": None,
        "datacenter": None,
    }
    spec = restore_spec({**base, "vcenter": vc, "name": "a-dr"})
    assert spec["vcenter"] == {"hostname": "vc", "port": 443, "username": "u", "password": "p", "insecure": True}
    assert spec["name"] == "a-dr"


def test_tenant_file_backups_section_is_validated() -> None:
    good = validate_tenant(copy.deepcopy(ACME), "acme.yml", SITE)
    assert good["backups"]["jobs"][0]["retention"]["keep_daily"] == 7
    assert backup_repositories_of([good])[0] == {
        "tenant": "acme",
        "location": "msp",
        "quota_gb": 20.0,
        "secondary": True,
        "check_subset": "5%",
        "check_schedule": "30 3 * * *",
    }
    assert backup_jobs_of([good])[0]["vms"] == ["acme-dc01", "acme-sql01", "acme-app01"]
    bad = copy.deepcopy(ACME)
    bad["backups"]["jobs"].append(dict(bad["backups"]["jobs"][0]))
    bad["backups"]["jobs"][0]["schedule"] = "every night"
    bad["backups"]["jobs"][0]["retention"] = {"keep_last": -1}
    bad["backups"]["repository"]["location"] = "site"
    with pytest.raises(TenantError) as err:
        validate_tenant(bad, "acme.yml", SITE)
    text = str(err.value)
    assert "acme.yml: backups.jobs[0].schedule: 'every night' is not five cron fields" in text
    assert "backups.jobs[0].retention.keep_last: -1 must be 0 or more" in text
    assert "backups.jobs[1].name: job 'nightly' is defined twice" in text
    assert "backups.repository.secondary: 3-2-1 copies are made at the MSP" in text
    unknown = copy.deepcopy(ACME)
    unknown["backups"]["jobs"][0]["every"] = "day"
    with pytest.raises(TenantError, match="every"):
        validate_tenant(unknown, "acme.yml", SITE)
    none = copy.deepcopy(ACME)
    del none["backups"]
    assert backup_repositories_of([validate_tenant(none, "acme.yml", SITE)]) == []

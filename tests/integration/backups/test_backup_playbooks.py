"""The Ansible surface against a real Director, Transporter and client site: modules, then the two playbooks.

Modules are idempotent with check mode and diff (check, apply, check, apply).  Then the newcomer's
path: ``backup_now.yml`` backs the VM up, the VM's disk is broken, ``restore_vm.yml`` puts it back
(SHA-256 of the disk equal to before).  The inventory is built like inventories/lab: the tenant
file (with its ``backups`` section) read by the tenants inventory plugin, the Director reached at
the test's loopback address.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from backuplab import BackupLab
from support import REPO, run_module, run_playbook

from tenantry.lab import client as site_vms

pytestmark = pytest.mark.integration

TEXT = {"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default"}


def conn(lab: BackupLab) -> dict[str, Any]:
    d = lab.director
    return {"director_url": d.url, "admin_token": d.token, "ca_file": str(d.state / "ca.crt")}


def sequence(tmp_path: Path, module: str, args: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for check in (True, False, True, False):
        run = run_module(tmp_path, module, args, check=check, diff=True)
        assert run.rc == 0, run.stdout[-3000:]
        out.append(run.result)
    return out


def test_repository_and_job_modules_are_idempotent(tmp_path: Path, backup_lab: BackupLab) -> None:
    lab = backup_lab
    repo = sequence(
        tmp_path, "tenantry.msp.backup_repository", conn(lab) | {"tenant": "acme", "quota_gb": 2, "check_subset": "10%"}
    )
    assert [r["changed"] for r in repo] == [True, True, False, False]
    assert repo[0]["diff"]["before"] == {} and repo[0]["diff"]["after"]["quota_bytes"] == 2 << 30
    assert repo[3]["repository"]["quota_bytes"] == 2 << 30 and repo[3]["repository"]["check_subset"] == "10%"
    job_args = conn(lab) | {
        "tenant": "acme",
        "name": "nightly",
        "vms": ["acme-dc01", "acme-app01"],
        "schedule": "0 2 * * *",
        "retention": {"keep_last": 3, "keep_daily": 7},
        "changed_blocks": True,
    }
    jobs = sequence(tmp_path, "tenantry.msp.backup_job", job_args)
    assert [r["changed"] for r in jobs] == [True, True, False, False]
    assert jobs[3]["job"]["next_run_at"] is not None
    assert jobs[1]["diff"]["after"]["retention"]["keep_daily"] == 7
    # A change is one change; an invalid schedule is refused with the reason and changes nothing.
    changed = run_module(tmp_path, "tenantry.msp.backup_job", job_args | {"retention": {"keep_last": 5}}, diff=True)
    assert changed.result["changed"] and changed.result["diff"]["before"]["retention"]["keep_last"] == 3
    bad = run_module(tmp_path, "tenantry.msp.backup_job", job_args | {"schedule": "61 * * * *"})
    assert bad.result["failed"] and "minute field '61' is outside 0-59" in bad.result["msg"]
    gone = sequence(tmp_path, "tenantry.msp.backup_job", job_args | {"state": "absent"})
    assert [r["changed"] for r in gone] == [True, True, False, False]
    info = run_module(tmp_path, "tenantry.msp.backup_info", conn(lab) | {"tenant": "acme"}).result
    assert info["jobs"] == [] and info["repository"]["quota_bytes"] == 2 << 30


def _inventory(root: Path, lab: BackupLab) -> Path:
    inv = root / "inventory"
    (inv / "tenants").mkdir(parents=True)
    (inv / "tenants.tenantry.yaml").write_text((REPO / "inventories/lab/tenants.tenantry.yaml").read_text())
    acme = yaml.safe_load((REPO / "inventories/lab/tenants/acme.yml").read_text())
    acme["backups"] = {
        "repository": {"quota_gb": 4},
        "jobs": [{"name": "nightly", "vms": ["acme-dc01", "acme-app01"], "retention": {"keep_last": 2}}],
    }
    (inv / "tenants" / "acme.yml").write_text(yaml.safe_dump(acme))
    d = lab.director
    (inv / "hosts.yml").write_text(
        yaml.safe_dump(
            {
                "all": {
                    "children": {
                        "directors": {
                            "hosts": {
                                "test-director": {
                                    "ansible_connection": "local",
                                    "tenantry_director_url": d.url,
                                    "tenantry_director_admin_token": d.token,
                                    "tenantry_director_ca_file": str(d.state / "ca.crt"),
                                }
                            }
                        }
                    }
                }
            }
        )
    )
    return inv


def test_back_up_break_and_restore_with_two_playbook_runs(tmp_path: Path, backup_lab: BackupLab) -> None:
    lab = backup_lab
    inv = _inventory(tmp_path, lab)
    for module, args in (
        ("tenantry.msp.backup_repository", {"tenant": "acme", "quota_gb": 4}),
        ("tenantry.msp.backup_job", {"tenant": "acme", "name": "nightly", "vms": ["acme-dc01", "acme-app01"]}),
    ):
        assert run_module(tmp_path, module, conn(lab) | args).rc == 0
    checked = run_playbook(REPO / "playbooks/backup_now.yml", "-i", str(inv), "-e", "tenant=acme", "--check", env=TEXT)
    assert checked.rc == 0, checked.stdout[-3000:]
    assert lab.api("GET", "/api/v1/tenants/acme/backups") == []

    backed = run_playbook(REPO / "playbooks/backup_now.yml", "-i", str(inv), "-e", "tenant=acme", env=TEXT)
    assert backed.rc == 0, backed.stdout[-3000:]
    assert "acme-dc01: full backup" in backed.stdout and "acme-app01: full backup" in backed.stdout
    before = site_vms.disk_sha256(lab.site, "acme-app01")

    site_vms.guest_write(lab.site, "acme-app01", 5 << 20, b"\xff" * (1 << 20))  # break it
    assert site_vms.disk_sha256(lab.site, "acme-app01") != before

    restored = run_playbook(
        REPO / "playbooks/restore_vm.yml",
        "-i",
        str(inv),
        "-e",
        "tenant=acme",
        "-e",
        "vm=acme-app01",
        "-e",
        "replace=true",
        env=TEXT,
    )
    assert restored.rc == 0, restored.stdout[-3000:]
    assert "acme-app01 restored as acme-app01 on site-ds-01" in restored.stdout
    assert site_vms.disk_sha256(lab.site, "acme-app01") == before

    unknown = run_playbook(REPO / "playbooks/backup_now.yml", "-i", str(inv), "-e", "tenant=nobody", env=TEXT)
    assert unknown.rc != 0 and "Nothing was changed" in unknown.stdout

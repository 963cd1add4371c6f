"""The tenants inventory plugin through the real ansible-inventory and ansible-playbook."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import REPO, ansible_env

LAB = REPO / "inventories" / "lab"
BIN = Path(sys.executable).parent


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A copy of the lab's tenant inventory (plugin config + tenant files) to edit freely."""
    shutil.copy(LAB / "tenants.tenantry.yaml", tmp_path)
    shutil.copytree(LAB / "tenants", tmp_path / "tenants")
    return tmp_path


def inventory(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = ansible_env()
    env.pop("ANSIBLE_STDOUT_CALLBACK")
    return subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(path), *args], capture_output=True, text=True, env=env, cwd=REPO
    )


def plain(value: Any) -> Any:
    """ansible-inventory's JSON, with its unsafe-string wrappers ({"__ansible_unsafe": "x"}) removed."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def listing(path: Path) -> Any:
    proc = inventory(path, "--list")
    assert proc.returncode == 0, proc.stderr
    return plain(json.loads(proc.stdout))


def edit(path: Path, **changes: object) -> None:
    data = yaml.safe_load(path.read_text())
    data.update(changes)
    path.write_text(yaml.safe_dump(data))


def test_groups_hosts_and_allocations(site: Path) -> None:
    inv = listing(site)
    assert sorted(inv["tenants"]["children"]) == ["tenant_acme", "tenant_globex"]
    assert inv["tenant_acme"]["hosts"] == ["acme-target-01", "acme-target-02"]
    assert sorted(inv["nested_targets"]["hosts"]) == ["acme-target-01", "acme-target-02", "globex-target-01"]
    hv = inv["_meta"]["hostvars"]
    assert hv["acme-target-01"]["tenantry_target_mgmt_mac"].startswith("00:50:56:")
    assert hv["acme-target-01"]["tenantry_target_tenant_ip"] == "10.210.0.100"
    assert hv["acme-target-02"]["tenantry_target_switch_port"] == {
        "switch": "lab-bridge",
        "port": "vt-acme-2",
        "management": {"switch": "lab-mgmt", "port": "vm-acme-2"},
    }
    assert hv["acme-target-02"]["tenantry_target_mgmt_network"] == "10.0.16.0/20"  # the management_pool CIDR
    assert hv["acme-target-02"]["tenantry_tenant_spec"]["default_gateway"] == "10.210.0.1"
    assert {r["interface"] for r in hv["acme-target-02"]["tenantry_tenant_spec"]["routes"]} == {"management"}
    assert hv["globex-target-01"]["tenantry_tenant_spec"]["type"] == "remote"
    assert hv["globex-target-01"]["tenantry_tenant_spec"]["portgroups"]["replication"] == "tenant-globex-vlan220"
    macs = [hv[h][f"tenantry_target_{k}_mac"] for h in hv for k in ("mgmt", "tenant")]
    assert len(macs) == len(set(macs)) == 6


def test_adding_a_tenant_moves_nobody(site: Path) -> None:
    before = listing(site)["_meta"]["hostvars"]
    new = yaml.safe_load((site / "tenants" / "globex.yml").read_text())
    new.update(
        name="initech",
        id=5,
        vlan=230,
        network={"cidr": "10.230.0.0/24", "gateway": "10.230.0.1", "pool": "10.230.0.10-10.230.0.20"},
    )
    new.update(failover={"destination_vlans": [330]}, switch_ports=[], routes=[], default_gateway="10.230.0.1")
    new["nfs"] = {**new["nfs"], "path": "/exports/tenants/initech"}
    (site / "tenants" / "initech.yml").write_text(yaml.safe_dump(new))
    after = listing(site)["_meta"]["hostvars"]
    assert "initech-target-01" in after
    for host, hostvars in before.items():
        for key in ("tenantry_target_mgmt_mac", "tenantry_target_mgmt_ip", "tenantry_target_tenant_mac"):
            assert after[host][key] == hostvars[key]


def test_invalid_files_stop_the_run_naming_file_and_field(site: Path) -> None:
    edit(site / "tenants" / "globex.yml", vlan=210)
    edit(site / "tenants" / "acme.yml", targets={"count": 2, "cpus": "many"})
    proc = inventory(site, "--list")
    assert proc.returncode != 0
    assert "globex.yml: vlan 210 is already used by tenant 'acme'" in proc.stderr or "cpus" in proc.stderr
    assert "acme.yml" in proc.stderr


def test_file_name_must_match_tenant_name(site: Path) -> None:
    edit(site / "tenants" / "globex.yml", name="globex2")
    proc = inventory(site, "--list")
    assert proc.returncode != 0 and "must match the file name 'globex'" in proc.stderr


def test_limit_to_one_tenant(tmp_path: Path) -> None:
    play = tmp_path / "hosts.yml"
    play.write_text("- hosts: nested_targets\n  gather_facts: false\n  tasks: []\n")
    env = ansible_env()
    env.pop("ANSIBLE_STDOUT_CALLBACK")
    proc = subprocess.run(
        [str(BIN / "ansible-playbook"), str(play), "--list-hosts", "--limit", "tenant_acme"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    hosts = [line.strip() for line in proc.stdout.splitlines() if "target-" in line]
    assert sorted(hosts) == ["acme-target-01", "acme-target-02"]

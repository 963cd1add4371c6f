"""playbooks/failover_info.yml: a tenant's VMs read live (what the tenant portal shows), and only its own.

Two tenants share the provider vCenter; one of them has a test failover running copies in production.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import failoverlab as fl
import pytest
from support import REPO, run_playbook

pytestmark = pytest.mark.integration


def listing(inventory: Path, state: Path, tenant: str) -> dict[str, Any]:
    run = run_playbook(
        REPO / "playbooks" / "failover_info.yml",
        "-i",
        str(inventory),
        "-e",
        f"tenant={tenant}",
        "-e",
        f"failover_journal_dir={state}/journal",
        "-e",
        f"failover_report_dir={state}/reports",
    )
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-2000:]
    found: dict[str, Any] = run.result["tenantry_vms"]
    return found


def test_listing_shows_targets_production_and_copies_of_one_tenant(lab_tenant: Any, tmp_path: Path) -> None:
    p = lab_tenant("lsp", vms=3, destination_vlans=[3601, 3602])
    q = lab_tenant("lsq", vms=2)
    inventory = fl.write_inventory(tmp_path / "inventory", p.vcenter, [(p.data, p.target), (q.data, q.target)])

    before = listing(inventory, p.tmp, p.name)
    assert before["tenant"] == p.name
    assert before["errors"] == []
    assert [(v["name"], v["where"], v["target"]) for v in before["vms"]] == [
        (n, "target", f"{p.name}-target-01") for n in p.vms
    ]
    vm = before["vms"][0]
    assert vm["power_state"] == "poweredOff" and vm["cpus"] == 1 and vm["memory_mb"] == 16
    assert vm["disk_bytes"] == 64 * 1024 * 1024
    assert sorted(int(n["vlan"]) for n in before["networks"]) == [3601, 3602]
    assert {n["portgroup"] for n in before["networks"]} == {f"tenant-{p.name}-vlan3601", f"tenant-{p.name}-vlan3602"}
    (target,) = before["targets"]
    assert target["name"] == f"{p.name}-target-01"
    assert target["mgmt_mac"].startswith("00:50:56:") and target["tenant_ip"]

    # A test failover of the first two VMs: their copies run in production, the replicas stay.
    rc, result = p.run(mode="test", vms=p.vms[:2])
    assert rc == 0, result
    during = listing(inventory, p.tmp, p.name)
    where = sorted((v["name"], v["where"]) for v in during["vms"])
    assert where == sorted([(n, "target") for n in p.vms] + [(n, "test copy") for n in p.vms[:2]])
    copies = [v for v in during["vms"] if v["where"] == "test copy"]
    assert all(v["power_state"] == "poweredOn" for v in copies)
    assert during["run"]["mode"] == "test"

    # The other tenant sees only its own VMs.
    other = listing(inventory, q.tmp, q.name)
    assert sorted(v["name"] for v in other["vms"]) == sorted(q.vms)
    assert not {v["name"] for v in other["vms"]} & set(p.vms)

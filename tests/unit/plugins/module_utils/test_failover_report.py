"""The RTO report: times relative to the first attempt, milestones, skipped/retried/failed, the summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ansible_collections.tenantry.msp.plugins.module_utils._failover import report

T0 = 1_700_000_000.0


def journal(**vm_power: Any) -> dict[str, Any]:
    vms = {}
    for name, (state, ended) in vm_power.items():
        vms[name] = {
            "name": name,
            "origin": "acme-target-01",
            "vmx": f"[nfs-acme] {name}/{name}.vmx",
            "steps": {
                "register": {"state": "done", "started": T0 + 1, "ended": T0 + 2, "attempts": 2},
                "unregister": {
                    "state": "skipped",
                    "reason": "not registered on its replication target",
                    "started": T0 + 2,
                    "ended": T0 + 2,
                },
                "power_on": {
                    "state": state,
                    "started": T0 + 3,
                    "ended": T0 + ended,
                    "attempts": 1,
                    "error": "refused" if state == "failed" else None,
                },
                "relocate": {"state": "done", "started": T0 + 20, "ended": T0 + 25, "attempts": 1},
            },
        }
    return {
        "format": 1,
        "run_id": "r1",
        "tenant": "acme",
        "mode": "failover",
        "flow": "failover",
        "status": "done",
        "created": T0,
        "updated": T0 + 26,
        "steps_order": ["read", "register", "unregister", "power_on", "relocate", "unmount"],
        "steps": {
            "register": {
                "state": "done",
                "started": T0 + 1,
                "ended": T0 + 2,
                "seconds": 1.0,
                "done": 2,
                "failed": 0,
                "skipped": 0,
                "retried": 2,
            },
            "power_on": {"state": "done", "started": T0 + 3, "ended": T0 + 9, "seconds": 6.0, "done": 2},
        },
        "vms": vms,
        "attempts": [
            {"started": T0, "ended": T0 + 5, "result": "error"},
            {"started": T0 + 10, "ended": T0 + 26, "result": "done", "resumed": True},
        ],
        "plan": {"production_host": "esx-prod-02.lab.local"},
    }


def test_rto_is_from_the_first_attempt_to_the_last_vm_powered_on(tmp_path: Path) -> None:
    data = journal(a=("done", 8.5), b=("done", 9.0))
    built = report.build(data)
    assert built["rto_seconds"] == 9.0
    assert built["relocated_seconds"] == 25.0
    assert built["seconds"] == 26.0
    assert built["started"] == "2023-11-14T22:13:20.000Z"
    assert built["vms"]["a"]["steps"]["power_on"]["end_offset"] == 8.5
    assert {"vm": "a", "step": "register", "attempts": 2} in built["retried"]
    assert {"vm": "b", "step": "unregister", "reason": "not registered on its replication target"} in built["skipped"]
    assert built["failed"] == []
    assert [s["step"] for s in built["steps"]][-1] == "unmount" and built["steps"][-1]["state"] == "pending"
    path = report.write(str(tmp_path), built)
    assert path == tmp_path / "acme" / "r1.json"
    assert json.loads(path.read_text())["rto_seconds"] == 9.0


def test_no_rto_while_a_vm_is_not_powered_on() -> None:
    built = report.build(journal(a=("done", 8.0), b=("failed", 8.0)))
    assert built["rto_seconds"] is None
    assert built["failed"] == [{"vm": "b", "step": "power_on", "error": "refused"}]
    lines = report.summary_lines(built)
    assert "RTO (start to all powered on): not reached" in lines[1]
    assert any(line.startswith("  failed: 1: b power_on: refused") for line in lines)


def test_summary_has_one_line_per_step() -> None:
    lines = report.summary_lines(report.build(journal(a=("done", 4.0))))
    assert lines[0].startswith("failover of tenant acme, run r1: done, 1 VM, 2 attempts, 26.0 s")
    assert "RTO (start to all powered on): 4.0 s" in lines[1]
    table = [line for line in lines if line.strip()[:1].isdigit()]
    assert [line.split()[1] for line in table] == ["read", "register", "unregister", "power_on", "relocate", "unmount"]


def test_progress_line_of_a_step() -> None:
    data = journal(a=("done", 4.0))
    assert report.step_line(data, "register", 2, 6) == (
        "step 2/6 register: 2 done, 0 failed, 0 skipped, 2 retried in 1.00 s"
    )
    data["steps"]["mount"] = {"state": "done", "detail": "mount nfs-acme on h1", "done": 1, "seconds": 0.2}
    assert report.step_line(data, "mount", 2, 9) == "step 2/9 mount: mount nfs-acme on h1 (done) in 0.20 s"

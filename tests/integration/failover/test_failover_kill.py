"""Kill the failover at every step and check the guarantee (docs/failover.md, "Guarantees").

The module is run as a subprocess (as Ansible runs it) through ``kill_at.py``, which injects a hook
(``<step>:<when>``) that SIGKILLs the process after ``when`` actions of that step (``0``: once the
step's intent is journaled, before any action; ``half``: half the VMs acted on and not yet
journaled; ``all``: every action done, none journaled). Then:

1. every VM is registered on its replication target, in production, or both - never nowhere;
2. running the same mode again completes the run (resume), or ``mode=rollback`` returns every VM to
   its target and leaves nothing of the tenant in production.
"""

from __future__ import annotations

import json
from typing import Any

import failoverlab as fl
import pytest
from failoverlab import LabTenant

pytestmark = pytest.mark.integration

FAILOVER_KILLS = [
    "mount:all",
    "register:0",
    "register:half",
    "unregister:half",
    "unregister:all",
    "network:half",
    "permissions:half",
    "power_on:half",
    "relocate:half",
    "unmount:all",
]


def journal_of(t: LabTenant, mode: str) -> dict[str, Any]:
    found = [json.loads(p.read_text()) for p in (t.tmp / "journal" / t.name).glob("*.json")]
    return next(j for j in found if j["mode"] == mode)


def assert_registered_somewhere(t: LabTenant) -> dict[str, set[str]]:
    where = t.placement()
    nowhere = [name for name, sides in where.items() if not sides]
    assert not nowhere, f"registered nowhere: {nowhere} ({where})"
    return where


def assert_failed_over(t: LabTenant) -> None:
    assert t.placement() == {name: {"production"} for name in t.vms}
    pg = next(iter(t.spec["portgroups"]["destinations"].values()))
    for vm in t.production_vms().values():
        assert vm.runtime.powerState == "poweredOn"
        assert [n.name for n in vm.network] == [pg]
        assert {d.name for d in vm.datastore} <= {"prod-ds-01", "prod-ds-02"}
    assert t.nfs_in_production() is None


def assert_back_on_target(t: LabTenant) -> None:
    assert t.placement() == {name: {"target"} for name in t.vms}
    assert t.production_vms() == {}
    assert t.nfs_in_production() is None


@pytest.mark.parametrize("recovery", ["resume", "rollback"])
@pytest.mark.parametrize("kill", FAILOVER_KILLS)
def test_failover_killed_at_every_step(lab_tenant: Any, kill: str, recovery: str) -> None:
    t = lab_tenant("kill", vms=4)
    vmx = {name: vm.config.files.vmPathName for name, vm in fl.vms_of(t.target_si).items()}
    rc, _out = t.run(kill=kill)
    assert rc == -9, _out  # SIGKILLed by the hook

    where = assert_registered_somewhere(t)
    sides = [tuple(sorted(s)) for s in where.values()]
    # Killed inside a concurrent step: at least half acted on (others may have been in flight).
    if kill == "register:half":
        assert set(sides) <= {("production", "target"), ("target",)}
        assert sides.count(("production", "target")) >= 2
    if kill == "unregister:half":
        assert set(sides) <= {("production",), ("production", "target")}
        assert sides.count(("production",)) >= 2
    journal = journal_of(t, "failover")  # a complete JSON document (atomic saves)
    assert journal["status"] == "running"
    assert {name: rec["vmx"] for name, rec in journal["vms"].items()} == vmx  # recorded before any change

    if recovery == "resume":
        rc, out = t.run()
        assert rc == 0, out
        assert out["status"] == "done" and out["run_id"] == journal["run_id"]
        assert [a["resumed"] for a in out["report"]["attempts"]] == [False, True]
        assert_failed_over(t)
    else:
        rc, out = t.run(mode="rollback")
        assert rc == 0, out
        assert_back_on_target(t)
        assert journal_of(t, "failover")["status"] == "rolled_back"
        rc, plan = t.run(check=True)  # the tenant can be failed over again
        assert rc == 0 and plan["status"] == "planned", plan


@pytest.mark.parametrize("kill", ["relocate:half", "register:half", "unregister:half"])
def test_failback_killed_and_resumed(lab_tenant: Any, kill: str) -> None:
    t = lab_tenant("kfb", vms=4)
    assert t.run()[0] == 0
    rc, _out = t.run(mode="failback", kill=kill)
    assert rc == -9
    assert_registered_somewhere(t)
    rc, out = t.run(mode="failback")
    assert rc == 0, out
    assert_back_on_target(t)


def test_test_failover_killed_then_rolled_back_leaves_the_target_unchanged(lab_tenant: Any) -> None:
    t = lab_tenant("ktf", vms=3)
    before = fl.target_snapshot(t.target_si)
    rc, _out = t.run(mode="test", kill="register:half")
    assert rc == -9
    assert fl.target_snapshot(t.target_si) == before
    rc, refused = t.run(mode="failover")
    assert rc == 1 and "did not finish" in refused["msg"] and "mode=cleanup" in refused["msg"]
    rc, out = t.run(mode="rollback")
    assert rc == 0, out
    assert out["flow"] == "cleanup"
    assert t.production_vms("test-failover") == {} and fl.tenant_folder(t.vc_si, t.spec, "test-failover") is None
    assert t.nfs_in_production() is None
    assert fl.target_snapshot(t.target_si) == before

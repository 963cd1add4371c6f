"""The step loop on its own: any steps, no flow, no vCenter (the flows' tables are tested in test_failover_flows).

What the engine promises every flow: the plan comes from the steps' effects on a projection (the live
model is untouched); a real run journals a step's intent before its action runs, retries what failed,
applies the effect only to what succeeded, drops a failed VM from later steps, and tells the hooks.
"""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.tenantry.msp.plugins.module_utils._failover.engine import (
    Engine,
    Hooks,
    ReadStep,
    Settings,
    SharedStep,
    VMStep,
    plan,
)
from ansible_collections.tenantry.msp.plugins.module_utils._failover.journal import Journal
from ansible_collections.tenantry.msp.plugins.module_utils._failover.model import VM, Run
from ansible_collections.tenantry.msp.plugins.module_utils._failover.plan import Tenant
from ansible_collections.tenantry.msp.plugins.module_utils.clients.vsphere import VSphereError

TENANT = Tenant("acme", 101, "nfs-acme", "nfs", "/acme", "admin", "tenants/acme", "tenant-acme")


def model(*names: str) -> Run:
    return Run(tenant=TENANT, mode="failover", flow="failover", vms={n: VM(n) for n in names}, order=list(names))


def copied_when(run: Run, vm: VM) -> str | None:
    return "copied already" if vm.copied else None


def mark_copied(run: Run, vm: VM) -> None:
    vm.copied = True


class Recorder(Hooks):
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []

    def acted(self, step: str, count: int, total: int) -> None:
        self.calls.append((step, count, total))


def test_the_plan_projects_effects_and_leaves_the_model_alone() -> None:
    run = model("a", "b")
    run.vms["b"].copied = True
    step = VMStep("copy", "copy", "production", when=copied_when, effect=mark_copied, action=lambda ctx, vms: {})
    again = VMStep("again", "copy again", "production", when=copied_when, effect=mark_copied, action=lambda c, v: {})
    steps, projected = plan(run, (ReadStep("read"), step, again))
    assert [(s["step"], s["act"], s["skip"]) for s in steps] == [
        ("read", ["a", "b"], {}),
        ("copy", ["a"], {"b": "copied already"}),
        ("again", [], {"a": "copied already", "b": "copied already"}),  # sees the step before's effect
    ]
    assert projected.vms["a"].copied and not run.vms["a"].copied


def test_nothing_to_do_plans_no_read() -> None:
    run = model("a")
    run.vms["a"].copied = True
    step = VMStep("copy", "copy", "production", when=copied_when, effect=mark_copied, action=lambda c, v: {})
    steps, _projected = plan(run, (ReadStep("read"), step))
    assert [s["act"] for s in steps] == [[], []]


def test_a_step_journals_intent_first_retries_and_drops_what_still_fails(tmp_path: Any) -> None:
    run = model("a", "b", "c")
    journal = Journal.create(tmp_path, "acme", "failover", {})
    journal.begin_attempt("x")
    seen: list[dict[str, str]] = []
    tries: dict[str, int] = {}

    def action(ctx: Any, vms: list[VM]) -> dict[str, str | None]:
        on_disk = Journal.load(journal.path)  # what a reader (or a resumed run) sees now
        seen.append({vm.name: on_disk.vm_step_state(vm.name, "copy") for vm in vms})
        for vm in vms:
            tries[vm.name] = tries.get(vm.name, 0) + 1
        return {vm.name: ("refused" if vm.name == "c" or (vm.name == "b" and tries["b"] == 1) else None) for vm in vms}

    copy = VMStep("copy", "copy", "production", when=copied_when, effect=mark_copied, action=action)
    later = VMStep("later", "later", "production", when=lambda r, v: None, effect=lambda r, v: None, action=action)
    hooks = Recorder()
    engine = Engine(run, None, journal, Settings(max_parallel=4, retries=1, retry_delay=0), hooks)  # type: ignore[arg-type]
    engine.execute((ReadStep("read"), copy, later))

    assert seen[0] == {"a": "running", "b": "running", "c": "running"}  # intent journaled before acting
    assert tries == {"a": 2, "b": 3, "c": 2}  # b retried once then went on; c failed twice and dropped out
    assert [vm.copied for vm in run.vms.values()] == [True, True, False]  # effect only where it succeeded
    assert run.vms["c"].failed == "copy: refused"
    saved = Journal.load(journal.path)
    assert saved.vm_step_state("c", "copy") == "failed" and saved.vm_step_state("c", "later") == "skipped"
    assert saved.vms["b"]["steps"]["copy"]["attempts"] == 2
    record = saved.data["steps"]["copy"]
    assert (record["done"], record["failed"], record["retried"]) == (2, 1, 2)
    assert ("copy", 0, 3) in hooks.calls and ("later", 0, 2) in hooks.calls
    assert engine.changed and len(engine.events) == 2


def test_a_failed_shared_step_is_journaled_then_stops_the_run(tmp_path: Any) -> None:
    run = model("a")
    journal = Journal.create(tmp_path, "acme", "failover", {})

    def mount(ctx: Any) -> str | None:
        raise VSphereError("datastore refused")

    step = SharedStep(
        "mount", "mount", "production", when=lambda r: (True, "mount it"), effect=lambda r: None, action=mount
    )
    engine = Engine(run, None, journal, Settings(retries=0, retry_delay=0))  # type: ignore[arg-type]
    with pytest.raises(VSphereError, match="step mount failed: datastore refused"):
        engine.execute((ReadStep("read"), step))
    record = Journal.load(journal.path).data["steps"]["mount"]
    assert (record["state"], record["detail"], record["error"]) == ("failed", "mount it", "datastore refused")

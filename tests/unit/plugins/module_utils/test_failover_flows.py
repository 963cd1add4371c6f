"""The flows' tables, read without a vCenter: what each step does, and the plan they give for a model.

"What does a test failover do at register?" is one row: ``FLOWS["test"].step("register")``.
"""

from __future__ import annotations

from ansible_collections.tenantry.msp.plugins.module_utils._failover import actions
from ansible_collections.tenantry.msp.plugins.module_utils._failover.engine import ReadStep, SharedStep, VMStep, plan
from ansible_collections.tenantry.msp.plugins.module_utils._failover.flows import FLOWS
from ansible_collections.tenantry.msp.plugins.module_utils._failover.model import VM, Choices, Production, Run
from ansible_collections.tenantry.msp.plugins.module_utils._failover.plan import Tenant
from ansible_collections.tenantry.msp.plugins.module_utils._failover.sites import VMRow

TENANT = Tenant("acme", 101, "nfs-acme", "nfs", "/acme", "admin", "tenants/acme", "tenant-acme", {310: "pg310"})
NIC = {"mac": "00:50:56:00:00:01", "type": "VirtualVmxnet3"}


def row(name: str, **over: object) -> VMRow:
    values: dict[str, object] = dict(
        name=name,
        obj=None,
        moid="vm-" + name,
        vmx=f"[nfs-acme] {name}/{name}.vmx",
        power="poweredOff",
        memory_mb=16,
        disk_bytes=1024,
        nics=[],
        extra={},
        host="host-1",
        datastores=["ds-nfs"],
        parent=None,
    )
    values.update(over)
    return VMRow(**values)  # type: ignore[arg-type]


def failover_model() -> Run:
    """VM a still only on its target; b already registered in production (a resumed run)."""
    vms = {
        "a": VM("a", origin="t1", vmx="[nfs-acme] a/a.vmx", nics=[NIC], target=row("a")),
        "b": VM("b", origin="t1", vmx="[nfs-acme] b/b.vmx", nics=[NIC], target=row("b"), prod=row("b")),
    }
    vms["b"].permission = False
    choices = Choices(destination_vlan=310, portgroup="pg310", host_moid="host-1", datastores={"a": "ds1", "b": "ds1"})
    production = Production(hosts={"host-1": "esx1"}, nfs=None, datastores={"ds1": "ds-1"})
    return Run(TENANT, "failover", "failover", vms, ["a", "b"], choices, production)


def test_every_row_names_its_rule_effect_and_action() -> None:
    for flow in FLOWS.values():
        for step in flow.steps[1:]:
            assert isinstance(step, (VMStep, SharedStep)), (flow.name, step.name)
            assert callable(step.when) and callable(step.effect) and callable(step.action)
    assert FLOWS["test"].step("register").action is actions.register_copies  # type: ignore[union-attr]
    assert FLOWS["failover"].step("register").action is actions.register_in_production  # type: ignore[union-attr]
    assert FLOWS["failback"].step("register").action is actions.register_on_targets  # type: ignore[union-attr]


def test_a_failover_plan_acts_only_where_needed() -> None:
    run = failover_model()
    steps, after = plan(run, FLOWS["failover"].steps)
    acts = {s["step"]: s["act"] for s in steps}
    assert acts["mount"] == ["mount nfs-acme on esx1"]
    assert acts["register"] == ["a"]  # b is there already
    assert acts["unregister"] == ["a", "b"] and acts["network"] == ["a", "b"] and acts["power_on"] == ["a", "b"]
    assert acts["unmount"] == ["unmount nfs-acme from esx1"]  # both relocated off it by then
    placed = after.placement()
    assert placed["a"]["replication_target"] is None
    assert placed["a"]["production"] == {
        "folder": "tenants/acme",
        "host": "esx1",
        "power": "poweredOn",
        "datastores": ["ds1"],
        "networks": ["pg310"],
    }
    assert run.vms["a"].prod is None and run.vms["a"].target is not None  # the live model is untouched


def test_the_nic_rule_adds_a_missing_nic_and_moves_one_on_another_network() -> None:
    run = failover_model()
    b = run.vms["b"]
    rule = FLOWS["failover"].step("network").when  # type: ignore[union-attr]
    assert rule(run, b) is None  # the registered VM lacks the recorded NIC
    b.prod = row("b", nics=[dict(NIC, network="pg310", address_type="manual", key=1, label="", network_moid="")])
    b.prod.extra = run.tags(b)
    assert rule(run, b) == "already on pg310"


def doc_tables() -> dict[str, list[tuple[str, str]]]:
    """docs/failover.md, "The flows, step by step": per flow, (step, action function) in order."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[4] / "docs" / "failover.md").read_text()
    section = text.split("### The flows, step by step", 1)[1].split("\n### ", 1)[0]
    tables: dict[str, list[tuple[str, str]]] = {}
    flow = ""
    for line in section.splitlines():
        heading = re.match(r"\*\*[^*]+\*\* \(`([A-Z]+)`", line)
        if heading:
            flow = heading.group(1).lower()
            tables[flow] = []
        elif flow and re.match(r"\| \d+ \|", line):
            cells = [c.strip() for c in line.strip("|").split("|")]
            tables[flow].append((cells[1], re.findall(r"`([\w.]+)`", cells[4])[0]))
    return tables


def test_the_docs_tables_match_the_flows() -> None:
    documented = doc_tables()
    assert sorted(documented) == sorted(FLOWS)
    for name, flow in FLOWS.items():
        in_code = [(s.name, "reconcile.read" if isinstance(s, ReadStep) else s.action.__name__) for s in flow.steps]
        assert documented[name] == in_code, name

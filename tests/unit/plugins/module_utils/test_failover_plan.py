"""Failover planning rules: tenant fields, destination VLAN, VM selection, boot waves, host and datastore choice."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.tenantry.msp.plugins.module_utils._failover.flows import STEPS
from ansible_collections.tenantry.msp.plugins.module_utils._failover.plan import (
    BadInput,
    Check,
    HostInfo,
    Tenant,
    assign_datastores,
    boot_waves,
    choose_host,
    destination,
    human_bytes,
    plan_lines,
    select_vms,
)
from ansible_collections.tenantry.msp.plugins.module_utils._tenant_model import validate_tenant

GiB = 1024**3


def spec(**failover: Any) -> dict[str, Any]:
    data = {
        "name": "acme",
        "id": 101,
        "vlan": 210,
        "network": {"cidr": "10.210.0.0/24", "gateway": "10.210.0.1", "pool": "10.210.0.100-10.210.0.149"},
        "targets": {"count": 1},
        "nfs": {"server": "192.168.50.10", "path": "/exports/tenants/acme"},
        "production": {"account": "acme-ops@vsphere.local"},
        "failover": {"destination_vlans": [310, 311], **failover},
    }
    return validate_tenant(data, "acme.yml")


def test_tenant_from_the_inventory_spec_uses_its_names() -> None:
    t = Tenant.from_spec(spec(boot_order=[{"vms": ["dc01"], "delay": 30}, {"vms": ["sql01", "app01"]}]))
    assert (t.name, t.id, t.datastore) == ("acme", 101, "nfs-acme")
    assert (t.folder, t.resource_pool, t.account) == ("tenants/acme", "tenant-acme", "acme-ops@vsphere.local")
    assert t.destinations == {310: "tenant-acme-vlan310", 311: "tenant-acme-vlan311"}
    assert t.boot_order == ((("dc01",), 30), (("sql01", "app01"), 0))
    assert t.test_folder == "tenants/acme/test-failover"
    assert len(t.isolated_vswitch) <= 32


def test_tenant_spec_missing_fields_are_named() -> None:
    with pytest.raises(BadInput) as err:
        Tenant.from_spec({"name": "acme", "nfs": {"server": "x"}})
    text = str(err.value)
    for field in ("tenant spec has no id", "nfs.datastore", "nfs.path", "production.account"):
        assert field in text


def test_destination_vlan_must_be_allowed() -> None:
    t = Tenant.from_spec(spec())
    assert destination(t, 311) == (311, "tenant-acme-vlan311")
    with pytest.raises(BadInput, match="destination VLAN 999 is not allowed for tenant acme; allowed: 310, 311"):
        destination(t, 999)
    with pytest.raises(BadInput, match="several destination VLANs"):
        destination(t, None)
    single = Tenant.from_spec(spec(destination_vlans=[310]))
    assert destination(single, None) == (310, "tenant-acme-vlan310")
    none = Tenant.from_spec(spec(destination_vlans=[]))
    with pytest.raises(BadInput, match="allows no destination VLAN"):
        destination(none, 310)


def test_select_vms_refuses_unknown_names_and_keeps_order() -> None:
    assert select_vms([], ["b", "a"], "t") == ["a", "b"]
    assert select_vms(["b", "a", "b"], ["a", "b", "c"], "t") == ["b", "a"]
    with pytest.raises(BadInput, match=r"VMs x, y not on acme's target \(found there: a, b\)"):
        select_vms(["a", "x", "y"], ["a", "b"], "acme's target")
    with pytest.raises(BadInput, match="no VMs found on acme's target"):
        select_vms([], [], "acme's target")


def test_boot_waves_follow_the_tenant_file_then_the_rest() -> None:
    t = Tenant.from_spec(spec(boot_order=[{"vms": ["dc01"], "delay": 30}, {"vms": ["sql01", "gone"], "delay": 5}]))
    waves = boot_waves(t, ["app01", "sql01", "dc01", "web01"])
    assert [(w.vms, w.delay) for w in waves] == [(("dc01",), 30), (("sql01",), 5), (("app01", "web01"), 0)]
    assert [w.vms for w in boot_waves(t, ["app01"])] == [("app01",)]


def host(name: str, free: int = 4096, **over: Any) -> HostInfo:
    values = {"name": name, "connected": True, "maintenance": False, "memory_free_mb": free, "has_portgroup": True}
    values.update(over)
    return HostInfo(**values)


def test_choose_host_by_free_memory_among_usable_hosts() -> None:
    hosts = [host("a", 1000), host("b", 3000), host("c", 9000, maintenance=True), host("d", 8000, has_portgroup=False)]
    assert choose_host(hosts, 500, None, "pg") == "b"
    assert choose_host(hosts, 500, "a", "pg") == "a"
    with pytest.raises(BadInput, match="production host d has no portgroup pg"):
        choose_host(hosts, 500, "d", "pg")
    with pytest.raises(BadInput, match="production host z is not in the cluster"):
        choose_host(hosts, 500, "z", "pg")
    with pytest.raises(BadInput, match="no production host can take the VMs: a has 1000 MB free memory"):
        choose_host(hosts, 5000, None, "pg")


def test_assign_datastores_balances_and_refuses_what_does_not_fit() -> None:
    placed = assign_datastores({"big": 6 * GiB, "mid": 3 * GiB, "small": 1 * GiB}, {"ds1": 8 * GiB, "ds2": 5 * GiB})
    assert placed == {"big": "ds1", "mid": "ds2", "small": "ds1"}
    with pytest.raises(BadInput, match=r"VM huge needs 9.0 GiB"):
        assign_datastores({"huge": 9 * GiB}, {"ds1": 8 * GiB, "ds2": 5 * GiB})
    with pytest.raises(BadInput, match="no production datastore"):
        assign_datastores({"a": 1}, {})
    assert human_bytes(512) == "512 B" and human_bytes(3 * GiB) == "3.0 GiB"


def test_steps_register_before_they_unregister() -> None:
    """The safety argument: each mode registers on the new side before it unregisters from the old."""
    for mode in ("failover", "failback"):
        names = [s.name for s in STEPS[mode]]
        assert names.index("register") < names.index("unregister"), mode
        assert names[0] == "read" and names[-1] == "unmount"
    test = [s.name for s in STEPS["test"]]
    assert "unregister" not in test and "destroy" not in test
    failover = [s.name for s in STEPS["failover"]]
    assert failover.index("power_on") < failover.index("relocate")


def test_plan_lines_show_acts_and_skips() -> None:
    plan = [
        {"step": "read", "per_vm": True, "act": ["a", "b"], "skip": {}},
        {"step": "mount", "per_vm": False, "act": ["mount nfs-acme on h1"], "detail": "mount nfs-acme on h1"},
        {"step": "register", "per_vm": True, "act": ["b"], "skip": {"a": "already registered in production"}},
    ]
    lines = plan_lines("failover", "acme", plan)
    assert lines[0] == "failover plan for tenant acme:"
    assert lines[2].endswith("mount nfs-acme on h1")
    assert "1 VM: b" in lines[3] and "(skip 1: a)" in lines[3]
    assert Check("x", False, "broken").line() == "FAIL x: broken"

"""tenantry.msp.failover against the real simulator: plan, idempotence, outcome, failback, test, refusals.

On the strict simulator: a registered VM comes back from its .vmx (NICs, MACs, UUID), its first power-on
elsewhere asks "moved or copied?" (answered moved for a failover, copied for a test copy), and the
permission entries are asserted as stored (the failover's own session is the administrator's).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import failoverlab as fl
import pytest
from failoverlab import LabTenant
from pyVmomi import vim
from support import run_module

from ansible_collections.tenantry.msp.plugins.module_utils._tenant_role import (
    PRODUCTION_PRIVILEGES,
    PRODUCTION_ROLE_NAME,
    SYSTEM_PRIVILEGES,
)

pytestmark = pytest.mark.integration


def nics(vm: Any) -> list[tuple[str, str]]:
    return sorted(
        (d.macAddress.lower(), d.backing.deviceName)
        for d in vm.config.hardware.device
        if isinstance(d, vim.vm.device.VirtualEthernetCard)
    )


def extra(vm: Any) -> dict[str, str]:
    return {o.key: str(o.value) for o in vm.config.extraConfig or []}


def journal_files(t: LabTenant) -> list[Path]:
    return sorted((t.tmp / "journal").glob("*/*.json"))


def test_failover_plan_apply_idempotent_and_outcome(tmp_path: Path, lab_tenant: Any) -> None:
    t = lab_tenant("fo", vms=3, boot_order=[{"vms": ["{name}-vm02"], "delay": 1}])
    first = t.vms[1]
    macs = {name: nics(vm)[0][0] for name, vm in fl.vms_of(t.target_si).items()}
    uuids = {name: vm.config.uuid for name, vm in fl.vms_of(t.target_si).items()}
    pg = t.spec["portgroups"]["destinations"][str(t.spec["failover"]["destination_vlans"][0])]

    runs = [
        run_module(tmp_path, "tenantry.msp.failover", t.args(), check=check, diff=True)
        for check in (True, False, True, False)
    ]
    assert [r.rc for r in runs] == [0, 0, 0, 0], runs[1].stdout[-3000:]
    assert [r.result["changed"] for r in runs] == [True, True, False, False]
    assert [r.result["status"] for r in runs] == ["planned", "done", "planned", "nothing to do"]
    for run in runs:
        assert t.vcenter.password not in run.stdout + run.stderr
        assert t.target.password not in run.stdout + run.stderr

    plan = {s["step"]: s for s in runs[0].result["plan"]}
    assert list(plan) == [
        "read",
        "mount",
        "register",
        "unregister",
        "network",
        "permissions",
        "power_on",
        "relocate",
        "unmount",
    ]
    assert plan["register"]["act"] == t.vms and plan["relocate"]["act"] == t.vms
    assert all(c["ok"] for c in runs[0].result["preflight"])
    assert all(not s["act"] for s in runs[2].result["plan"])

    # Where everything is now.
    assert t.placement() == {name: {"production"} for name in t.vms}
    result = runs[1].result
    host = result["choices"]["production_host"]
    content = t.vc_si.RetrieveContent()
    pool = content.searchIndex.FindByInventoryPath(f"provider/host/production/Resources/tenant-{t.name}")
    account_perms = {}
    for name, vm in t.production_vms().items():
        assert vm.config.files.vmPathName == f"[nfs-{t.name}] {name}/{name}.vmx"
        assert vm.resourcePool == pool
        assert vm.runtime.host.name == host
        assert vm.runtime.powerState == "poweredOn"
        assert nics(vm) == [(macs[name], pg)]
        assert [n.name for n in vm.network] == [pg]
        assert {d.name for d in vm.datastore} <= {"prod-ds-01", "prod-ds-02"}
        assert extra(vm)["tenantry.tenant"] == t.name
        assert extra(vm)["tenantry.origin.target"] == t.target_name
        assert extra(vm)["tenantry.origin.vmx"] == f"[nfs-{t.name}] {name}/{name}.vmx"
        assert vm.runtime.question is None  # "moved or copied?" answered: moved (the UUID and MACs kept)
        assert vm.config.uuid == uuids[name]
        perms = content.authorizationManager.RetrieveEntityPermissions(vm, False)
        account_perms[name] = [(p.principal, p.roleId, p.propagate) for p in perms]
    # The collection's role, made by the run with exactly its privileges (vSphere adds System.*).
    role = next(r for r in content.authorizationManager.roleList if r.name == PRODUCTION_ROLE_NAME)
    assert sorted(set(role.privilege) - SYSTEM_PRIVILEGES) == PRODUCTION_PRIVILEGES
    assert account_perms == {name: [("admin", role.roleId, True)] for name in t.vms}
    assert t.nfs_in_production() is None  # unmounted from production once every VM was relocated

    # The report: per step and per VM, RTO, boot order.
    report = json.loads(Path(result["report_file"]).read_text())
    assert report == result["report"]
    assert report["status"] == "done" and report["rto_seconds"] is not None
    assert report["relocated_seconds"] >= report["rto_seconds"]
    power = {name: report["vms"][name]["steps"]["power_on"] for name in t.vms}
    second_wave = min(power[n]["start_offset"] for n in t.vms if n != first)
    assert second_wave >= power[first]["start_offset"] + 1.0  # the wave's delay (starts are local times)
    assert power[first]["end_offset"] <= second_wave + 0.3  # ends are vCenter's, corrected by a measured offset
    assert report["rto_seconds"] == max(p["end_offset"] for p in power.values())
    assert any(line.startswith("  RTO (start to all powered on):") for line in result["summary"])
    events = [e["text"] for e in json.loads(Path(result["journal_file"]).read_text())["events"]]
    assert f"boot order: wave 1 ({first}) powered on, waiting 1 s" in events
    assert len(result["progress"]) == 8

    # Diff mode: before on the target, after in production.
    diff = runs[1].result["diff"]
    assert diff["before"][first]["replication_target"] == t.target_name and diff["before"][first]["production"] is None
    assert diff["after"][first]["production"]["power"] == "poweredOn"


def test_failback_returns_every_vm_to_its_target(lab_tenant: Any) -> None:
    t = lab_tenant("fb", vms=2)
    before = {n: vm.config.files.vmPathName for n, vm in fl.vms_of(t.target_si).items()}
    target_nics = {n: nics(vm) for n, vm in fl.vms_of(t.target_si).items()}
    assert t.run()[0] == 0
    rc, back = t.run(mode="failback")
    assert rc == 0, back
    assert back["status"] == "done" and back["changed"] is True
    assert [s["step"] for s in back["plan"]] == [
        "read",
        "mount",
        "relocate",
        "power_off",
        "register",
        "unregister",
        "network",
        "unmount",
    ]
    assert t.placement() == {name: {"target"} for name in t.vms}
    # Each NIC back on the network it had on the target, with its MAC (the .vmx brought it back).
    assert {n: nics(vm) for n, vm in fl.vms_of(t.target_si).items()} == target_nics
    assert {n: vm.config.files.vmPathName for n, vm in fl.vms_of(t.target_si).items()} == before
    assert all(vm.runtime.powerState == "poweredOff" for vm in fl.vms_of(t.target_si).values())
    assert t.production_vms() == {}
    assert t.nfs_in_production() is None
    assert back["report"]["on_target_seconds"] is not None
    rc, again = t.run(mode="failback")
    assert (rc, again["changed"], again["status"]) == (0, False, "nothing to do")


def test_test_failover_leaves_the_target_unchanged_and_cleanup_removes_everything(lab_tenant: Any) -> None:
    t = lab_tenant("tf", vms=2)
    before = fl.target_snapshot(t.target_si)
    replicas = {
        name: {"uuid": vm.config.uuid, "macs": {mac for mac, _n in nics(vm)}}
        for name, vm in fl.vms_of(t.target_si).items()
    }
    rc, test = t.run(mode="test")
    assert rc == 0, test
    assert fl.target_snapshot(t.target_si) == before

    copies = t.production_vms("test-failover")
    assert sorted(copies) == t.vms
    host = test["choices"]["production_host"]
    ds = test["choices"]["test_datastore"]
    isolated = f"tenant-{t.name}-isolated"
    for name, vm in copies.items():
        assert vm.runtime.powerState == "poweredOn"
        assert vm.config.files.vmPathName == f"[{ds}] tenantry-test-{t.name}/{name}/{name}.vmx"
        assert [n for _mac, n in nics(vm)] == [isolated]
        assert vm.runtime.question is None  # "moved or copied?" answered: copied
        assert vm.config.uuid != replicas[name]["uuid"]  # a copy gets a new UUID ...
        assert not {mac for mac, _n in nics(vm)} & replicas[name]["macs"]  # ... and new MACs
        assert vm.runtime.host.name == host
    host_obj = next(h for h in fl.vms_of(t.vc_si).values() if h.runtime.host.name == host).runtime.host
    vswitch = next(v for v in host_obj.config.network.vswitch if v.name == f"tenantry-iso-{t.spec['id']}")
    assert vswitch.spec.bridge is None and not vswitch.pnic  # no uplink
    assert isolated in [p.spec.name for p in host_obj.config.network.portgroup]
    assert t.production_vms() == {}  # nothing failed over
    assert t.nfs_in_production() is None  # the copies do not need the tenant's datastore
    copy_dir = Path(next(d for d in host_obj.datastore if d.name == ds).summary.url) / f"tenantry-test-{t.name}"
    vm1 = t.vms[0]
    assert sorted(p.name for p in (copy_dir / vm1).iterdir()) == sorted(
        [f"{vm1}.vmx", f"{vm1}.nvram", f"{vm1}.vmdk", f"{vm1}-flat.vmdk", "vmware.log"]
    )

    rc, clean = t.run(mode="cleanup")
    assert rc == 0, clean
    assert clean["status"] == "done"
    assert fl.tenant_folder(t.vc_si, t.spec, "test-failover") is None
    assert isolated not in [p.spec.name for p in host_obj.config.network.portgroup]
    assert f"tenantry-iso-{t.spec['id']}" not in [v.name for v in host_obj.config.network.vswitch]
    assert not copy_dir.exists()
    assert fl.target_snapshot(t.target_si) == before
    rc, again = t.run(mode="cleanup")
    assert (rc, again["changed"]) == (0, False)


@pytest.mark.parametrize(
    ("case", "over", "message"),
    [
        ("unknown VM", {"vms": ["nope-vm"]}, "VM nope-vm not on tenant {t}'s replication target {t}-target-01"),
        ("VLAN", {"destination_vlan": 4000}, "destination VLAN 4000 is not allowed for tenant {t}"),
        ("account", {"check_account": True}, "account {t}-ops@vsphere.local not found"),
        ("role", {"production_role": "NoSuchRole"}, "role NoSuchRole not found"),
        ("host", {"production_host": "esx-nope"}, "production host esx-nope is not in the cluster"),
        ("datastore", {"datastores": ["nope-ds"]}, "production datastore nope-ds not found"),
    ],
)
def test_bad_input_is_refused_before_any_change(lab_tenant: Any, case: str, over: dict[str, Any], message: str) -> None:
    t = lab_tenant("bad", vms=1)
    t.spec["production"]["account"] = f"{t.name}-ops@vsphere.local"  # the simulator knows root and admin only
    before = fl.target_snapshot(t.target_si)
    rc, out = t.run(**over)
    assert rc == 1 and out["failed"] is True, out
    assert message.format(t=t.name) in out["msg"], out["msg"]
    assert out["msg"].startswith("refused before any change")
    assert fl.target_snapshot(t.target_si) == before
    assert fl.tenant_folder(t.vc_si, t.spec) is None and t.nfs_in_production() is None
    assert not list((t.tmp / "journal").glob("*/*.json"))


def test_missing_nfs_datastore_and_powered_on_replica_are_refused(lab_tenant: Any) -> None:
    t = lab_tenant("nfs", vms=1, build=False)
    rc, out = t.run()
    assert rc == 1
    assert f"NFS datastore nfs-{t.name} is missing on replication target {t.target_name}" in out["msg"]

    u = lab_tenant("on", vms=2)
    vm = fl.vms_of(u.target_si)[u.vms[0]]
    fl.wait(u.target_si, [vm.PowerOnVM_Task()])
    rc, out = u.run()
    assert rc == 1
    assert f"{u.vms[0]} is poweredOn on replication target {u.target_name}" in out["msg"]
    assert u.placement() == {name: {"target"} for name in u.vms}


def test_a_refused_step_is_retried_reported_and_resumed(lab_tenant: Any) -> None:
    """vCenter refuses to register one VM (its .vmx is already registered elsewhere): the others go on,
    the refused one stays registered on its target; once the cause is fixed, running again resumes."""
    t = lab_tenant("ref", vms=3)
    victim = t.vms[1]
    content = t.vc_si.RetrieveContent()
    # A stray registration of the victim's files, outside the tenant's folder.
    datastore = fl.nas_spec(t.spec)
    host = content.searchIndex.FindByInventoryPath("provider/host/production").host[2]
    host.configManager.datastoreSystem.CreateNasDatastore(datastore)
    pool = content.searchIndex.FindByInventoryPath("provider/host/production/Resources")
    folder = content.searchIndex.FindByInventoryPath("provider/vm/production")
    vmx = f"[nfs-{t.name}] {victim}/{victim}.vmx"
    [stray] = fl.wait(t.vc_si, [folder.RegisterVM_Task(path=vmx, name=victim, asTemplate=False, pool=pool, host=host)])

    rc, out = t.run()
    assert rc == 1
    assert f"{victim} at register" in out["msg"] and "run mode=failover again to resume" in out["msg"]
    assert out["status"] == "failed"
    report = out["report"]
    assert {"vm": victim, "step": "register", "attempts": 2} in report["retried"]
    assert [f["vm"] for f in report["failed"]] == [victim]
    assert report["rto_seconds"] is None
    placement = t.placement()
    assert placement[victim] == {"target"}
    assert all(placement[n] == {"production"} for n in t.vms if n != victim)

    stray.UnregisterVM()
    host.configManager.datastoreSystem.RemoveDatastore(t.nfs_in_production())
    rc, out = t.run()
    assert rc == 0, out
    assert out["run_id"] == report["run_id"] and len(out["report"]["attempts"]) == 2
    assert out["report"]["rto_seconds"] is not None
    assert t.placement() == {name: {"production"} for name in t.vms}

"""tenantry.msp.nested_target against the real govmomi simulator, run through ansible-playbook.

Every outcome is read back from the simulated vCenter with pyVmomi.  Tenants here have names
of their own (the session's vCenter is shared with other tests) and are torn down at the end.
"""

from __future__ import annotations

import json
import socket
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim
from support import run_module, run_playbook

pytestmark = pytest.mark.integration

MODULE = "tenantry.msp.nested_target"


def conn(vcenter: Any, **over: Any) -> dict[str, Any]:
    args = {
        "hostname": vcenter.hostname,
        "port": vcenter.port,
        "username": vcenter.username,
        "password": vcenter.password,
        "ca_file": str(vcenter.ca_file),
    }
    args.update(over)
    return args


def target(tenant: str, index: int, vlan: int, **over: Any) -> dict[str, Any]:
    """A target as the role builds it; MACs from a per-test range inside VMware's static range."""
    base = 0x005056300000 + (zlib.crc32(tenant.encode()) % 0x800) * 0x100 + index * 2
    mac = [":".join("%02x" % ((n >> s) & 0xFF) for s in range(40, -8, -8)) for n in (base, base + 1)]
    t = {
        "name": f"{tenant}-target-{index:02d}",
        "tenant": tenant,
        "vlan": vlan,
        "mgmt_mac": mac[0],
        "tenant_mac": mac[1],
        "cpus": 2,
        "memory_mb": 4096,
        "disk_gb": 24,
    }
    t.update(over)
    return t


# ----------------------------------------------------------------------------- read back


def content(si: Any) -> Any:
    return si.RetrieveContent()


def hosts(si: Any) -> list[Any]:
    return list(content(si).searchIndex.FindByInventoryPath("provider/host/production").host)


def portgroups(si: Any) -> dict[str, dict[str, int]]:
    """portgroup name -> {host name: VLAN} over the cluster's hosts."""
    out: dict[str, dict[str, int]] = {}
    for host in hosts(si):
        for pg in host.config.network.portgroup:
            out.setdefault(pg.spec.name, {})[host.name] = pg.spec.vlanId
    return out


def security(si: Any, name: str) -> dict[str, tuple[Any, ...]]:
    """host name -> the portgroup's own (spec) and effective (computed) promiscuous / MAC changes / forged transmits."""
    out = {}
    for host in hosts(si):
        for pg in host.config.network.portgroup:
            if pg.spec.name == name:
                own, computed = pg.spec.policy.security, pg.computedPolicy.security
                out[host.name] = (
                    own.allowPromiscuous,
                    own.macChanges,
                    own.forgedTransmits,
                    computed.allowPromiscuous,
                    computed.macChanges,
                    computed.forgedTransmits,
                )
    return out


def networks(si: Any) -> set[str]:
    return {n.name for n in content(si).searchIndex.FindByInventoryPath("provider").network}


def tenant_folders(si: Any) -> dict[str, Any]:
    root = content(si).searchIndex.FindByInventoryPath("provider/vm/replication-targets")
    return {f.name: f for f in root.childEntity if isinstance(f, vim.Folder)}


def vms(si: Any, tenant: str) -> dict[str, Any]:
    folder = tenant_folders(si).get(tenant)
    return {vm.name: vm for vm in (folder.childEntity if folder else []) if isinstance(vm, vim.VirtualMachine)}


def nics(vm: Any) -> list[tuple[str, str, str]]:
    cards = sorted(
        (d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)), key=lambda d: d.key
    )
    return [(d.backing.deviceName, d.macAddress, d.addressType) for d in cards]


def disk_gb(vm: Any) -> int:
    disk = next(d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk))
    return int(disk.capacityInKB // (1024 * 1024))


def assert_stamped(si: Any, t: dict[str, Any]) -> None:
    vm = vms(si, t["tenant"])[t["name"]]
    assert vm.config.template is False
    assert vm.resourcePool.name == "replication-targets"
    assert vm.config.nestedHVEnabled is True
    assert (vm.config.hardware.numCPU, vm.config.hardware.memoryMB) == (t["cpus"], t["memory_mb"])
    assert disk_gb(vm) == t["disk_gb"]
    assert nics(vm) == [
        ("management", t["mgmt_mac"], "manual"),
        (f"tenant-{t['tenant']}-vlan{t['vlan']}", t["tenant_mac"], "manual"),
    ]
    assert vm.runtime.powerState == "poweredOn"


def summary(run: Any) -> list[tuple[int, bool]]:
    return [(r.rc, r.result.get("changed")) for r in run]


# ----------------------------------------------------------------------------- tests


def test_stamp_out_idempotent_drift_and_teardown(tmp_path: Path, vcenter: Any, vsphere_si: Any) -> None:
    targets = [
        target("t5alpha", 1, 3501),
        target("t5alpha", 2, 3501),
        target("t5beta", 1, 3502, cpus=4, memory_mb=8192, disk_gb=16),
    ]
    args = conn(vcenter, targets=targets)

    runs = [run_module(tmp_path, MODULE, args, check=True, diff=True)]
    # Check mode planned everything and changed nothing.
    assert vms(vsphere_si, "t5alpha") == {} and "t5alpha" not in tenant_folders(vsphere_si)
    assert "tenant-t5alpha-vlan3501" not in portgroups(vsphere_si)
    runs += [run_module(tmp_path, MODULE, args, check=check, diff=True) for check in (False, True, False)]
    assert summary(runs) == [(0, True), (0, True), (0, False), (0, False)], runs[1].stdout[-3000:]

    first, apply = runs[0].result, runs[1].result
    assert first["actions"]["cloned"] == sorted(t["name"] for t in targets)
    assert first["actions"]["folders_created"] == ["t5alpha", "t5beta"]
    assert sorted(first["actions"]["portgroups_added"]) == ["tenant-t5alpha-vlan3501", "tenant-t5beta-vlan3502"]
    assert apply["actions"]["cloned"] == first["actions"]["cloned"]  # one clone task per target
    assert apply["diff"]["before"]["targets"] == {t["name"]: None for t in targets}
    after = apply["diff"]["after"]["targets"]["t5alpha-target-01"]
    assert after["nics"][0] == {"network": "management", "mac": targets[0]["mgmt_mac"], "address_type": "manual"}
    assert vcenter.password not in runs[1].stdout + runs[1].stderr

    for t in targets:
        assert_stamped(vsphere_si, t)
    pgs = portgroups(vsphere_si)
    assert pgs["tenant-t5alpha-vlan3501"] == {h.name: 3501 for h in hosts(vsphere_si)}
    assert pgs["tenant-t5beta-vlan3502"] == {h.name: 3502 for h in hosts(vsphere_si)}
    # The target's provider-side portgroups reject promiscuous mode, MAC changes and forged transmits, on the
    # portgroup itself (not inherited from the switch) and in effect.
    rejected = {h.name: (False,) * 6 for h in hosts(vsphere_si)}
    for name in ("tenant-t5alpha-vlan3501", "tenant-t5beta-vlan3502", "management"):
        assert security(vsphere_si, name) == rejected, name
    secure = {"allow_promiscuous": False, "mac_changes": False, "forged_transmits": False}
    assert apply["portgroup_security"]["management"] == {h.name: secure for h in hosts(vsphere_si)}

    # Drift in the security policy: someone accepts forged transmits on a tenant portgroup and promiscuous mode
    # on the management portgroup of one host; one run rejects them again, keeping VLAN and other policies.
    host = hosts(vsphere_si)[0]
    for name, field in (("tenant-t5alpha-vlan3501", "forgedTransmits"), ("management", "allowPromiscuous")):
        spec = next(pg.spec for pg in host.config.network.portgroup if pg.spec.name == name)
        setattr(spec.policy.security, field, True)
        host.configManager.networkSystem.UpdatePortGroup(pgName=name, portgrp=spec)
    assert security(vsphere_si, "management")[host.name][0] is True
    drift = [run_module(tmp_path, MODULE, args, check=check, diff=True) for check in (True, False, False)]
    assert summary(drift) == [(0, True), (0, True), (0, False)]
    assert drift[1].result["actions"]["portgroups_secured"] == {
        "management": [host.name],
        "tenant-t5alpha-vlan3501": [host.name],
    }
    assert drift[0].result["diff"]["before"]["portgroup_security"]["management"][host.name]["allow_promiscuous"]
    for name in ("tenant-t5alpha-vlan3501", "management"):
        assert security(vsphere_si, name) == rejected, name
    assert portgroups(vsphere_si)["tenant-t5alpha-vlan3501"] == {h.name: 3501 for h in hosts(vsphere_si)}

    # Drift: someone powers a target off and shrinks its memory; one run puts it back.
    vm = vms(vsphere_si, "t5alpha")["t5alpha-target-02"]
    WaitForTask(vm.PowerOffVM_Task())
    WaitForTask(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(memoryMB=2048)))
    fix = run_module(tmp_path, MODULE, args, diff=True)
    assert fix.rc == 0 and fix.result["changed"] is True
    assert fix.result["actions"]["reconfigured"] == ["t5alpha-target-02"]
    assert fix.result["actions"]["powered_on"] == ["t5alpha-target-02"]
    assert fix.result["diff"]["before"]["targets"]["t5alpha-target-02"]["memory_mb"] == 2048
    assert_stamped(vsphere_si, targets[1])

    # Teardown: check mode changes nothing, then everything the tenants owned goes.
    absent = conn(vcenter, targets=[{k: t[k] for k in ("name", "tenant", "vlan")} for t in targets], state="absent")
    plan = run_module(tmp_path, MODULE, absent, check=True, diff=True)
    assert plan.rc == 0 and plan.result["changed"] is True
    assert len(vms(vsphere_si, "t5alpha")) == 2 and "tenant-t5alpha-vlan3501" in portgroups(vsphere_si)
    gone = run_module(tmp_path, MODULE, absent, diff=True)
    assert gone.rc == 0 and gone.result["changed"] is True
    assert gone.result["actions"]["destroyed"] == sorted(t["name"] for t in targets)
    assert gone.result["diff"]["after"]["targets"] == {t["name"]: None for t in targets}
    assert not {"t5alpha", "t5beta"} & set(tenant_folders(vsphere_si))
    assert not {"tenant-t5alpha-vlan3501", "tenant-t5beta-vlan3502"} & set(portgroups(vsphere_si))
    assert not {"tenant-t5alpha-vlan3501", "tenant-t5beta-vlan3502"} & networks(vsphere_si)
    again = run_module(tmp_path, MODULE, absent)
    assert again.rc == 0 and again.result["changed"] is False


def test_shared_portgroup_is_kept_until_the_last_tenant_goes(tmp_path: Path, vcenter: Any, vsphere_si: Any) -> None:
    shared = "tenant-shared-vlan3510"
    a = target("t5gamma", 1, 3510, portgroup=shared)
    b = target("t5delta", 1, 3510, portgroup=shared)
    run = run_module(tmp_path, MODULE, conn(vcenter, targets=[a, b]))
    assert run.rc == 0 and run.result["changed"] is True, run.stdout[-2000:]
    assert set(portgroups(vsphere_si)[shared].values()) == {3510}

    def absent(t: dict[str, Any]) -> dict[str, Any]:
        return conn(
            vcenter,
            targets=[{"name": t["name"], "tenant": t["tenant"], "vlan": 3510, "portgroup": shared}],
            state="absent",
        )

    first = run_module(tmp_path, MODULE, absent(a))
    assert first.rc == 0 and first.result["changed"] is True
    assert first.result["actions"]["portgroups_removed"] == {}
    assert any("still used by t5delta-target-01" in w for w in first.result.get("warnings", []))
    assert vms(vsphere_si, "t5gamma") == {}
    assert list(vms(vsphere_si, "t5delta")) == ["t5delta-target-01"]
    assert shared in portgroups(vsphere_si) and shared in networks(vsphere_si)

    last = run_module(tmp_path, MODULE, absent(b))
    assert last.rc == 0 and last.result["changed"] is True
    assert sorted(last.result["actions"]["portgroups_removed"][shared]) == sorted(h.name for h in hosts(vsphere_si))
    assert shared not in portgroups(vsphere_si) and shared not in networks(vsphere_si)
    assert not {"t5gamma", "t5delta"} & set(tenant_folders(vsphere_si))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_bad_input_fails_before_any_change(tmp_path: Path, vcenter: Any, vsphere_si: Any) -> None:
    good = [target("t5eps", 1, 3520), target("t5eps", 2, 3520)]
    # A portgroup that already exists on one host with another VLAN than the tenant's.
    clash_host = hosts(vsphere_si)[1]
    clash_host.configManager.networkSystem.AddPortGroup(
        portgrp=vim.host.PortGroup.Specification(
            name="tenant-t5zeta-vlan3521", vlanId=99, vswitchName="vSwitch0", policy=vim.host.NetworkPolicy()
        )
    )
    before = (portgroups(vsphere_si), networks(vsphere_si), set(tenant_folders(vsphere_si)))
    cases = {
        "template": conn(vcenter, targets=good, template="no-such-template"),
        "vlan": conn(vcenter, targets=[target("t5eps", 1, 5000)]),
        "mac range": conn(vcenter, targets=[target("t5eps", 1, 3520, mgmt_mac="00:50:57:00:00:01")]),
        "mac twice": conn(vcenter, targets=[good[0], {**good[1], "tenant_mac": good[0]["mgmt_mac"]}]),
        "mac missing": conn(vcenter, targets=[{k: v for k, v in good[0].items() if k != "mgmt_mac"}]),
        "folder": conn(vcenter, targets=good, folder="no-such-folder"),
        "pool": conn(vcenter, targets=good, resource_pool="no-such-pool"),
        "vlan clash": conn(vcenter, targets=[target("t5zeta", 1, 3521)]),
        "unreachable": conn(vcenter, targets=good, port=free_port()),
    }
    play = [
        {
            "name": "bad input",
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [{"name": name, MODULE: args, "ignore_errors": True} for name, args in cases.items()],
        }
    ]
    path = tmp_path / "bad.yml"
    path.write_text(json.dumps(play))
    path.chmod(0o600)
    run = run_playbook(path, "-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable)
    results = dict(zip(cases, run.results, strict=True))
    mac = good[0]["mgmt_mac"]
    expected = {
        "template": "template 'no-such-template' not found in datacenter provider; existing: ",
        "vlan": "targets[0] (t5eps-target-01): vlan 5000 is outside 1-4094",
        "mac range": "mgmt_mac 00:50:57:00:00:01 is outside VMware's static MAC range",
        "mac twice": f"targets[1] (t5eps-target-02): tenant_mac {mac} is already the MAC of t5eps-target-01 mgmt_mac",
        "mac missing": "targets[0] (t5eps-target-01): mgmt_mac is required with state=present",
        "folder": "VM folder 'no-such-folder' not found in datacenter provider",
        "pool": "resource pool 'no-such-pool' not found in cluster production; existing: Resources, "
        "replication-targets",
        "vlan clash": f"portgroup tenant-t5zeta-vlan3521 on host {clash_host.name} has VLAN 99, "
        "the targets want VLAN 3521",
        "unreachable": f"cannot reach vCenter at {vcenter.hostname}",
    }
    for name, text in expected.items():
        assert results[name].get("failed") is True, (name, results[name])
        assert text in results[name]["msg"], (name, results[name]["msg"])
    # Nothing changed on the vCenter: no VM, folder or portgroup of these tenants appeared.
    assert (portgroups(vsphere_si), networks(vsphere_si), set(tenant_folders(vsphere_si))) == before
    assert vms(vsphere_si, "t5eps") == {} and vms(vsphere_si, "t5zeta") == {}
    clash_host.configManager.networkSystem.RemovePortGroup(pgName="tenant-t5zeta-vlan3521")

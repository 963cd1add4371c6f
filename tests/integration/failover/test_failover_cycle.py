"""Failover -> failback -> failover -> failback on the strict simulator, NICs compared to the start.

Each replica has two NICs on two networks of its target.  The strict simulator registers a VM from its
.vmx (NICs, MACs, UUID) and asks "moved or copied?" at its first power-on elsewhere.  After every
failover each VM is in production, powered on, with the same UUID and MACs and every NIC on the
destination portgroup; after every failback each NIC is back on the network it had on the target, with
the MAC it had at the start.  Then the preflight refuses a failback whose NICs cannot be placed, naming
the VM and the NIC.  (A NIC with no recorded network is refused too: tests/unit/.../test_failover_nics.py;
here the simulator cannot reconfigure a failed-over VM, its storage vMotion moving no files.)
"""

from __future__ import annotations

from typing import Any

import failoverlab as fl
import pytest
from pyVmomi import vim

pytestmark = pytest.mark.integration

NETWORKS = ("VM Network", "replica-lan")


def nic_view(vm: Any) -> list[tuple[str, str, str, str]]:
    """Each NIC as (label, MAC, address type, network), in device order."""
    return [
        (d.deviceInfo.label, d.macAddress.lower(), d.addressType, d.backing.deviceName)
        for d in vm.config.hardware.device
        if isinstance(d, vim.vm.device.VirtualEthernetCard)
    ]


def target_state(t: Any) -> dict[str, Any]:
    return {
        name: {"nics": nic_view(vm), "uuid": vm.config.uuid, "vmx": vm.config.files.vmPathName}
        for name, vm in fl.vms_of(t.target_si).items()
    }


def test_failover_failback_twice_leaves_nics_macs_and_networks_as_at_the_start(lab_tenant: Any) -> None:
    t = lab_tenant("cyc", vms=2, networks=NETWORKS)
    start = target_state(t)
    assert all([n[3] for n in s["nics"]] == list(NETWORKS) for s in start.values())
    pg = t.spec["portgroups"]["destinations"][str(t.spec["failover"]["destination_vlans"][0])]

    for cycle in (1, 2):
        rc, out = t.run()
        assert rc == 0 and out["status"] == "done", (cycle, out)
        assert t.placement() == {n: {"production"} for n in t.vms}
        for name, vm in t.production_vms().items():
            assert vm.runtime.powerState == "poweredOn" and vm.runtime.question is None
            assert vm.config.uuid == start[name]["uuid"]  # answered "moved"
            assert [(label, mac, net) for label, mac, _a, net in nic_view(vm)] == [
                (label, mac, pg) for label, mac, _a, _n in start[name]["nics"]
            ]
        rc, back = t.run(mode="failback")
        assert rc == 0 and back["status"] == "done", (cycle, back)
        network = next(s for s in back["plan"] if s["step"] == "network")
        assert network["act"] == t.vms
        assert t.placement() == {n: {"target"} for n in t.vms}
        assert target_state(t) == start, cycle
        assert t.production_vms() == {} and t.nfs_in_production() is None

    # A test failover after the cycles: the copies come up on the isolated network with new MACs.
    rc, test = t.run(mode="test")
    assert rc == 0, test
    copies = t.production_vms("test-failover")
    started_macs = {mac for s in start.values() for _l, mac, _a, _n in s["nics"]}
    for name, vm in copies.items():
        view = nic_view(vm)
        assert [label for label, *_rest in view] == [label for label, *_rest in start[name]["nics"]]
        assert {net for *_rest, net in view} == {f"tenant-{t.name}-isolated"}
        assert not {mac for _l, mac, _a, _n in view} & started_macs  # "copied": new generated MACs
        assert vm.config.uuid != start[name]["uuid"]
    again_rc, again = t.run(mode="test")
    assert again_rc == 0 and again["status"] == "nothing to do"
    text = "\n".join(again["summary"])
    assert "a test failover is already up" in text
    assert f"ansible-playbook playbooks/test_failover.yml -e tenant={t.name} -e cleanup=true" in text
    assert f"the last test of tenant {t.name}, run {test['run_id']}, ended done" in text
    assert f"report: {test['report_file']}" in text
    assert t.run(mode="cleanup")[0] == 0
    assert target_state(t) == start


def test_a_failback_whose_nics_cannot_be_placed_is_refused_naming_the_vm_and_nic(lab_tenant: Any) -> None:
    t = lab_tenant("nicref", vms=1, networks=NETWORKS)
    vm_name = t.vms[0]
    assert t.run()[0] == 0
    # The target lost a network the VM's second NIC came from.
    host = fl.esx_parts(t.target_si)[1]
    host.configManager.networkSystem.RemovePortGroup(pgName="replica-lan")
    rc, out = t.run(mode="failback")
    assert rc == 1 and out["msg"].startswith("refused before any change"), out
    assert f"{vm_name}: NIC 'Network adapter 2'" in out["msg"]
    assert "goes back to network replica-lan, which the replication target does not have" in out["msg"]
    assert t.placement() == {vm_name: {"production"}}

"""Isolation: a tenant's failover never reads or changes another tenant's objects.

Three tenants share the provider's production hosts: B is failed over (its VMs run there, its NFS
datastore is still mounted on a host as during a run), C has a test failover running (copies on its
isolated network). A then goes through failover, failback, test and cleanup with every byte of its
traffic to vCenter recorded by a TLS relay.  Checked: no request names or references B's or C's
objects (VMs, folders, pools, portgroups, NFS datastores, accounts, isolated networks) and no response
carries their names; B's and C's objects are exactly as before.  Then A and B run at the same time.

A response may carry an opaque *reference* to B's NFS datastore: with ``datastores`` not given, A
compares the references in the hosts' datastore lists to find the shared production datastores (the
simulator spells a NAS datastore's reference with its export path, ``192.168.50.10:/exports/...``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import failoverlab as fl
import pytest
from failoverlab import LabTenant
from pyVmomi import vim

from tenantry.lab import ensure_tls

pytestmark = pytest.mark.integration


def production_state(t: LabTenant) -> dict[str, Any]:
    """Everything of ``t`` in production, as comparable data, plus the moids that identify it."""
    content = t.vc_si.RetrieveContent()
    auth = content.authorizationManager
    state: dict[str, Any] = {"vms": {}, "moids": set()}
    for sub in ("", "test-failover"):
        folder = fl.tenant_folder(t.vc_si, t.spec, sub)
        if folder is None:
            continue
        state["moids"].add(folder._moId)
        for name, vm in fl.vms_of(t.vc_si, folder).items():
            if vm.parent != folder:
                continue
            state["moids"].add(vm._moId)
            state["vms"][f"{sub}/{name}"] = {
                "moid": vm._moId,
                "vmx": vm.config.files.vmPathName,
                "host": vm.runtime.host.name,
                "power": str(vm.runtime.powerState),
                "datastores": sorted(d.name for d in vm.datastore),
                "networks": sorted(n.name for n in vm.network),
                "tags": sorted((o.key, str(o.value)) for o in vm.config.extraConfig or []),
                "permissions": sorted((p.principal, p.roleId) for p in auth.RetrieveEntityPermissions(vm, False)),
            }
    pool = content.searchIndex.FindByInventoryPath(f"provider/host/production/Resources/tenant-{t.name}")
    if pool is not None:
        state["moids"].add(pool._moId)
        state["pool"] = (pool._moId, pool.config.memoryAllocation.limit)
    nfs = t.nfs_in_production()
    if nfs is not None:
        state["moids"].add(nfs._moId)
        state["nfs"] = sorted(m.key.name for m in nfs.host)
    hosts = content.searchIndex.FindByInventoryPath("provider/host/production").host
    state["portgroups"] = {
        h.name: sorted(p.spec.name for p in h.config.network.portgroup if t.name in p.spec.name) for h in hosts
    }
    state["vswitches"] = {
        h.name: sorted(v.name for v in h.config.network.vswitch if v.name == f"tenantry-iso-{t.spec['id']}")
        for h in hosts
    }
    dc = content.searchIndex.FindByInventoryPath("provider")
    for pg in [*t.spec["portgroups"]["destinations"].values(), f"tenant-{t.name}-isolated"]:
        network = content.searchIndex.FindChild(dc.networkFolder, pg)
        if network is not None:
            state["moids"].add(network._moId)
    return state


def names_of(t: LabTenant) -> list[bytes]:
    words = [
        *t.vms,
        f"nfs-{t.name}",
        f"tenant-{t.name}",  # pool, portgroups, isolated portgroup
        t.spec["production"]["account"],
        f"tenantry-iso-{t.spec['id']}",
        f"tenantry-test-{t.name}",
    ]
    return [w.encode() for w in words] + [b">%s<" % t.name.encode()]


def test_a_failover_never_touches_other_tenants(lab_tenant: Any, lab_state_dir: Path) -> None:
    a, b, c = lab_tenant("isoa", vms=3), lab_tenant("isob", vms=3), lab_tenant("isoc", vms=2)
    for t in (a, b, c):
        t.spec["production"]["account"] = f"{t.name}-ops@vsphere.local"
    assert b.run()[0] == 0  # B's VMs now run on the shared production hosts
    content = b.vc_si.RetrieveContent()
    host = content.searchIndex.FindByInventoryPath("provider/host/production").host[0]
    host.configManager.datastoreSystem.CreateNasDatastore(fl.nas_spec(b.spec))  # as in the middle of a run
    assert c.run(mode="test")[0] == 0  # C's copies and isolated network on a production host
    others = {t.name: (production_state(t), fl.target_snapshot(t.target_si)) for t in (b, c)}
    assert len(others[b.name][0]["vms"]) == 3 and len(others[c.name][0]["vms"]) == 2

    tls = ensure_tls(lab_state_dir)
    trace = fl.SoapTrace(a.vcenter, tls.cert_file, tls.key_file)
    a.vcenter = trace.endpoint  # type: ignore[assignment]
    try:
        for mode in ("failover", "failback", "test", "cleanup"):
            rc, out = a.run(mode=mode)
            assert rc == 0, (mode, out)
            assert out["changed"] is True
    finally:
        trace.close()
    requests, responses = trace.requests(), trace.responses()
    assert sum(map(len, requests)) > 10_000 and b"RegisterVM_Task" in b"".join(requests)

    for t in (b, c):
        state, target = others[t.name]
        assert production_state(t) == state, t.name
        assert fl.target_snapshot(t.target_si) == target, t.name
        for word in names_of(t):
            assert not any(word in r for r in requests), (t.name, word, "in a request")
            assert not any(word in r for r in responses), (t.name, word, "in a response")
        for moid in state["moids"]:
            assert not any(b">%s<" % moid.encode() in r for r in requests), (t.name, moid)

    # Two tenants' runs at the same time, on the same hosts.
    a.vcenter = b.vcenter
    host.configManager.datastoreSystem.RemoveDatastore(b.nfs_in_production())
    results: dict[str, Any] = {}

    def run(t: LabTenant, mode: str) -> None:
        results[t.name] = t.run(mode=mode)

    threads = [threading.Thread(target=run, args=(a, "failover")), threading.Thread(target=run, args=(b, "failback"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results[a.name][0] == 0 and results[b.name][0] == 0, results
    assert a.placement() == {n: {"production"} for n in a.vms}
    assert b.placement() == {n: {"target"} for n in b.vms}
    assert all(isinstance(vm, vim.VirtualMachine) for vm in a.production_vms().values())

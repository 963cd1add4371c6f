"""Benchmark: fail over one tenant's VMs (default 100) three ways against the simulator, in one run.

- ours: ``ansible-playbook playbooks/failover.yml`` (the role, the module, progress following);
- naive: ``tests/bench/failover/naive_failover.yml``, the same nine steps with community.vmware modules in
  per-VM loops (one module run per VM per step);
- lower bound: a plain pyVmomi script that issues every step's calls concurrently (the same fan-out as
  ours) and waits for each step's tasks together; no reads beyond the .vmx paths, no checks, no journal.

The simulators (production vCenter and three nested targets, one per contender) get a per-method latency
that models a vCenter (``--latency``); every task still completes inside the call that started it, so
what is measured is client round trips and their overlap.  Each contender fails over its own tenant of
the same size; the outcome of each is checked (VMs registered in production, NIC on the destination
portgroup, powered on, on production datastores, NFS datastore unmounted).

    .venv/bin/python tests/bench/bench_failover.py [--vms 100] [--naive-vms N] [--max-parallel 16]

Prints the three wall-clock times and the ratios (targets: naive/ours >= 10, ours/lower <= 1.5).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "src"), str(REPO / ".collections"), str(REPO / "tests" / "integration" / "failover")]

import failoverlab as fl  # noqa: E402
from pyVim.connect import Disconnect, SmartConnect  # noqa: E402
from pyVmomi import vim, vmodl  # noqa: E402

from tenantry.lab import Endpoint, Simulator, build  # noqa: E402

LATENCY = (
    "RegisterVM=200ms,UnregisterVM=50ms,ReconfigVM_Task=100ms,PowerOnVM_Task=150ms,RelocateVM_Task=200ms,"
    "SetEntityPermissions=50ms,CreateNasDatastore=200ms,RemoveDatastore=100ms,*=5ms"
)
DATASTORES = ["prod-ds-01", "prod-ds-02"]
HOST = "esx-prod-01.lab.local"


def connect(ep: Endpoint) -> Any:
    return SmartConnect(host=ep.hostname, port=ep.port, user=ep.username, pwd=ep.password, sslContext=ep.ssl_context())


def prepare(vc_si: Any, target_si: Any, spec: dict[str, Any], count: int) -> list[str]:
    names = [f"{spec['name']}-vm{i:03d}" for i in range(1, count + 1)]
    fl.build_target(target_si, spec, names, memory_mb=8, disk_kb=1024)
    fl.add_portgroups(vc_si, spec)
    content = vc_si.RetrieveContent()
    tenants = content.searchIndex.FindByInventoryPath("provider/vm/tenants")
    if tenants is None:
        tenants = content.searchIndex.FindByInventoryPath("provider/vm").CreateFolder("tenants")
    tenants.CreateFolder(spec["name"])  # folder and pool exist for every contender alike
    cluster = content.searchIndex.FindByInventoryPath("provider/host/production")
    allocation = vim.ResourceAllocationInfo(
        reservation=0, limit=-1, expandableReservation=True, shares=vim.SharesInfo(level="normal", shares=0)
    )
    cluster.resourcePool.CreateResourcePool(
        spec["production"]["resource_pool"],
        vim.ResourceConfigSpec(cpuAllocation=allocation, memoryAllocation=allocation),
    )
    return names


def verify(vc_si: Any, target_si: Any, spec: dict[str, Any], names: list[str], naive: bool = False) -> str:
    """'ok' when every VM is failed over as it should be, else what is wrong.

    ``naive``: community.vmware's vmware_vmotion calls RefreshStorageInfo after the move; the simulator,
    whose storage vMotion moves no file, then lists the NFS datastore again beside the production one
    and refuses the final unmount (a simulator gap, not the baseline's fault): accept that.
    """
    where = fl.placement(vc_si, target_si, spec, names)
    wrong = [n for n, s in where.items() if s != {"production"}]
    if wrong:
        return f"{len(wrong)} VMs not (only) in production, e.g. {wrong[0]}: {where[wrong[0]]}"
    pg = next(iter(spec["portgroups"]["destinations"].values()))
    folder = fl.tenant_folder(vc_si, spec)
    for name, vm in fl.vms_of(vc_si, folder).items():
        if vm.runtime.powerState != "poweredOn":
            return f"{name} is {vm.runtime.powerState}"
        if [n.name for n in vm.network] != [pg]:
            return f"{name} is on {[n.name for n in vm.network]}"
        stores = {d.name for d in vm.datastore}
        if not (stores & set(DATASTORES) if naive else stores <= set(DATASTORES)):
            return f"{name} is on {sorted(stores)}"
    if naive:
        return "ok (but for the unmount the simulator refuses, see verify())"
    content = vc_si.RetrieveContent()
    dc = content.searchIndex.FindByInventoryPath("provider")
    if content.searchIndex.FindChild(dc.datastoreFolder, spec["nfs"]["datastore"]) is not None:
        return "the NFS datastore is still mounted"
    return "ok"


# ------------------------------------------------------------------ lower bound
def wait_all(si: Any, tasks: list[Any]) -> None:
    """Wait for every task with one property collector (one filter, WaitForUpdatesEx until all ended)."""
    if not tasks:
        return
    pc = si.content.propertyCollector.CreatePropertyCollector()
    try:
        pq = vmodl.query.PropertyCollector
        pc.CreateFilter(
            pq.FilterSpec(
                objectSet=[pq.ObjectSpec(obj=t) for t in tasks],
                propSet=[pq.PropertySpec(type=vim.Task, pathSet=["info.state"])],
            ),
            True,
        )
        pending, version = {t._moId for t in tasks}, ""
        while pending:
            update = pc.WaitForUpdatesEx(version, pq.WaitOptions(maxWaitSeconds=30))
            if update is None:
                continue
            version = update.version
            for fs in update.filterSet or []:
                for obj in fs.objectSet or []:
                    for change in obj.changeSet or []:
                        if change.name == "info.state" and change.val in ("success", "error"):
                            pending.discard(obj.obj._moId)
    finally:
        pc.Destroy()


def lower_bound(vcenter: Endpoint, target: Endpoint, spec: dict[str, Any], names: list[str], fanout: int) -> float:
    """The nine steps with plain pyVmomi, every step's calls concurrent (``fanout`` threads)."""
    started = time.monotonic()
    vc, esx = connect(vcenter), connect(target)
    try:
        pool_threads = ThreadPoolExecutor(max_workers=fanout)
        c, t = vc.RetrieveContent(), esx.RetrieveContent()

        def each(fn: Any, items: list[Any]) -> list[Any]:
            return list(pool_threads.map(fn, items))

        # 1. read the VMs on the target and their .vmx paths and NICs (one bulk read)
        view = t.viewManager.CreateContainerView(t.rootFolder, [vim.VirtualMachine], True)
        pq = vmodl.query.PropertyCollector
        spec_read = pq.FilterSpec(
            objectSet=[
                pq.ObjectSpec(
                    obj=view,
                    skip=True,
                    selectSet=[pq.TraversalSpec(name="v", path="view", skip=False, type=vim.view.ContainerView)],
                )
            ],
            propSet=[
                pq.PropertySpec(
                    type=vim.VirtualMachine, pathSet=["name", "config.files.vmPathName", "config.hardware.device"]
                )
            ],
        )
        rows = {}
        for obj in t.propertyCollector.RetrieveContents([spec_read]):
            props = {p.name: p.val for p in obj.propSet}
            mac = next(
                d.macAddress
                for d in props["config.hardware.device"]
                if isinstance(d, vim.vm.device.VirtualEthernetCard)
            )
            rows[props["name"]] = (obj.obj, props["config.files.vmPathName"], mac)
        view.Destroy()
        # 2. unregister from the target
        each(lambda n: rows[n][0].UnregisterVM(), names)
        # 3. mount the NFS datastore on the production host
        dc = c.searchIndex.FindByInventoryPath("provider")
        host = c.searchIndex.FindByInventoryPath(f"provider/host/production/{HOST}")
        host.configManager.datastoreSystem.CreateNasDatastore(fl.nas_spec(spec))
        # 4. register in production
        folder = c.searchIndex.FindByInventoryPath(f"provider/vm/tenants/{spec['name']}")
        rpool = c.searchIndex.FindByInventoryPath(
            f"provider/host/production/Resources/{spec['production']['resource_pool']}"
        )
        tasks = each(
            lambda n: folder.RegisterVM_Task(path=rows[n][1], name=n, asTemplate=False, pool=rpool, host=host), names
        )
        wait_all(vc, tasks)
        vms = [task.info.result for task in tasks]
        # 5. NICs on the destination portgroup (added with the target's MAC: the simulator drops NICs)
        pg = next(iter(spec["portgroups"]["destinations"].values()))
        network = c.searchIndex.FindChild(dc.networkFolder, pg)

        def nic(pair: tuple[str, Any]) -> Any:
            name, vm = pair
            device = vim.vm.device.VirtualVmxnet3(
                key=-1,
                macAddress=rows[name][2],
                addressType="manual",
                backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName=pg, network=network),
            )
            return vm.ReconfigVM_Task(
                spec=vim.vm.ConfigSpec(deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="add", device=device)])
            )

        wait_all(vc, each(nic, list(zip(names, vms, strict=True))))
        # 6. permissions
        perm = vim.AuthorizationManager.Permission(principal="admin", group=False, roleId=-1, propagate=True)
        each(lambda vm: c.authorizationManager.SetEntityPermissions(entity=vm, permission=[perm]), vms)
        # 7. power on
        wait_all(vc, each(lambda vm: vm.PowerOnVM_Task(), vms))
        # 8. storage vMotion
        stores = [c.searchIndex.FindChild(dc.datastoreFolder, name) for name in DATASTORES]
        wait_all(
            vc,
            each(
                lambda iv: iv[1].RelocateVM_Task(spec=vim.vm.RelocateSpec(datastore=stores[iv[0] % len(stores)])),
                list(enumerate(vms)),
            ),
        )
        # 9. unmount
        nfs = c.searchIndex.FindChild(dc.datastoreFolder, spec["nfs"]["datastore"])
        host.configManager.datastoreSystem.RemoveDatastore(nfs)
        pool_threads.shutdown()
    finally:
        Disconnect(vc)
        Disconnect(esx)
    return time.monotonic() - started


# --------------------------------------------------------------------- playbooks
def ansible_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(REPO / ".collections"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORKS="5",
    )
    env.update(extra)
    return env


def run(cmd: list[str], env: dict[str, str], log: Path) -> tuple[float, int]:
    started = time.monotonic()
    with log.open("w") as out:
        code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO).returncode
    return time.monotonic() - started, code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vms", type=int, default=100)
    parser.add_argument("--naive-vms", type=int, help="VMs for the naive playbook (default: --vms)")
    parser.add_argument("--max-parallel", type=int, default=16, help="fan-out of ours and of the lower bound")
    parser.add_argument("--latency", default=LATENCY)
    parser.add_argument("--skip-naive", action="store_true")
    args = parser.parse_args()
    naive_vms = args.naive_vms or args.vms
    bin_dir = Path(sys.executable).parent

    state = Path(tempfile.mkdtemp(prefix="bench-failover-"))
    sims: list[Simulator] = []

    def start(mode: str, name: str) -> Endpoint:
        sim = Simulator(build())
        sims.append(sim)
        return sim.start(mode, state, name, latency=args.latency)  # type: ignore[arg-type]

    try:
        t0 = time.monotonic()
        vcenter = start("vcenter", "vcenter")
        vc_si = connect(vcenter)
        contenders = {}
        for index, (who, count) in enumerate((("ours", args.vms), ("lower", args.vms), ("naive", naive_vms)), 1):
            if who == "naive" and args.skip_naive:
                continue
            name = f"bench-{who}"
            data = fl.tenant_data(name, 900 + index, 3900 + index, [3950 + index])
            spec = fl.tenant_spec(name, 900 + index, 3900 + index, [3950 + index])
            target = start("esx", name)
            target_si = connect(target)
            names = prepare(vc_si, target_si, spec, count)
            contenders[who] = (data, spec, target, target_si, names)
        print(f"latency model: {args.latency}")
        print(f"setup (not timed): 4 simulators, {args.vms} VMs per tenant built in {time.monotonic() - t0:.1f} s")
        print(f"fan-out (ours and lower bound): {args.max_parallel}")
        results: dict[str, tuple[float, str, int]] = {}

        # ours
        data, spec, target, target_si, names = contenders["ours"]
        inventory = fl.write_inventory(state / "inventory", vcenter, [(data, target)])
        seconds, code = run(
            [
                str(bin_dir / "ansible-playbook"),
                str(REPO / "playbooks" / "failover.yml"),
                "-i",
                str(inventory),
                "-e",
                f"tenant={spec['name']}",
                "-e",
                f"failover_max_parallel={args.max_parallel}",
                "-e",
                f"failover_journal_dir={state}/journal",
                "-e",
                f"failover_report_dir={state}/reports",
            ],
            ansible_env(),
            state / "ours.log",
        )
        results["ours"] = (seconds, verify(vc_si, target_si, spec, names), len(names))
        print(f"ours:        {seconds:7.1f} s  ({results['ours'][1]}; rc {code}; log {state / 'ours.log'})")

        # lower bound
        _data, spec, target, target_si, names = contenders["lower"]
        seconds = lower_bound(vcenter, target, spec, names, args.max_parallel)
        results["lower"] = (seconds, verify(vc_si, target_si, spec, names), len(names))
        print(f"lower bound: {seconds:7.1f} s  ({results['lower'][1]})")

        # naive
        if "naive" in contenders:
            _data, spec, target, target_si, names = contenders["naive"]
            variables = {
                "bench_tenant": spec["name"],
                "bench_host": HOST,
                "bench_target_esxi": fl.esx_parts(target_si)[1].name,
                "bench_datastores": DATASTORES,
                "bench_portgroup": next(iter(spec["portgroups"]["destinations"].values())),
                "bench_nfs_datastore": spec["nfs"]["datastore"],
                "bench_nfs_server": spec["nfs"]["server"],
                "bench_nfs_path": spec["nfs"]["path"],
                **{f"bench_target_{k}": v for k, v in fl.connection(target).items() if k != "ca_file"},
                **{f"bench_vcenter_{k}": v for k, v in fl.connection(vcenter).items() if k != "ca_file"},
            }
            vars_file = state / "naive-vars.json"
            vars_file.write_text(json.dumps(variables))
            vars_file.chmod(0o600)
            seconds, code = run(
                [
                    str(bin_dir / "ansible-playbook"),
                    str(REPO / "tests/bench/failover/naive_failover.yml"),
                    "-i",
                    "localhost,",
                    "-e",
                    f"@{vars_file}",
                ],
                # community.vmware has no CA-file option; pyVmomi's default context reads SSL_CERT_FILE.
                ansible_env(SSL_CERT_FILE=str(vcenter.ca_file)),
                state / "naive.log",
            )
            results["naive"] = (seconds, verify(vc_si, target_si, spec, names, naive=True), len(names))
            print(f"naive:       {seconds:7.1f} s  ({results['naive'][1]}; rc {code}; log {state / 'naive.log'})")

        ours, lower = results["ours"][0], results["lower"][0]
        print()
        print(f"ours / lower bound = {ours / lower:.2f}  (target <= 1.5)")
        if "naive" in results:
            naive, n = results["naive"][0], results["naive"][2]
            scaled = naive * args.vms / n
            note = "" if n == args.vms else f" (naive measured on {n} VMs, scaled x{args.vms / n:.1f})"
            print(f"naive / ours       = {scaled / ours:.1f}  (target >= 10){note}")
        ok = all(r[1].startswith("ok") for r in results.values())
        return 0 if ok else 1
    finally:
        for sim in sims:
            sim.stop()


if __name__ == "__main__":
    sys.exit(main())

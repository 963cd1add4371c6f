"""Benchmark: stamp out nested ESXi targets on a vCenter with realistic per-method latency.

Our role (``tenantry.msp.nested_esxi_target``, vCenter stage: ONE ``nested_target`` call with
concurrent tasks) against a naive playbook doing the same with community.vmware modules in
per-target loops (``tests/bench/stamp/naive.yml``), in the same run, each on a fresh simulator
with the same ``-latency`` model.  Prints both times, the ratio (target >= 5x) and the time of a
second, no-change run of the role.  Not collected by pytest; run it alone on an idle machine:

    .venv/bin/python tests/bench/bench_stamp_targets.py [--tenants 10] [--per-tenant 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/: the `support` helpers

from support import REPO, PlaybookRun, run_playbook  # noqa: E402

from tenantry.lab import Endpoint, Simulator, build  # noqa: E402

# vCenter answers most calls in ~10 ms and spends 100-300 ms in the calls that start real work.
LATENCY = (
    "CloneVM_Task=300ms,ReconfigVM_Task=150ms,PowerOnVM_Task=150ms,PowerOffVM_Task=150ms,Destroy_Task=150ms,"
    "AddPortGroup=100ms,CreateFolder=50ms,*=10ms"
)


def tenant_file(index: int, per_tenant: int) -> dict[str, Any]:
    net = f"10.240.{index}"
    return {
        "name": f"bench{index:02d}",
        "id": index,
        "vlan": 3700 + index,
        "network": {"cidr": f"{net}.0/24", "gateway": f"{net}.1", "pool": f"{net}.100-{net}.149"},
        "targets": {"count": per_tenant, "cpus": 4, "memory_mb": 8192, "disk_gb": 16},
        "nfs": {"server": "192.168.50.10", "path": f"/exports/tenants/bench{index:02d}"},
        "production": {"account": f"bench{index:02d}-ops@vsphere.local"},
    }


def inventory(base: Path, vcenter: Endpoint, tenants: int, per_tenant: int) -> Path:
    inv = base / "inventory"
    (inv / "tenants").mkdir(parents=True)
    (inv / "group_vars").mkdir()
    (inv / "tenants.tenantry.yaml").write_text(
        yaml.safe_dump({"plugin": "tenantry.msp.tenants", "tenants_dir": "tenants", "management_pool": "10.0.16.0/20"})
    )
    for i in range(1, tenants + 1):
        (inv / "tenants" / f"bench{i:02d}.yml").write_text(yaml.safe_dump(tenant_file(i, per_tenant)))
    secrets = inv / "group_vars" / "all.yml"
    secrets.write_text(
        yaml.safe_dump(
            {
                "tenantry_vcenter_hostname": vcenter.hostname,
                "tenantry_vcenter_port": vcenter.port,
                "tenantry_vcenter_username": vcenter.username,
                "tenantry_vcenter_password": vcenter.password,
                "tenantry_vcenter_ca_file": str(vcenter.ca_file),
                "ansible_python_interpreter": sys.executable,
            }
        )
    )
    secrets.chmod(0o600)
    return inv


def play(playbook: str, inv: Path, vcenter: Endpoint, *extra: str) -> tuple[float, PlaybookRun]:
    # community.vmware verifies certificates against the default store: point it at the lab CA.
    env = {"SSL_CERT_FILE": str(vcenter.ca_file), "REQUESTS_CA_BUNDLE": str(vcenter.ca_file)}
    started = time.monotonic()
    run = run_playbook(HERE / "stamp" / playbook, "-i", str(inv), "--forks", "10", *extra, env=env, timeout=3600)
    elapsed = time.monotonic() - started
    if run.rc != 0:
        failed = [r.get("msg") for r in run.results if r.get("failed")]
        failed += [i.get("msg") for r in run.results for i in r.get("results", []) if i.get("failed")]
        raise SystemExit(f"{playbook} failed (rc {run.rc}): {failed[:3]}\n{run.stderr[-2000:]}")
    return elapsed, run


def connect(vcenter: Endpoint) -> Any:
    from pyVim.connect import SmartConnect

    return SmartConnect(
        host=vcenter.hostname,
        port=vcenter.port,
        user=vcenter.username,
        pwd=vcenter.password,
        sslContext=vcenter.ssl_context(),
    )


def template_nic_label(vcenter: Endpoint) -> str:
    """The label of the template's vNIC 0 ("Network adapter 1" on vSphere), which the naive playbook edits."""
    from pyVim.connect import Disconnect
    from pyVmomi import vim

    si = connect(vcenter)
    try:
        template = si.RetrieveContent().searchIndex.FindByInventoryPath("provider/vm/nested-esxi-template")
        nic = next(d for d in template.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard))
        return str(nic.deviceInfo.label)
    finally:
        Disconnect(si)


def read_back(vcenter: Endpoint) -> dict[str, int]:
    """What is on the vCenter: targets, how many are complete (and what the others miss), portgroups on hosts."""
    from pyVim.connect import Disconnect
    from pyVmomi import vim

    si = connect(vcenter)
    try:
        content = si.RetrieveContent()
        view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
        vms = [vm for vm in view.view if vm.name.startswith("bench")]
        view.Destroy()
        complete = 0
        missing: dict[str, int] = {}
        for vm in vms:
            nics = [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)]
            wrong = [
                what
                for what, ok in (
                    ("2 vNICs", len(nics) == 2),
                    ("static MACs", all(n.addressType == "manual" for n in nics)),
                    ("nested HV", bool(vm.config.nestedHVEnabled)),
                    ("memory", vm.config.hardware.memoryMB == 8192),
                    ("powered on", vm.runtime.powerState == "poweredOn"),
                )
                if not ok
            ]
            complete += not wrong
            for what in wrong:
                missing[what] = missing.get(what, 0) + 1
        cluster = content.searchIndex.FindByInventoryPath("provider/host/production")
        pgs = sum(1 for h in cluster.host for pg in h.config.network.portgroup if pg.spec.name.startswith("tenant-"))
        return {
            "targets": len(vms),
            "complete": complete,
            "portgroups": pgs,
            **{"not " + k: v for k, v in missing.items()},
        }
    finally:
        Disconnect(si)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--per-tenant", type=int, default=5)
    parser.add_argument("--latency", default=LATENCY)
    args = parser.parse_args()
    os.environ.setdefault("ANSIBLE_CONFIG", str(REPO / "ansible.cfg"))
    binary = build()
    total = args.tenants * args.per_tenant
    print(f"{total} nested targets for {args.tenants} tenants; latency {args.latency}")

    figures: dict[str, float] = {}
    checks: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-stamp-") as tmp:
        for name, playbook in (("role", "role.yml"), ("naive", "naive.yml")):
            base = Path(tmp) / name
            base.mkdir()
            with Simulator(binary) as sim:
                vcenter = sim.start("vcenter", base / "state", "vcenter", latency=args.latency)
                inv = inventory(base, vcenter, args.tenants, args.per_tenant)
                extra = [] if name == "role" else ["-e", "bench_nic0_label=" + template_nic_label(vcenter)]
                figures[name], _ = play(playbook, inv, vcenter, *extra)
                checks[name] = read_back(vcenter)
                if name == "role":
                    figures["role again"], again = play(playbook, inv, vcenter)
                    changed = sum(1 for r in again.results if r.get("changed"))
                    if changed:
                        raise SystemExit(f"the second run of the role changed {changed} things")
            print(f"  {name:<6} {figures[name]:7.1f} s   read back: {checks[name]}")

    ratio = figures["naive"] / figures["role"]
    print()
    print(f"our role (one nested_target call, concurrent tasks): {figures['role']:7.1f} s")
    print(f"naive community.vmware per-target loops:            {figures['naive']:7.1f} s")
    print(f"ratio naive / role:                                 {ratio:7.1f}x  (target >= 5x)")
    print(f"second run of the role, nothing to change:          {figures['role again']:7.1f} s  (changed=0)")


if __name__ == "__main__":
    main()

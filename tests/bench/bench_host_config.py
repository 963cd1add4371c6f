"""Benchmark: configure nested ESXi targets with nested_host vs the equivalent community.vmware modules.

Each nested target is its own ESX-mode simulator (as in the role tests).  ``host_config/ours.yml`` runs
``tenantry.msp.nested_host`` once per target (one module start, one login, concurrent calls);
``host_config/community.yml`` does the same configuration with community.vmware modules (advanced
setting, vSwitch, portgroup, VMkernel NIC, NFS datastore, role, account, three permissions, two
services: 12 module runs and as many logins per target).  Both run on fresh simulators with the same
``-latency`` model and ``--forks``, in the same run; the end states are read back and compared.  Prints
both times and the ratio.  Not collected by pytest; run it alone on an idle machine:

    .venv/bin/python tests/bench/bench_host_config.py [--targets 10] [--latency '*=10ms']
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/: the `support` helpers

from support import REPO, run_playbook  # noqa: E402

from tenantry.lab import Endpoint, Simulator, build  # noqa: E402

PRIVILEGES = [
    "Datastore.AllocateSpace",
    "Datastore.Browse",
    "Datastore.FileManagement",
    "Resource.AssignVMToPool",
    "VirtualMachine.Interact.PowerOff",
    "VirtualMachine.Interact.PowerOn",
    "VirtualMachine.Interact.Reset",
    "VirtualMachine.Interact.Suspend",
    "VirtualMachine.Inventory.Register",
    "VirtualMachine.Inventory.Unregister",
]


def inventory(base: Path, targets: list[Endpoint]) -> Path:
    hosts = {
        f"bench{i:02d}": {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "api_hostname": ep.hostname,
            "api_port": ep.port,
            "api_username": ep.username,
            "api_password": ep.password,
            "api_ca_file": str(ep.ca_file),
            "esxi_name": "localhost.localdomain",
            "tenant_ip": f"10.241.{i}.100",
            "tenant_password": "Bench-Tenant-7f3a",
            "privileges": PRIVILEGES,
        }
        for i, ep in enumerate(targets, start=1)
    }
    path = base / "inventory.yml"
    path.write_text(yaml.safe_dump({"all": {"children": {"targets": {"hosts": hosts}}}}))
    path.chmod(0o600)
    return path


def read_back(ep: Endpoint) -> tuple[Any, ...]:
    """The parts both playbooks set, as plain data."""
    from pyVim.connect import Disconnect, SmartConnect

    si = SmartConnect(host=ep.hostname, port=ep.port, user=ep.username, pwd=ep.password, sslContext=ep.ssl_context())
    try:
        content = si.RetrieveContent()
        host = content.rootFolder.childEntity[0].hostFolder.childEntity[0].host[0]
        net = host.config.network
        role = next((r for r in content.authorizationManager.roleList if r.name == "tenantry-tenant"), None)
        perms = [p for p in content.authorizationManager.RetrieveAllPermissions() if p.principal.startswith("tenant-")]
        return (
            host.configManager.advancedOption.QueryOptions("Net.FollowHardwareMac")[0].value,
            sorted(v.spec.ip.ipAddress for v in net.vnic if v.portgroup == "tenant"),
            sorted(d.name for d in host.datastore if d.name.startswith("nfs-")),
            sorted(role.privilege) if role else None,
            len(perms),
            {s.key: (s.running, s.policy) for s in host.config.service.service if s.key in ("TSM", "TSM-SSH")},
        )
    finally:
        Disconnect(si)


def bench(binary: Path, base: Path, playbook: str, targets: int, latency: str, forks: int) -> tuple[float, list[Any]]:
    with ExitStack() as stack:
        eps = []
        for i in range(1, targets + 1):
            sim = stack.enter_context(Simulator(binary))
            eps.append(sim.start("esx", base / "state", f"esx-bench{i:02d}", latency=latency))
        inv = inventory(base, eps)
        started = time.monotonic()
        run = run_playbook(HERE / "host_config" / playbook, "-i", str(inv), "--forks", str(forks), timeout=3600)
        elapsed = time.monotonic() - started
        if run.rc != 0:
            failed = [r.get("msg") for r in run.results if r.get("failed")]
            failed += [i.get("msg") for r in run.results for i in r.get("results", []) if i.get("failed")]
            raise SystemExit(f"{playbook} failed (rc {run.rc}): {failed[:3]}\n{run.stderr[-2000:]}")
        return elapsed, [read_back(ep) for ep in eps]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=10)
    parser.add_argument("--latency", default="*=10ms", help="per-method delay of each simulated ESXi")
    parser.add_argument("--forks", type=int, default=10)
    args = parser.parse_args()
    os.environ.setdefault("ANSIBLE_CONFIG", str(REPO / "ansible.cfg"))
    binary = build()
    print(f"{args.targets} nested targets, one simulated ESXi each; latency {args.latency}; forks {args.forks}")
    figures: dict[str, float] = {}
    states: dict[str, list[Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-host-") as tmp:
        for name, playbook in (("nested_host", "ours.yml"), ("community", "community.yml")):
            base = Path(tmp) / name
            base.mkdir()
            figures[name], states[name] = bench(binary, base, playbook, args.targets, args.latency, args.forks)
            print(f"  {name:<11} {figures[name]:7.1f} s   read back (first target): {states[name][0]}")
    if states["nested_host"] != states["community"]:
        raise SystemExit("the two end states differ; the comparison is not fair")
    ratio = figures["community"] / figures["nested_host"]
    print()
    print(f"nested_host (1 module run, 1 login per target):               {figures['nested_host']:7.1f} s")
    print(f"community.vmware (12 module runs, 12 logins per target):      {figures['community']:7.1f} s")
    print(f"ratio community / nested_host:                                {ratio:7.1f}x  (same end state)")


if __name__ == "__main__":
    main()

"""An audit of a lab's provider vCenter, independent of the collection (pyVmomi only).

    python tests/support/lab_audit.py --state-dir .lab/instances/e2e/state --tenants inventories/lab/tenants

Reads the endpoints ``python -m tenantry.lab`` recorded (vcenter.json, esx/*.json) and checks, as a vSphere
engineer would after a lab run:

* no ``.vmx`` is registered twice (in vCenter, or in vCenter and on a nested target at once);
* no MAC address is carried by two NICs of vCenter's VMs;
* no NIC with a manual MAC outside 00:50:56:00:00:00-00:50:56:3F:FF:FF (vCenter refuses to power it on);
* no tenant NFS datastore (a tenant file's nfs.server and nfs.path) is left mounted on a production host
  when no VM registered in vCenter has files on it.

Prints every finding and a summary line; exit status 1 when there is a finding, 2 when it cannot audit.
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

_MANUAL_LOW = 0x005056000000
_MANUAL_HIGH = 0x0050563FFFFF


def _connect(endpoint_file: Path) -> Any:
    data = json.loads(endpoint_file.read_text())
    context = ssl.create_default_context(cafile=data["ca_file"])
    return SmartConnect(
        host=data["hostname"], port=int(data["port"]), user=data["username"], pwd=data["password"], sslContext=context
    )


def _objects(si: Any, kind: Any) -> Iterator[Any]:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [kind], True)
    try:
        yield from view.view
    finally:
        view.Destroy()


def _datastore_key(ds: Any) -> str:
    """The same NFS export has the same key on every host and every site (its name may differ)."""
    info = ds.info
    nas = getattr(info, "nas", None)
    if nas is not None:
        return f"nfs://{nas.remoteHost}{nas.remotePath.rstrip('/')}"
    return f"ds:{ds.name}"


def _vmx_key(vm: Any, datastores: dict[str, str]) -> str | None:
    path = vm.config.files.vmPathName if vm.config and vm.config.files else None
    if not path or not path.startswith("["):
        return path
    name, _, rest = path[1:].partition("] ")
    return f"{datastores.get(name, 'ds:' + name)}/{rest}"


def _inventory(si: Any) -> tuple[list[Any], dict[str, str]]:
    datastores = {ds.name: _datastore_key(ds) for ds in _objects(si, vim.Datastore)}
    return list(_objects(si, vim.VirtualMachine)), datastores


def audit(state_dir: Path, tenants_dir: Path) -> list[str]:
    findings: list[str] = []
    si = _connect(state_dir / "vcenter.json")
    try:
        vms, datastores = _inventory(si)
        registered: dict[str, list[str]] = defaultdict(list)
        macs: dict[str, list[str]] = defaultdict(list)
        for vm in vms:
            key = _vmx_key(vm, datastores)
            if key:
                registered[key].append(f"vCenter:{vm.name}")
            for dev in vm.config.hardware.device if vm.config else []:
                if not isinstance(dev, vim.vm.device.VirtualEthernetCard) or not dev.macAddress:
                    continue
                mac = dev.macAddress.lower()
                macs[mac].append(f"{vm.name}/{dev.deviceInfo.label if dev.deviceInfo else dev.key}")
                if (dev.addressType or "").lower() == "manual":
                    value = int(mac.replace(":", ""), 16)
                    if not _MANUAL_LOW <= value <= _MANUAL_HIGH:
                        findings.append(
                            f"manual MAC outside 00:50:56:00:00:00-00:50:56:3F:FF:FF: {mac} on {vm.name} "
                            f"({dev.deviceInfo.label if dev.deviceInfo else dev.key})"
                        )
        findings += [
            f"MAC {mac} on {len(nics)} NICs: {', '.join(sorted(nics))}" for mac, nics in macs.items() if len(nics) > 1
        ]

        # Tenant NFS datastores still mounted in production with no VM of vCenter on them.
        exports = {}
        for path in sorted(tenants_dir.glob("*.yml")):
            spec = yaml.safe_load(path.read_text()) or {}
            nfs = spec.get("nfs") or {}
            if nfs.get("server") and nfs.get("path"):
                exports[f"nfs://{nfs['server']}{str(nfs['path']).rstrip('/')}"] = spec.get("name", path.stem)
        for ds in _objects(si, vim.Datastore):
            tenant = exports.get(_datastore_key(ds))
            if tenant is None:
                continue
            hosts = [m.key.name for m in ds.host or [] if m.mountInfo is None or m.mountInfo.mounted is not False]
            if hosts and not ds.vm:
                findings.append(f"tenant {tenant}'s NFS datastore {ds.name} left mounted on {', '.join(sorted(hosts))}")
    finally:
        Disconnect(si)

    for endpoint_file in sorted((state_dir / "esx").glob("*.json")):
        si = _connect(endpoint_file)
        try:
            vms, datastores = _inventory(si)
            for vm in vms:
                key = _vmx_key(vm, datastores)
                if key:
                    registered[key].append(f"{endpoint_file.stem}:{vm.name}")
        finally:
            Disconnect(si)
    findings += [f".vmx {key} registered {len(where)} times: {', '.join(sorted(where))}"
                 for key, where in registered.items() if len(where) > 1]  # fmt: skip
    return findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, required=True, help="the lab instance's state directory")
    parser.add_argument("--tenants", type=Path, required=True, help="the inventory's tenants/ directory")
    args = parser.parse_args(argv)
    try:
        findings = audit(args.state_dir, args.tenants)
    except (OSError, ValueError, KeyError, vim.fault.VimFault) as exc:
        print(f"audit: cannot audit: {exc}", file=sys.stderr)
        return 2
    for finding in findings:
        print(f"audit: FINDING: {finding}")
    print(f"audit: {len(findings)} finding(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())

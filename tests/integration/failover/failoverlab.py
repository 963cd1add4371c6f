"""Build a tenant's replication state directly with pyVmomi (no dependency on the stamping roles).

- ``tenant_spec(...)``: a tenant file, normalised by the same validator the inventory plugin uses.
- ``build_target(si, spec, vms)``: on an ESX-mode simulator (a nested target), mount the tenant NFS
  datastore and create the tenant's VMs on it, powered off, each with a NIC on the replication network.
- ``add_portgroups(si, spec)``: the tenant's destination VLAN portgroups on every production host.
- ``placement(...)``: where each VM is registered now (target, production, both or nowhere).
- ``module_args(...)``: connection arguments for ``tenantry.msp.failover``.

Every simulator of a pytest session (and of a benchmark) shares one ``-nfs-root``, so a NAS datastore
mounted with the same export in an ESX instance and in the vCenter instance sees the same files.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyVmomi import vim, vmodl

from ansible_collections.tenantry.msp.plugins.module_utils._tenant_model import validate_tenant
from tenantry.lab import Endpoint


def tenant_data(
    name: str,
    tenant_id: int,
    vlan: int,
    destination_vlans: Sequence[int] = (),
    account: str = "admin",
    boot_order: Sequence[dict[str, Any]] = (),
    **production: Any,
) -> dict[str, Any]:
    """A tenant file's content (one target)."""
    octet = tenant_id % 200 + 20
    data = {
        "name": name,
        "id": tenant_id,
        "vlan": vlan,
        "network": {
            "cidr": f"10.{octet}.0.0/24",
            "gateway": f"10.{octet}.0.1",
            "pool": f"10.{octet}.0.100-10.{octet}.0.149",
        },
        "targets": {"count": 1},
        "nfs": {"server": "192.168.50.10", "path": f"/exports/tenants/{name}"},
        "production": {"account": account, **production},
        "failover": {
            "destination_vlans": list(destination_vlans or [vlan + 100]),
            "boot_order": list(boot_order),
        },
    }
    return data


def tenant_spec(name: str, tenant_id: int, vlan: int, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """A validated, normalised tenant (what ``tenantry_tenant_spec`` holds)."""
    return validate_tenant(tenant_data(name, tenant_id, vlan, *args, **kwargs), f"{name}.yml")


def write_inventory(folder: Path, vcenter: Any, tenants: Sequence[tuple[dict[str, Any], Any]]) -> Path:
    """An inventory like inventories/lab: the tenants plugin, one file per tenant, endpoints as variables.

    ``tenants`` holds (tenant data, endpoint of its target 01).
    """
    (folder / "tenants").mkdir(parents=True, exist_ok=True)
    (folder / "group_vars").mkdir(exist_ok=True)
    (folder / "host_vars").mkdir(exist_ok=True)
    (folder / "tenants.tenantry.yaml").write_text(
        "plugin: tenantry.msp.tenants\ntenants_dir: tenants\nmanagement_pool: 172.16.0.0/12\n"
    )
    group_vars = {f"tenantry_vcenter_{k}": v for k, v in connection(vcenter).items()}
    (folder / "group_vars" / "all.yml").write_text(json.dumps(group_vars))
    for data, endpoint in tenants:
        (folder / "tenants" / f"{data['name']}.yml").write_text(json.dumps(data))
        host_vars = {f"tenantry_target_api_{k}": v for k, v in connection(endpoint).items()}
        (folder / "host_vars" / f"{data['name']}-target-01.yml").write_text(json.dumps(host_vars))
    for path in folder.rglob("*.yml"):
        path.chmod(0o600)
    return folder


def content(si: Any) -> Any:
    return si.RetrieveContent()


def wait(si: Any, tasks: Iterable[Any]) -> list[Any]:
    """Wait for tasks with one property collector (as the code under test does)."""
    tasks = list(tasks)
    pc = content(si).propertyCollector
    results = []
    for task in tasks:
        while True:
            spec = vmodl.query.PropertyCollector.FilterSpec(
                objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=task)],
                propSet=[
                    vmodl.query.PropertyCollector.PropertySpec(
                        type=vim.Task, pathSet=["info.state", "info.error", "info.result"]
                    )
                ],
            )
            props = {p.name: p.val for p in pc.RetrieveContents([spec])[0].propSet}
            if props.get("info.state") == "success":
                results.append(props.get("info.result"))
                break
            if props.get("info.state") == "error":
                raise RuntimeError(props.get("info.error"))
    return results


def esx_parts(si: Any) -> tuple[Any, Any, Any, Any]:
    """(datacenter, host, root pool, vm folder) of an ESX-mode instance."""
    dc = content(si).rootFolder.childEntity[0]
    compute = dc.hostFolder.childEntity[0]
    return dc, compute.host[0], compute.resourcePool, dc.vmFolder


def nas_spec(spec: dict[str, Any]) -> Any:
    return vim.host.NasVolume.Specification(
        remoteHost=spec["nfs"]["server"],
        remotePath=spec["nfs"]["path"],
        localPath=spec["nfs"]["datastore"],
        accessMode="readWrite",
        type="NFS",
    )


def build_target(
    si: Any,
    spec: dict[str, Any],
    vms: Sequence[str],
    memory_mb: int = 16,
    disk_kb: int = 64 * 1024,
    workers: int = 16,
) -> dict[str, str]:
    """The tenant NFS datastore on the target and ``vms`` on it (powered off); returns {vm: vmx path}."""
    _dc, host, pool, folder = esx_parts(si)
    datastore = spec["nfs"]["datastore"]
    if datastore not in [d.name for d in host.datastore]:
        host.configManager.datastoreSystem.CreateNasDatastore(nas_spec(spec))
    network = "VM Network"

    def create(name: str) -> Any:
        nic = vim.vm.device.VirtualDeviceSpec(
            operation="add",
            device=vim.vm.device.VirtualVmxnet3(
                key=-1,
                backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName=network),
                addressType="generated",
            ),
        )
        scsi = vim.vm.device.VirtualDeviceSpec(
            operation="add", device=vim.vm.device.ParaVirtualSCSIController(key=-2, busNumber=0, sharedBus="noSharing")
        )
        disk = vim.vm.device.VirtualDeviceSpec(
            operation="add",
            fileOperation="create",
            device=vim.vm.device.VirtualDisk(
                key=-3,
                controllerKey=-2,
                unitNumber=0,
                capacityInKB=disk_kb,
                backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(diskMode="persistent", fileName=f"[{datastore}]"),
            ),
        )
        config = vim.vm.ConfigSpec(
            name=name,
            memoryMB=memory_mb,
            numCPUs=1,
            guestId="otherGuest64",
            files=vim.vm.FileInfo(vmPathName=f"[{datastore}]"),
            deviceChange=[nic, scsi, disk],
        )
        return folder.CreateVM_Task(config, pool, host)

    with ThreadPoolExecutor(max_workers=workers) as threads:
        tasks = list(threads.map(create, vms))
    created = wait(si, tasks)
    return {vm.name: vm.config.files.vmPathName for vm in created}


def add_portgroups(si: Any, spec: dict[str, Any], names: Sequence[str] | None = None) -> None:
    """The tenant's destination portgroups on every production host (what the tenant role creates)."""
    view = content(si).viewManager.CreateContainerView(content(si).rootFolder, [vim.HostSystem], True)
    try:
        hosts = list(view.view)
    finally:
        view.Destroy()
    vlans = {int(v): pg for v, pg in spec["portgroups"]["destinations"].items()}
    for host in hosts:
        existing = {pg.spec.name for pg in host.config.network.portgroup}
        for vlan, pg in vlans.items():
            if (names is None or pg in names) and pg not in existing:
                host.configManager.networkSystem.AddPortGroup(
                    portgrp=vim.host.PortGroup.Specification(
                        name=pg, vlanId=vlan, vswitchName="vSwitch0", policy=vim.host.NetworkPolicy()
                    )
                )


def vms_of(si: Any, root: Any = None) -> dict[str, Any]:
    c = content(si)
    if root is None:
        root = c.rootFolder
    view = c.viewManager.CreateContainerView(root, [vim.VirtualMachine], True)
    try:
        return {vm.name: vm for vm in view.view}
    finally:
        view.Destroy()


def tenant_folder(vc_si: Any, spec: dict[str, Any], sub: str = "") -> Any:
    path = "provider/vm/" + spec["production"]["folder"] + (("/" + sub) if sub else "")
    return content(vc_si).searchIndex.FindByInventoryPath(path)


def placement(vc_si: Any, target_si: Any, spec: dict[str, Any], names: Iterable[str]) -> dict[str, set[str]]:
    """Where each VM is registered: a subset of {"target", "production"}."""
    on_target = set(vms_of(target_si))
    folder = tenant_folder(vc_si, spec)
    in_production = {
        name for name, vm in (vms_of(vc_si, folder) if folder is not None else {}).items() if vm.parent == folder
    }
    return {
        name: {side for side, names_ in (("target", on_target), ("production", in_production)) if name in names_}
        for name in names
    }


def target_snapshot(si: Any) -> dict[str, Any]:
    """What a test failover must leave unchanged on a target: every VM's path, state, NICs and datastores."""
    out = {}
    for name, vm in sorted(vms_of(si).items()):
        out[name] = {
            "moid": vm._moId,
            "vmx": vm.config.files.vmPathName,
            "power": str(vm.runtime.powerState),
            "datastores": sorted(d.name for d in vm.datastore),
            "nics": sorted(
                (d.macAddress, d.backing.deviceName)
                for d in vm.config.hardware.device
                if isinstance(d, vim.vm.device.VirtualEthernetCard)
            ),
            "extra": sorted((o.key, str(o.value)) for o in vm.config.extraConfig or []),
        }
    return out


def connection(endpoint: Any) -> dict[str, Any]:
    return {
        "hostname": endpoint.hostname,
        "port": endpoint.port,
        "username": endpoint.username,
        "password": endpoint.password,
        "ca_file": str(endpoint.ca_file),
    }


def module_args(vcenter: Any, targets: dict[str, Any], spec: dict[str, Any], tmp: Any, **extra: Any) -> dict[str, Any]:
    args = connection(vcenter)
    args.update(
        tenant=spec,
        datacenter="provider",
        cluster="production",
        targets=[{"name": name, **connection(ep)} for name, ep in targets.items()],
        journal_dir=str(tmp / "journal"),
        report_dir=str(tmp / "reports"),
    )
    args.update(extra)
    return args


MODULE = Path(__file__).resolve().parents[3] / "plugins" / "modules" / "failover.py"
COLLECTIONS = Path(__file__).resolve().parents[3] / ".collections"
KILL_AT = Path(__file__).resolve().parent / "kill_at.py"


def run_direct(
    args: dict[str, Any], tmp: Path, *, check: bool = False, kill: str | None = None, timeout: int = 120
) -> tuple[int, dict[str, Any]]:
    """Run the failover module file directly (as Ansible would, without ansible-playbook's start-up).

    ``kill`` (``<step>:<when>``) runs it through ``kill_at.py`` instead, which injects a hook that
    SIGKILLs the process there.  Returns (exit status, parsed result or ``{"stderr": ...}``).
    """
    import os
    import subprocess
    import sys

    params = dict(args)
    if check:
        params["_ansible_check_mode"] = True
    path = tmp / f"args-{len(list(tmp.glob('args-*.json')))}.json"
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": params}))
    path.chmod(0o600)
    env = dict(os.environ, PYTHONPATH=str(COLLECTIONS))
    command = [sys.executable, str(KILL_AT), str(path), kill] if kill else [sys.executable, str(MODULE), str(path)]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        result = {"stdout": proc.stdout[-3000:], "stderr": proc.stderr[-3000:]}
    return proc.returncode, result


@dataclass(frozen=True)
class ProxyEndpoint:
    hostname: str
    port: int
    username: str
    password: str
    ca_file: Path


class SoapTrace:
    """A TLS relay on loopback that records every byte of every connection, each way.

    It presents the simulator's own certificate (the lab CA signs it, SAN 127.0.0.1), so a client
    verifying with the lab CA connects to it as to the simulator.  One thread per connection moves
    whole reads both ways (never two threads on one TLS socket).
    """

    def __init__(self, upstream: Any, cert_file: Path, key_file: Path) -> None:
        import socket
        import ssl
        import threading

        self._ssl, self._socket, self._threading = ssl, socket, threading
        self.upstream = upstream
        self.conversations: list[tuple[bytearray, bytearray]] = []
        self._server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._server.load_cert_chain(str(cert_file), str(key_file))
        self._client = ssl.create_default_context(cafile=str(upstream.ca_file))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._closed = threading.Event()
        self.endpoint = ProxyEndpoint(
            "127.0.0.1", self._listener.getsockname()[1], upstream.username, upstream.password, upstream.ca_file
        )
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _addr = self._listener.accept()
            except OSError:
                return
            self._threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _relay(self, conn: Any) -> None:
        import select

        sent, received = bytearray(), bytearray()
        self.conversations.append((sent, received))
        try:
            client = self._server.wrap_socket(conn, server_side=True)
            raw = self._socket.create_connection((self.upstream.hostname, self.upstream.port))
            server = self._client.wrap_socket(raw, server_hostname=self.upstream.hostname)
        except (OSError, self._ssl.SSLError):
            conn.close()
            return
        pairs = {client: (server, sent), server: (client, received)}
        for sock in pairs:
            sock.setsockopt(self._socket.IPPROTO_TCP, self._socket.TCP_NODELAY, 1)  # no Nagle/delayed-ACK stalls
            # A readable TLS socket may hold only a non-data record (a TLS 1.3 session ticket):
            # never block on it, or the other direction starves.
            sock.settimeout(0.05)
        try:
            while not self._closed.is_set():
                ready = [s for s in pairs if s.pending()] or select.select(list(pairs), [], [], 0.5)[0]
                for sock in ready:
                    try:
                        data = sock.recv(65536)
                    except (TimeoutError, self._ssl.SSLWantReadError):
                        continue
                    if not data:
                        return
                    other, log = pairs[sock]
                    log.extend(data)
                    other.sendall(data)
        except (OSError, self._ssl.SSLError):
            return
        finally:
            for sock in pairs:
                sock.close()

    def requests(self) -> list[bytes]:
        return [bytes(sent) for sent, _ in self.conversations]

    def responses(self) -> list[bytes]:
        return [bytes(received) for _, received in self.conversations]

    def close(self) -> None:
        self._closed.set()
        self._listener.close()


@dataclass
class LabTenant:
    """A tenant of the lab: its spec, its target's endpoint and session, its VMs' names."""

    name: str
    data: dict[str, Any]
    spec: dict[str, Any]
    target: Endpoint
    target_si: Any
    vcenter: Endpoint
    vc_si: Any
    vms: list[str]
    tmp: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def target_name(self) -> str:
        return f"{self.name}-target-01"

    def args(self, **over: Any) -> dict[str, Any]:
        values = {"check_account": False, "retries": 1, **self.extra, **over}
        return module_args(self.vcenter, {self.target_name: self.target}, self.spec, self.tmp, **values)

    def run(self, *, check: bool = False, kill: str | None = None, **over: Any) -> tuple[int, dict[str, Any]]:
        return run_direct(self.args(**over), self.tmp, check=check, kill=kill)

    def placement(self) -> dict[str, set[str]]:
        return placement(self.vc_si, self.target_si, self.spec, self.vms)

    def production_vms(self, sub: str = "") -> dict[str, Any]:
        folder = tenant_folder(self.vc_si, self.spec, sub)
        if folder is None:
            return {}
        return {n: vm for n, vm in vms_of(self.vc_si, folder).items() if vm.parent == folder}

    def nfs_in_production(self) -> Any:
        content = self.vc_si.RetrieveContent()
        dc = content.searchIndex.FindByInventoryPath("provider")
        return content.searchIndex.FindChild(dc.datastoreFolder, self.spec["nfs"]["datastore"])

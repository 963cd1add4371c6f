"""The client site's VMs: created on a client-mode simulator with disks full of real bytes.

A disk is a sequence of 1 MiB blocks from a keyed AES-CTR stream (fast and repeatable): about
40 % incompressible, 40 % text-like (16 symbols, so about half compresses away) and 20 % zeros,
the mix a real disk has.  The first quarter of every disk comes from one shared seed (the
"operating system" all VMs were installed from), so backups of several VMs deduplicate.

``guest_write`` changes bytes the way a guest would: through the simulator's lab endpoint,
which records the extent for changed-block tracking.  Everything here is synchronous (the lab
CLI and tests call it).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import importlib
import urllib.parse
from collections.abc import Iterator, Sequence
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tenantry.backup.vsphere import pyvim
from tenantry.backup.vsphere import vim as _vim
from tenantry.lab.errors import LabError
from tenantry.lab.simulator import Endpoint

MIB = 1 << 20
DATACENTER = "site"
DATASTORE = "site-ds-01"
_TEXT = bytes.maketrans(bytes(range(256)), bytes(b"etaoinshrdlu \n.,"[i % 16] for i in range(256)))
_ZERO = bytes(MIB)


def _stream(seed: str) -> Any:
    key = hashlib.sha256(f"tenantry-lab-disk:{seed}".encode()).digest()
    return Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()


def disk_blocks(vm: str, size: int, *, shared_fraction: float = 0.25) -> Iterator[bytes]:
    """The content of ``vm``'s disk, ``size`` bytes, 1 MiB at a time."""
    shared_blocks = int(size // MIB * shared_fraction)
    shared, own = _stream("shared-os-image"), _stream(vm)
    left = size
    index = 0
    while left > 0:
        raw = (shared if index < shared_blocks else own).update(_ZERO)
        kind = raw[0] % 10
        block = raw if kind < 4 else raw.translate(_TEXT) if kind < 8 else _ZERO
        out = block[: min(MIB, left)]
        left -= len(out)
        index += 1
        yield out


def _si(endpoint: Endpoint) -> Any:
    return pyvim("SmartConnect")(
        host=endpoint.hostname,
        port=endpoint.port,
        user=endpoint.username,
        pwd=endpoint.password,
        sslContext=endpoint.ssl_context(),
    )


def _conn(endpoint: Endpoint) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection(endpoint.hostname, endpoint.port, context=endpoint.ssl_context(), timeout=600)


def _folder(path: str, datacenter: str = DATACENTER, datastore: str = DATASTORE) -> str:
    query = urllib.parse.urlencode({"dcPath": datacenter, "dsName": datastore})
    return f"/folder/{urllib.parse.quote(path)}?{query}"


def seed(endpoint: Endpoint, vms: Sequence[str], disk_mib: int = 64, network: str = "VM Network") -> list[str]:
    """Create the missing ``vms`` (one disk of ``disk_mib`` MiB each, filled) on the client site."""
    vim = _vim()
    wait_for_tasks = importlib.import_module("pyVim.task").WaitForTasks

    si = _si(endpoint)
    try:
        content = si.RetrieveContent()
        dc = next(e for e in content.rootFolder.childEntity if e.name == DATACENTER)
        cluster = dc.hostFolder.childEntity[0]
        existing = {vm.name for vm in dc.vmFolder.childEntity if isinstance(vm, vim.VirtualMachine)}
        missing = [name for name in vms if name not in existing]
        for name in missing:
            controller = vim.vm.device.VirtualDeviceSpec(
                operation="add",
                device=vim.vm.device.ParaVirtualSCSIController(key=1000, busNumber=0, sharedBus="noSharing"),
            )
            disk = vim.vm.device.VirtualDeviceSpec(
                operation="add",
                fileOperation="create",
                device=vim.vm.device.VirtualDisk(
                    key=2000,
                    controllerKey=1000,
                    unitNumber=0,
                    capacityInKB=disk_mib * 1024,
                    backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                        fileName=f"[{DATASTORE}] {name}/{name}.vmdk", diskMode="persistent", thinProvisioned=True
                    ),
                ),
            )
            nic = vim.vm.device.VirtualDeviceSpec(
                operation="add",
                device=vim.vm.device.VirtualVmxnet3(
                    key=-1,
                    backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName=network),
                    addressType="generated",
                ),
            )
            spec = vim.vm.ConfigSpec(
                name=name,
                memoryMB=512,
                numCPUs=1,
                guestId="otherGuest64",
                files=vim.vm.FileInfo(vmPathName=f"[{DATASTORE}]"),
                deviceChange=[controller, disk, nic],
            )
            wait_for_tasks([dc.vmFolder.CreateVM_Task(spec, cluster.resourcePool, cluster.host[0])], si=si)
            fill(endpoint, f"{name}/{name}-flat.vmdk", disk_blocks(name, disk_mib * MIB), disk_mib * MIB)
        return missing
    finally:
        pyvim("Disconnect")(si)


def fill(endpoint: Endpoint, path: str, blocks: Iterator[bytes], size: int) -> None:
    """PUT a datastore file (``path`` inside site-ds-01) from ``blocks``."""
    conn = _conn(endpoint)
    try:
        conn.putrequest("PUT", _folder(path), skip_accept_encoding=True)
        conn.putheader("Content-Length", str(size))
        conn.putheader("Authorization", _basic(endpoint))
        conn.endheaders()
        for block in blocks:
            conn.send(block)
        resp = conn.getresponse()
        resp.read()
        if resp.status not in (200, 201, 204):
            raise LabError(f"PUT {path}: HTTP {resp.status}")
    finally:
        conn.close()


def _basic(endpoint: Endpoint) -> str:
    return "Basic " + base64.b64encode(f"{endpoint.username}:{endpoint.password}".encode()).decode()


def guest_write(endpoint: Endpoint, vm: str, offset: int, data: bytes, disk: str | None = None) -> None:
    """Write ``data`` at ``offset`` of ``vm``'s disk as its guest would (recorded for CBT)."""
    query = urllib.parse.urlencode({"dsName": DATASTORE, "path": disk or f"{vm}/{vm}.vmdk", "offset": str(offset)})
    conn = _conn(endpoint)
    try:
        conn.request("POST", f"/tenantry/disk-write?{query}", body=data, headers={"Authorization": _basic(endpoint)})
        resp = conn.getresponse()
        text = resp.read()
        if resp.status != 200:
            raise LabError(f"guest write to {vm}: HTTP {resp.status} {text[:200]!r}")
    finally:
        conn.close()


def read_disk(
    endpoint: Endpoint, vm: str, name: str | None = None, *, datacenter: str = DATACENTER, datastore: str = DATASTORE
) -> Iterator[bytes]:
    """The bytes of ``vm``'s (flat) disk file as the datastore serves them."""
    conn = _conn(endpoint)
    try:
        target = _folder(name or f"{vm}/{vm}-flat.vmdk", datacenter, datastore)
        conn.request("GET", target, headers={"Authorization": _basic(endpoint)})
        resp = conn.getresponse()
        if resp.status != 200:
            raise LabError(f"GET disk of {vm}: HTTP {resp.status}")
        while True:
            block = resp.read(MIB)
            if not block:
                return
            yield block
    finally:
        conn.close()


def disk_sha256(
    endpoint: Endpoint, vm: str, name: str | None = None, *, datacenter: str = DATACENTER, datastore: str = DATASTORE
) -> str:
    digest = hashlib.sha256()
    for block in read_disk(endpoint, vm, name, datacenter=datacenter, datastore=datastore):
        digest.update(block)
    return digest.hexdigest()

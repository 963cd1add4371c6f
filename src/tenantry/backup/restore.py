"""Restore a VM from a backup into a vSphere site: upload its disks and configuration, register it.

Used by the Transporter (back to the client site: restic reads the tenant's repository at the
MSP through the uplink) and by the Director (into the MSP's production cluster, disaster
recovery from backup: restic reads the repository directly).  Either way ``restic dump`` of the
VM's directory is one tar stream, read once, in order: the manifest, the configuration files,
then each disk's segments, which are uploaded as the disk's flat file while they arrive.

Registration uploads the ``.vmx`` (names rewritten for the new VM) and calls ``RegisterVM``;
then the VM's hardware is reconciled with the manifest (disks attached to the uploaded files,
NICs, CPUs, memory), which on a real ESXi finds nothing to do and on the simulator (it does not
read ``.vmx`` files) restores the hardware.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from tenantry.backup import restic
from tenantry.backup.layout import MANIFEST, VmManifest, split_datastore_path
from tenantry.backup.tarstream import TarReader
from tenantry.backup.vsphere import VSphere, VSphereError
from tenantry.backup.vsphere import vim as _vim

log = logging.getLogger(__name__)

_DISK = re.compile(r"^disk-(\d+)$")


class RestoreError(RuntimeError):
    pass


@dataclass
class Target:
    """Where a restored VM goes; unset fields are taken from the backup or the site."""

    name: str
    datastore: str | None = None
    folder: str | None = None  # a VM folder path below the datacenter's vm folder, e.g. "tenants/acme"
    resource_pool: str | None = None  # a resource pool name (default: the first cluster's root pool)
    host: str | None = None
    power_on: bool = False
    replace: bool = False  # destroy an existing VM of that name first
    network_map: dict[str, str] = field(default_factory=dict)


@dataclass
class Restored:
    vm: str
    datastore: str
    disks: list[str]
    bytes_written: int
    seconds: float
    manifest: dict[str, Any]


Progress = Callable[[dict[str, Any]], None]


def _disk_files(name: str, count: int) -> list[str]:
    return [f"{name}.vmdk" if i == 0 else f"{name}_{i}.vmdk" for i in range(count)]


def _descriptor(original: bytes, old_flat: str, new_flat: str, capacity: int) -> bytes:
    text = original.decode("utf-8", "replace")
    if text.strip():
        return text.replace(old_flat, new_flat).encode()
    sectors = (capacity + 511) // 512
    return (
        '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="vmfs"\n\n'
        f'RW {sectors} VMFS "{new_flat}"\n\nddb.adapterType = "lsilogic"\nddb.virtualHWVersion = "14"\n'
    ).encode()


def _rewrite_vmx(vmx: bytes, manifest: VmManifest, name: str, disk_files: dict[str, str]) -> bytes:
    out = []
    for line in vmx.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition("=")
        k = key.strip().lower()
        if sep and k == "displayname":
            line = f'displayName = "{name}"'
        elif sep and k.endswith(".filename"):
            current = value.strip().strip('"')
            base = current.rsplit("/", 1)[-1]
            if base in disk_files:
                line = f'{key.rstrip()} = "{disk_files[base]}"'
        elif sep and k in ("nvram",):
            line = f'nvram = "{name}.nvram"'
        out.append(line)
    return ("\n".join(out) + "\n").encode()


async def restore_vm(
    repo: restic.Repo,
    snapshot: str,
    vm_dir: str,
    vs: VSphere,
    target: Target,
    progress: Progress | None = None,
) -> Restored:
    """Restore the VM backed up in ``snapshot`` (its directory ``vm_dir`` in the snapshot) to ``vs``."""
    started = time.monotonic()
    report = progress or (lambda _m: None)
    datacenter = await vs.datacenter_name()
    existing = await vs.call(vs.find_vm, target.name)
    if existing is not None:
        if not target.replace:
            raise RestoreError(f"a VM named {target.name!r} exists; choose another name or ask to replace it")
        report({"phase": "replace", "message": f"removing the existing VM {target.name}"})
        await vs.call(_destroy, vs, existing)
    manifest: VmManifest | None = None
    config: dict[str, bytes] = {}
    uploaded: list[str] = []
    total = 0
    datastore = target.datastore
    disk_names: list[str] = []
    async with restic.dump(repo, snapshot, vm_dir) as out:
        tar = TarReader(out)
        prefix = vm_dir.strip("/") + "/"
        member = await tar.next()
        while member is not None:
            rel = member.name[len(prefix) :] if member.name.startswith(prefix) else member.name
            if rel == MANIFEST and member.kind == "file":
                manifest = VmManifest.model_validate_json(await tar.read_all(1 << 20))
                datastore = datastore or await vs.call(_pick_datastore, vs, manifest)
                disk_names = _disk_files(target.name, len(manifest.disks))
                report({"phase": "restore", "bytes_total": sum(d.capacity_bytes for d in manifest.disks)})
                member = await tar.next()
                continue
            if rel.startswith("config/") and member.kind == "file":
                config[rel[len("config/") :]] = await tar.read_all(64 << 20)
                member = await tar.next()
                continue
            match = _DISK.match(rel)
            if match and member.kind == "dir":
                if manifest is None or datastore is None:
                    raise RestoreError("the backup has no manifest before its disks")
                key = int(match.group(1))
                disk = manifest.disk(key)
                index = manifest.disks.index(disk)
                base = disk_names[index]
                flat = base.replace(".vmdk", "-flat.vmdk")
                path = f"[{datastore}] {target.name}/{flat}"
                member, written = await _upload_disk(vs, datacenter, path, disk.capacity_bytes, tar, prefix + rel + "/")
                total += written
                report({"phase": "restore", "bytes_done": total})
                old_base = split_datastore_path(disk.file_name)[1].rsplit("/", 1)[-1]
                descriptor = _descriptor(
                    config.get(f"disk-{key}.vmdk", b""),
                    old_base.replace(".vmdk", "-flat.vmdk"),
                    flat,
                    disk.capacity_bytes,
                )
                await _put(vs, datacenter, f"[{datastore}] {target.name}/{base}", descriptor)
                uploaded.append(f"[{datastore}] {target.name}/{base}")
                continue
            member = await tar.next()
    if manifest is None or datastore is None:
        raise RestoreError(f"snapshot {snapshot} holds no VM backup at {vm_dir}")
    old_names = {
        split_datastore_path(d.file_name)[1].rsplit("/", 1)[-1]: n
        for d, n in zip(manifest.disks, disk_names, strict=True)
    }
    old_names |= {k.replace(".vmdk", "-flat.vmdk"): v.replace(".vmdk", "-flat.vmdk") for k, v in old_names.items()}
    vmx_name = f"{target.name}.vmx"
    vmx = config.get(manifest.vmx_file or "", b"")
    await _put(
        vs, datacenter, f"[{datastore}] {target.name}/{vmx_name}", _rewrite_vmx(vmx, manifest, target.name, old_names)
    )
    nvram = next((v for k, v in config.items() if k.endswith(".nvram")), b"")
    await _put(vs, datacenter, f"[{datastore}] {target.name}/{target.name}.nvram", nvram)
    if "vmware.log" in config:
        await _put(vs, datacenter, f"[{datastore}] {target.name}/vmware.log", config["vmware.log"])
    report({"phase": "register", "message": f"registering {target.name}"})
    await vs.call(_register, vs, target, manifest, f"[{datastore}] {target.name}/{vmx_name}", uploaded)
    return Restored(
        vm=target.name,
        datastore=datastore,
        disks=uploaded,
        bytes_written=total,
        seconds=time.monotonic() - started,
        manifest=manifest.model_dump(),
    )


async def _upload_disk(
    vs: VSphere, datacenter: str, path: str, size: int, tar: TarReader, prefix: str
) -> tuple[Any, int]:
    """Upload the segments under ``prefix`` as one file; returns the member after them and the bytes."""
    state: dict[str, Any] = {"next": None, "bytes": 0}

    async def chunks() -> AsyncIterator[bytes]:
        member = await tar.next()
        while member is not None and member.name.startswith(prefix):
            if member.kind == "file":
                async for chunk in tar.chunks():
                    state["bytes"] += len(chunk)
                    yield chunk
            member = await tar.next()
        state["next"] = member

    await vs.write_file(path, datacenter, size, chunks())
    return state["next"], int(state["bytes"])


async def _put(vs: VSphere, datacenter: str, path: str, data: bytes) -> None:
    async def one() -> AsyncIterator[bytes]:
        if data:
            yield data

    await vs.write_file(path, datacenter, len(data), one())


# ---------------------------------------------------------------------- worker-thread helpers
def _destroy(vs: VSphere, vm: Any) -> None:
    vim = _vim()

    name = vm.name
    if vm.runtime.powerState == vim.VirtualMachinePowerState.poweredOn:
        vs.wait(vm.PowerOffVM_Task(), f"power off {name}")
    vs.wait(vm.Destroy_Task(), f"remove {name}")


def _pick_datastore(vs: VSphere, manifest: VmManifest) -> str:
    names = [ds.name for ds in vs.datacenter().datastore]
    if manifest.vmx_path:
        wanted = split_datastore_path(manifest.vmx_path)[0]
        if wanted in names:
            return wanted
    if not names:
        raise VSphereError("the site has no datastore")
    return str(names[0])


def _folder(vs: VSphere, path: str | None) -> Any:
    folder = vs.datacenter().vmFolder
    for part in [p for p in (path or "").split("/") if p]:
        found = [c for c in folder.childEntity if c.name == part and hasattr(c, "childEntity")]
        if not found:
            raise VSphereError(f"no VM folder {path!r}")
        folder = found[0]
    return folder


def _pool_and_host(vs: VSphere, target: Target) -> tuple[Any, Any]:
    vim = _vim()

    dc = vs.datacenter()
    view = vs.content.viewManager.CreateContainerView(dc.hostFolder, [vim.ComputeResource], True)
    try:
        computes = list(view.view)
    finally:
        view.Destroy()
    if not computes:
        raise VSphereError("the site has no host or cluster")
    host = None
    if target.host:
        for cr in computes:
            for h in cr.host:
                if h.name == target.host:
                    host = h
        if host is None:
            raise VSphereError(f"no host {target.host!r}")
    pool = computes[0].resourcePool
    if target.resource_pool:
        view = vs.content.viewManager.CreateContainerView(dc.hostFolder, [vim.ResourcePool], True)
        try:
            pools = [p for p in view.view if p.name == target.resource_pool]
        finally:
            view.Destroy()
        if not pools:
            raise VSphereError(f"no resource pool {target.resource_pool!r}")
        pool = pools[0]
    return pool, host


def _register(vs: VSphere, target: Target, manifest: VmManifest, vmx_path: str, disks: list[str]) -> None:
    vim = _vim()

    folder = _folder(vs, target.folder)
    pool, host = _pool_and_host(vs, target)
    vm = vs.wait(
        folder.RegisterVM_Task(path=vmx_path, name=target.name, asTemplate=False, pool=pool, host=host),
        f"register {target.name}",
    )
    hardware = vm.config.hardware
    present = {d.backing.fileName for d in hardware.device if isinstance(d, vim.vm.device.VirtualDisk)}
    changes: list[Any] = []
    controllers = {d.key for d in hardware.device if isinstance(d, vim.vm.device.VirtualSCSIController)}
    scsi_key = next(iter(controllers), None)
    if scsi_key is None and any(f not in present for f in disks):
        scsi_key = -100
        changes.append(
            vim.vm.device.VirtualDeviceSpec(
                operation="add",
                device=vim.vm.device.ParaVirtualSCSIController(key=scsi_key, busNumber=0, sharedBus="noSharing"),
            )
        )
    for unit, (info, path) in enumerate(zip(manifest.disks, disks, strict=True)):
        if path in present:
            continue
        changes.append(
            vim.vm.device.VirtualDeviceSpec(
                operation="add",
                device=vim.vm.device.VirtualDisk(
                    key=-(200 + unit),
                    controllerKey=scsi_key,
                    unitNumber=unit if unit < 7 else unit + 1,
                    capacityInKB=info.capacity_bytes // 1024,
                    backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                        fileName=path, diskMode="persistent", thinProvisioned=info.thin
                    ),
                ),
            )
        )
    if not any(isinstance(d, vim.vm.device.VirtualEthernetCard) for d in hardware.device):
        networks = {n.name for n in vs.datacenter().network}
        for i, nic in enumerate(manifest.nics):
            name = target.network_map.get(nic.network, nic.network)
            if name not in networks:
                name = next(iter(sorted(networks)), name)
            changes.append(
                vim.vm.device.VirtualDeviceSpec(
                    operation="add",
                    device=vim.vm.device.VirtualVmxnet3(
                        key=-(300 + i),
                        backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName=name),
                        addressType="generated",
                    ),
                )
            )
    spec = vim.vm.ConfigSpec(deviceChange=changes)
    if hardware.numCPU != manifest.cpus:
        spec.numCPUs = manifest.cpus
    if hardware.memoryMB != manifest.memory_mb:
        spec.memoryMB = manifest.memory_mb
    if changes or spec.numCPUs or spec.memoryMB:
        vs.wait(vm.ReconfigVM_Task(spec), f"configure {target.name}")
    if target.power_on:
        vs.wait(vm.PowerOnVM_Task(), f"power on {target.name}")

"""Restore a VM from a backup into a vSphere site: upload its disks and configuration, register it.

Used by the Transporter (back to the client site: restic reads the tenant's repository at the
MSP through the uplink) and by the Director (into the MSP's production cluster, disaster
recovery from backup: restic reads the repository directly).  Either way restic first restores
the manifest, the configuration files and every disk's first 8 segments, then each disk's other
segments in batches (256 at a time - 1 GiB - and 8 at the end) into a staging directory, with its
parallel pack downloads (``restic dump`` fetches one blob after another: a round trip each, four
times slower through the uplink); the segments are uploaded in order as the disk's flat file while restic restores
the next batch (two restores run at once while the upload waits for one).

Registration uploads the ``.vmx`` (names rewritten for the new VM) and calls ``RegisterVM``;
then the VM's hardware is reconciled with the manifest (disks attached to the uploaded files,
NICs, CPUs, memory), which on a real ESXi finds nothing to do and on the simulator (it does not
read ``.vmx`` files) restores the hardware.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shutil
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenantry.backup import restic
from tenantry.backup.layout import (
    DISK_DIRS,
    MANIFEST,
    SEGMENT,
    DiskInfo,
    VmManifest,
    disk_dir,
    segment_count,
    segment_name,
    split_datastore_path,
)
from tenantry.backup.vsphere import VSphere, VSphereError
from tenantry.backup.vsphere import vim as _vim

log = logging.getLogger(__name__)


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
    *,
    staging: Path,
) -> Restored:
    """Restore the VM backed up in ``snapshot`` (its directory ``vm_dir`` there) to ``vs``.

    restic restores batches of up to 256 segments (1 GiB) into ``staging`` (parallel pack
    downloads): the next batch while one is uploaded to the datastore and deleted, two at once
    while the upload waits: staging holds at most two batches, whatever the size of the VM.
    """
    started = time.monotonic()
    report = progress or (lambda _m: None)
    name = vm_dir.strip("/")
    stage = staging / f"restore-{secrets.token_hex(6)}"
    stage.mkdir(parents=True, mode=0o700)
    try:
        # The first restic run also restores every disk's first batch (a batch never starts past
        # FIRST_BATCH): one restic start-up fewer, and the upload starts sooner.
        firsts = [f"{vm_dir}/{DISK_DIRS}/{segment_name(i)}" for i in range(FIRST_BATCH)]
        await restic.restore(repo, snapshot, stage, [f"{vm_dir}/{MANIFEST}", f"{vm_dir}/config", *firsts])
        root = stage / name
        try:
            manifest = VmManifest.model_validate_json((root / MANIFEST).read_bytes())
        except (OSError, ValueError) as exc:
            raise RestoreError(f"snapshot {snapshot} holds no VM backup at {vm_dir}: {exc}") from None
        config = {p.name: p.read_bytes() for p in (root / "config").iterdir()} if (root / "config").is_dir() else {}
        datacenter = await vs.datacenter_name()
        existing = await vs.call(vs.find_vm, target.name)
        if existing is not None:
            if not target.replace:
                raise RestoreError(f"a VM named {target.name!r} exists; choose another name or ask to replace it")
            report({"phase": "replace", "message": f"removing the existing VM {target.name}"})
            await vs.call(_destroy, vs, existing)
        datastore = target.datastore or await vs.call(_pick_datastore, vs, manifest)
        disk_names = _disk_files(target.name, len(manifest.disks))
        total = sum(d.capacity_bytes for d in manifest.disks)
        report({"phase": "restore", "bytes_total": total, "bytes_done": 0})
        done = 0
        uploaded: list[str] = []
        for disk, base in zip(manifest.disks, disk_names, strict=True):
            flat = base.replace(".vmdk", "-flat.vmdk")
            where = disk_dir(disk.key)
            chunks = _segments(repo, snapshot, f"{vm_dir}/{where}", root / where, stage, disk, first_ready=True)
            counted = _counting(chunks, done, total, report)
            await vs.write_file(f"[{datastore}] {target.name}/{flat}", datacenter, disk.capacity_bytes, counted)
            done += disk.capacity_bytes
            old_base = split_datastore_path(disk.file_name)[1].rsplit("/", 1)[-1]
            descriptor = _descriptor(
                config.get(f"disk-{disk.key}.vmdk", b""),
                old_base.replace(".vmdk", "-flat.vmdk"),
                flat,
                disk.capacity_bytes,
            )
            await _put(vs, datacenter, f"[{datastore}] {target.name}/{base}", descriptor)
            uploaded.append(f"[{datastore}] {target.name}/{base}")
        old_names = {
            split_datastore_path(d.file_name)[1].rsplit("/", 1)[-1]: n
            for d, n in zip(manifest.disks, disk_names, strict=True)
        }
        old_names |= {k.replace(".vmdk", "-flat.vmdk"): v.replace(".vmdk", "-flat.vmdk") for k, v in old_names.items()}
        vmx = _rewrite_vmx(config.get(manifest.vmx_file or "", b""), manifest, target.name, old_names)
        await _put(vs, datacenter, f"[{datastore}] {target.name}/{target.name}.vmx", vmx)
        nvram = next((v for k, v in config.items() if k.endswith(".nvram")), b"")
        await _put(vs, datacenter, f"[{datastore}] {target.name}/{target.name}.nvram", nvram)
        if "vmware.log" in config:
            await _put(vs, datacenter, f"[{datastore}] {target.name}/vmware.log", config["vmware.log"])
        report({"phase": "register", "message": f"registering {target.name}"})
        await vs.call(_register, vs, target, manifest, f"[{datastore}] {target.name}/{target.name}.vmx", uploaded)
        return Restored(
            vm=target.name,
            datastore=datastore,
            disks=uploaded,
            bytes_written=done,
            seconds=time.monotonic() - started,
            manifest=manifest.model_dump(),
        )
    finally:
        await asyncio.to_thread(shutil.rmtree, stage, True)


#: Segments per restic restore: a small first batch so the upload starts early, large ones (few
#: restic start-ups, each deriving the repository key - scrypt, about 0.5 CPU-seconds - and loading
#: the index through the uplink: 18 runs for 4 GiB cost restic 42 CPU-seconds where one plain
#: ``restic restore`` takes 27; a 4 GiB disk is 6 runs with the manifest's, 11 with batches of 128, which
#: cost restic about 2 CPU-seconds more), a small last one so the upload's tail does not wait for a long restore.
FIRST_BATCH, BATCH, LAST_BATCH = 8, 256, 8
#: restic restores running at once while the upload waits for a batch (one fewer while it reads one).
AHEAD = 2


def batch_sizes(count: int, first: int = FIRST_BATCH, middle: int = BATCH, last: int = LAST_BATCH) -> list[int]:
    """How ``count`` segments are cut into restic restores: ``first``, then ``middle`` ones, ``last`` at the end."""
    sizes: list[int] = []
    left = count
    if left > first:
        sizes.append(first)
        left -= first
    while left > middle + last:
        sizes.append(middle)
        left -= middle
    if left > last:
        sizes.append(left - last)
        left = last
    if left:
        sizes.append(left)
    return sizes


async def _segments(
    repo: restic.Repo,
    snapshot: str,
    snap_dir: str,
    local: Path,
    stage: Path,
    disk: DiskInfo,
    *,
    ahead: int = AHEAD,
    sizes: list[int] | None = None,
    first_ready: bool = False,
) -> AsyncIterator[bytes]:
    """A disk's bytes, restored by restic a batch at a time: ``ahead`` restores run while the reader waits
    for a batch, ``ahead`` - 1 while it reads one (``first_ready``: the first batch is in ``local`` already)."""
    count = segment_count(disk.capacity_bytes)
    batches: list[list[int]] = []
    start = 0
    for size in sizes if sizes is not None else batch_sizes(count):
        batches.append(list(range(start, start + size)))
        start += size
    assert start == count, (start, count)

    def fetch(indices: list[int]) -> asyncio.Future[None]:
        includes = [f"{snap_dir}/{segment_name(i)}" for i in indices]
        return asyncio.ensure_future(restic.restore(repo, snapshot, stage, includes))

    pending: deque[asyncio.Future[None]] = deque()
    queued = iter(batches)
    if first_ready and batches and batches[0][-1] < FIRST_BATCH:
        next(queued)  # restored with the manifest: nothing to wait for
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        ready.set_result(None)
        pending.append(ready)
    try:
        for indices in batches:
            while len(pending) < max(1, ahead):
                nxt = next(queued, None)
                if nxt is None:
                    break
                pending.append(fetch(nxt))
            await pending.popleft()
            for i in indices:
                size = min(SEGMENT, disk.capacity_bytes - i * SEGMENT)
                # Read and delete in a worker thread: neither holds up the event loop (the relay).
                yield await asyncio.to_thread(_take_file, local / segment_name(i), size)
    finally:
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(BaseException):
                await task


def _take_file(path: Path, size: int) -> bytes:
    data = _read_file(path, size)
    path.unlink()
    return data


def _read_file(path: Path, size: int) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RestoreError(f"the backup lacks {path.name} of a disk") from None
    if len(data) != size:
        raise RestoreError(f"segment {path.name} holds {len(data)} bytes, {size} expected")
    return data


async def _counting(chunks: AsyncIterator[bytes], before: int, total: int, report: Progress) -> AsyncIterator[bytes]:
    n = before
    last = 0.0
    async for chunk in chunks:
        n += len(chunk)
        if time.monotonic() - last > 0.5:
            last = time.monotonic()
            report({"phase": "restore", "bytes_done": n, "bytes_total": total})
        yield chunk


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
        _power_on_as_copy(vs, vm, target.name)


def _power_on_as_copy(vs: VSphere, vm: Any, name: str) -> None:
    """Power on a restored VM; vSphere asks "moved or copied?" of a .vmx registered anew, and a restore
    is a new VM beside any original: "I Copied It" (a new UUID, new generated MACs)."""
    task = vm.PowerOnVM_Task()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = task.info.state
        if state not in ("queued", "running"):
            break
        question = vm.runtime.question
        if question is not None and _is_moved_or_copied(question):
            key = next(
                (
                    str(c.key)
                    for c in question.choice.choiceInfo or []
                    if str(c.label) == "button.uuid.copiedTheVM" or str(c.summary).replace("_", "") == "I Copied It"
                ),
                None,
            )
            if key is not None:
                vm.AnswerVM(questionId=question.id, answerChoice=key)
        time.sleep(0.2)
    vs.wait(task, f"power on {name}")


def _is_moved_or_copied(question: Any) -> bool:
    ids = {str(m.id) for m in getattr(question, "message", None) or []}
    return "msg.uuid.altered" in ids or str(getattr(question, "text", "")).startswith("msg.uuid.altered")

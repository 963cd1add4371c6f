"""vSphere access for backups and restores: pyVmomi for the API, the datastore's HTTP file access for bytes.

pyVmomi is synchronous: every API call runs in a worker thread.  Disk bytes are read and written
through ``https://<host>/folder/<path>?dcPath=<datacenter>&dsName=<datastore>`` with the API
session's cookie (vSphere's datastore file access; ranges are supported for reads), with the
standard library's :mod:`http.client`, one chunk per worker-thread hop (disk segments: one whole
segment per hop, read straight into its own buffer).

On a production ESXi the flat file of a running VM's base disk is locked by the VM; reading it
through an NFC export lease of the snapshot (``HttpNfcLease``) is the route there.  The govmomi
simulator of the lab implements leases for imports only, so this module reads files; the
reader is one function (:meth:`VSphere.read_file`) for the day that changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import importlib
import logging
import ssl
import time
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenantry.backup.layout import DiskInfo, NicInfo, VmManifest, split_datastore_path

log = logging.getLogger(__name__)

CHUNK = 1 << 20


class VSphereError(RuntimeError):
    """A vSphere call failed; the message says which and why (never a password)."""


@dataclass(frozen=True)
class Endpoint:
    hostname: str
    username: str
    password: str = field(repr=False)
    port: int = 443
    ca_file: Path | None = None
    insecure: bool = False  # lab and tests only
    datacenter: str | None = None

    def ssl_context(self) -> ssl.SSLContext:
        if self.insecure:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)


def vim() -> Any:
    """pyVmomi's ``vim`` namespace, imported when first needed (typed loosely: the SDK is dynamic)."""
    try:
        return importlib.import_module("pyVmomi").vim
    except ImportError as exc:  # pragma: no cover - a Transporter without pyVmomi
        raise VSphereError("pyVmomi is not installed: the Transporter needs it for VM backups") from exc


def pyvim(name: str) -> Any:
    """A function of ``pyVim.connect`` (SmartConnect, Disconnect)."""
    return getattr(importlib.import_module("pyVim.connect"), name)


def _fault_text(exc: BaseException) -> str:
    msg = getattr(exc, "msg", None) or str(exc)
    return f"{type(exc).__name__}: {msg}"[:500]


class VSphere:
    """One API session to a vCenter or ESXi."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.si: Any = None
        self._ctx = endpoint.ssl_context()

    # ------------------------------------------------------------------ session
    async def connect(self) -> None:
        await asyncio.to_thread(self._connect)

    def _connect(self) -> None:
        vim()  # a clear error when pyVmomi is missing
        try:
            self.si = pyvim("SmartConnect")(
                host=self.endpoint.hostname,
                port=self.endpoint.port,
                user=self.endpoint.username,
                pwd=self.endpoint.password,
                sslContext=self._ctx,
            )
        except Exception as exc:
            raise VSphereError(
                f"cannot log in to {self.endpoint.hostname}:{self.endpoint.port}: {_fault_text(exc)}"
            ) from None

    async def close(self) -> None:
        if self.si is not None:
            si, self.si = self.si, None
            with contextlib.suppress(Exception):
                await asyncio.to_thread(pyvim("Disconnect"), si)

    async def call(self, fn: Any, *args: Any) -> Any:
        """Run a pyVmomi-using function in a worker thread; faults become :class:`VSphereError`."""
        try:
            return await asyncio.to_thread(fn, *args)
        except VSphereError:
            raise
        except Exception as exc:
            raise VSphereError(_fault_text(exc)) from None

    # ------------------------------------------------------------------ inventory (worker threads)
    @property
    def content(self) -> Any:
        return self.si.RetrieveContent()

    def datacenter(self) -> Any:
        dcs = [e for e in self.content.rootFolder.childEntity if isinstance(e, vim().Datacenter)]
        if self.endpoint.datacenter:
            dcs = [d for d in dcs if d.name == self.endpoint.datacenter]
        if not dcs:
            raise VSphereError(f"no datacenter {self.endpoint.datacenter or ''} at {self.endpoint.hostname}".strip())
        return dcs[0]

    def find_vm(self, name: str) -> Any:
        view = self.content.viewManager.CreateContainerView(self.datacenter().vmFolder, [vim().VirtualMachine], True)
        try:
            found = [vm for vm in view.view if vm.name == name]
        finally:
            view.Destroy()
        return found[0] if found else None

    def wait(self, task: Any, what: str) -> Any:
        """A task's result.  Only ``info.state``, ``info.error`` and ``info.result`` are read: a task
        on a snapshot names the snapshot as its entity, which pyVmomi refuses in a whole TaskInfo."""
        v = vim()
        pc = self.content.propertyCollector
        spec = v.PropertyCollector.FilterSpec(
            objectSet=[v.PropertyCollector.ObjectSpec(obj=task)],
            propSet=[
                v.PropertyCollector.PropertySpec(type=v.Task, pathSet=["info.state", "info.error", "info.result"])
            ],
        )
        deadline = time.monotonic() + 3600
        delay = 0.02
        while True:
            found = pc.RetrieveContents([spec])
            props = {p.name: p.val for obj in found for p in obj.propSet}
            state = props.get("info.state")
            if state == v.TaskInfo.State.success:
                return props.get("info.result")
            if state == v.TaskInfo.State.error:
                raise VSphereError(f"{what} failed: {_fault_text(props.get('info.error') or Exception('unknown'))}")
            if time.monotonic() > deadline:
                raise VSphereError(f"{what}: no result within an hour")
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def manifest(self, vm: Any, hardware: Any) -> VmManifest:
        """What the backup keeps of the VM's configuration (from the snapshot's frozen config)."""
        disks: list[DiskInfo] = []
        nics: list[NicInfo] = []
        for dev in hardware.device:
            if isinstance(dev, vim().vm.device.VirtualDisk):
                backing = dev.backing
                disks.append(
                    DiskInfo(
                        key=dev.key,
                        label=dev.deviceInfo.label if dev.deviceInfo else f"disk {dev.key}",
                        capacity_bytes=int(dev.capacityInBytes or (dev.capacityInKB or 0) * 1024),
                        file_name=backing.fileName,
                        controller_key=dev.controllerKey,
                        unit_number=dev.unitNumber,
                        thin=bool(getattr(backing, "thinProvisioned", True)),
                        change_id=getattr(backing, "changeId", None) or None,
                    )
                )
            elif isinstance(dev, vim().vm.device.VirtualEthernetCard):
                network = getattr(dev.backing, "deviceName", "") or ""
                nics.append(
                    NicInfo(
                        label=dev.deviceInfo.label if dev.deviceInfo else "",
                        network=network,
                        mac=dev.macAddress or "",
                        kind=type(dev).__name__.rsplit(".", 1)[-1].replace("Virtual", "").lower(),
                    )
                )
        cfg = vm.config
        vmx_path = cfg.files.vmPathName if cfg and cfg.files else None
        return VmManifest(
            vm=vm.name,
            uuid=(cfg.instanceUuid or cfg.uuid or "") if cfg else "",
            guest_id=(cfg.guestId if cfg else None) or "otherGuest64",
            cpus=hardware.numCPU or 1,
            memory_mb=hardware.memoryMB or 64,
            firmware=(cfg.firmware if cfg else None) or "bios",
            vmx_path=vmx_path,
            vmx_file=vmx_path.rsplit("/", 1)[-1] if vmx_path else None,
            disks=disks,
            nics=nics,
            taken_at=time.time(),
            source=f"{self.endpoint.hostname}:{self.endpoint.port}",
        )

    def create_snapshot(self, vm: Any, name: str) -> Any:
        task = vm.CreateSnapshot_Task(name=name, description="tenantry backup", memory=False, quiesce=False)
        return self.wait(task, f"snapshot of {vm.name}")

    def remove_snapshot(self, snapshot: Any) -> None:
        self.wait(snapshot.RemoveSnapshot_Task(removeChildren=False), "snapshot removal")

    def snapshots_named(self, vm: Any, prefix: str) -> list[Any]:
        out: list[Any] = []

        def walk(trees: Any) -> None:
            for tree in trees or []:
                if tree.name.startswith(prefix):
                    out.append(tree.snapshot)
                walk(tree.childSnapshotList)

        if vm.snapshot is not None:
            walk(vm.snapshot.rootSnapshotList)
        return out

    def enable_change_tracking(self, vm: Any) -> bool:
        """Turn CBT on (it takes effect at the next snapshot); ``True`` when it was off."""
        if vm.config.changeTrackingEnabled:
            return False
        self.wait(vm.ReconfigVM_Task(vim().vm.ConfigSpec(changeTrackingEnabled=True)), f"enable CBT on {vm.name}")
        return True

    def changed_areas(self, vm: Any, snapshot: Any, disk: DiskInfo, since: str) -> list[tuple[int, int]]:
        """``QueryChangedDiskAreas``: (start, length) areas changed since change id ``since`` ("*": all in use)."""
        out: list[tuple[int, int]] = []
        offset = 0
        while offset < disk.capacity_bytes:
            info = vm.QueryChangedDiskAreas(snapshot=snapshot, deviceKey=disk.key, startOffset=offset, changeId=since)
            for area in info.changedArea or []:
                out.append((int(area.start), int(area.length)))
            step = int(info.startOffset) + int(info.length)
            if step <= offset:
                break
            offset = step
        return out

    # ------------------------------------------------------------------ datastore HTTP
    def _cookie(self) -> str:
        raw = str(getattr(self.si._stub, "cookie", "") or "")
        return raw.split(";", 1)[0]

    def _target(self, datastore_path: str, datacenter: str) -> str:
        ds, path = split_datastore_path(datastore_path)
        query = urllib.parse.urlencode({"dcPath": datacenter, "dsName": ds})
        return f"/folder/{urllib.parse.quote(path)}?{query}"

    def _conn(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.endpoint.hostname, self.endpoint.port, context=self._ctx, timeout=300)

    async def datacenter_name(self) -> str:
        return str(await self.call(lambda: self.datacenter().name))

    async def file_size(self, datastore_path: str, datacenter: str) -> int | None:
        def head() -> int | None:
            conn = self._conn()
            try:
                conn.request("HEAD", self._target(datastore_path, datacenter), headers={"Cookie": self._cookie()})
                resp = conn.getresponse()
                resp.read()
                if resp.status == 404:
                    return None
                if resp.status != 200:
                    raise VSphereError(f"HEAD {datastore_path}: HTTP {resp.status}")
                return int(resp.getheader("Content-Length") or 0)
            finally:
                conn.close()

        return await asyncio.to_thread(head)

    async def _ranged_get(
        self, conn: http.client.HTTPSConnection, path: str, datacenter: str, headers: dict[str, str], start: int
    ) -> http.client.HTTPResponse:
        """GET a datastore file (``headers`` may hold a Range): the response, its status checked."""
        resp = await asyncio.to_thread(self._get, conn, self._target(path, datacenter), headers)
        if resp.status not in (200, 206):
            raise VSphereError(f"cannot read {path}: HTTP {resp.status} {resp.reason}")
        if start and resp.status != 206:
            raise VSphereError(f"the datastore ignored the byte range asked for {path}")
        return resp

    async def read_file(
        self, datastore_path: str, datacenter: str, start: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        """The bytes of a datastore file (or of ``length`` bytes from ``start``)."""
        headers = {"Cookie": self._cookie()}
        if start or length is not None:
            end = "" if length is None else str(start + length - 1)
            headers["Range"] = f"bytes={start}-{end}"
        conn = self._conn()
        try:
            resp = await self._ranged_get(conn, datastore_path, datacenter, headers, start)
            while True:
                data = await asyncio.to_thread(resp.read, CHUNK)
                if not data:
                    return
                yield data
        finally:
            conn.close()

    async def read_blocks(
        self, datastore_path: str, datacenter: str, start: int, sizes: list[int]
    ) -> AsyncIterator[bytearray]:
        """Consecutive blocks of ``sizes`` bytes from ``start``, each read whole in one worker-thread hop.

        Each block is read straight into its own buffer (no re-buffering, no slicing copies).  A
        block cut short by the end of the file comes short and is the last (a thin file's tail).
        """
        headers = {"Cookie": self._cookie()}
        if start:  # from 0: no range (an empty thin file has no satisfiable range)
            headers["Range"] = f"bytes={start}-{start + sum(sizes) - 1}"
        conn = self._conn()
        try:
            resp = await self._ranged_get(conn, datastore_path, datacenter, headers, start)
            for size in sizes:
                block = await asyncio.to_thread(_read_exactly, resp, size)
                yield block
                if len(block) < size:
                    return
        finally:
            conn.close()

    @staticmethod
    def _get(conn: http.client.HTTPSConnection, target: str, headers: dict[str, str]) -> http.client.HTTPResponse:
        conn.request("GET", target, headers=headers)
        return conn.getresponse()

    async def write_file(self, datastore_path: str, datacenter: str, size: int, chunks: AsyncIterator[bytes]) -> None:
        """Upload exactly ``size`` bytes to a datastore file (created or replaced)."""
        conn = self._conn()
        target = self._target(datastore_path, datacenter)
        headers = {
            "Cookie": self._cookie(),
            "Content-Type": "application/octet-stream",
            "Content-Length": str(size),
        }

        def start() -> None:
            conn.putrequest("PUT", target, skip_accept_encoding=True)
            for k, v in headers.items():
                conn.putheader(k, v)
            conn.endheaders()

        try:
            await asyncio.to_thread(start)
            sent = 0
            async for chunk in chunks:
                sent += len(chunk)
                if sent > size:
                    raise VSphereError(f"{datastore_path}: more bytes than the {size} announced")
                await asyncio.to_thread(conn.send, chunk)
            if sent != size:
                raise VSphereError(f"{datastore_path}: {sent} bytes uploaded, {size} expected")
            resp = await asyncio.to_thread(conn.getresponse)
            body = await asyncio.to_thread(resp.read)
            if resp.status not in (200, 201, 204):
                raise VSphereError(f"cannot write {datastore_path}: HTTP {resp.status} {body[:200]!r}")
        finally:
            conn.close()


def _read_exactly(resp: http.client.HTTPResponse, size: int) -> bytearray:
    """``size`` bytes of ``resp`` into one new buffer (fewer at the end of the body)."""
    block = bytearray(size)
    got = 0
    with memoryview(block) as view:
        while got < size:
            n = resp.readinto(view[got:])
            if not n:
                break
            got += n
    if got < size:
        del block[got:]
    return block

"""Source-side VM backup at the client site: snapshot, read the disks, hand restic what changed.

1. Remove leftover ``tenantry-backup-*`` snapshots of the VM (an earlier run that died), then
   snapshot the VM through the site's vCenter; the snapshot is removed in a ``finally``, so a
   failure or a cancelled job leaves none behind.
2. Keep the VM's configuration: the manifest (hardware, disks, change ids) and the ``.vmx``,
   ``.nvram`` and disk descriptor files, downloaded from the datastore.
3. Read the disks of the snapshot (the frozen base disks) through the datastore's HTTP access
   and cut them into segments (:mod:`tenantry.backup.layout`).  With a usable parent (the last
   backup of this VM that this Transporter made, still in the repository):

   * changed-block tracking on: only the areas ``QueryChangedDiskAreas`` reports since the
     parent's change id are read; every other segment is unchanged;
   * without it: the whole disk is read and a segment is unchanged when its SHA-256 equals the
     parent's.

   Unchanged segments become sparse placeholders with the parent's size and mtime, which
   restic does not read; changed ones are staged with their bytes.  restic's summary must
   confirm it (``files_unmodified`` = placeholders), else the backup fails: a placeholder read
   by mistake would store zeros.
4. restic runs as soon as 128 MiB are staged (or the staging budget is full), on what is there
   (a snapshot tagged ``tenantry-partial``, which the MSP forgets after the job), while the next
   segments are read into a shadow directory; when it is done its segments become placeholders,
   the shadow moves in and the next run starts on it.  Reading the disk and restic overlap; the
   last run makes the VM's backup.  Staging space is bounded by the budget (one batch that restic
   reads, one being read), not by the disk.

restic's repository is whatever URL the job gives (at the MSP: the relay's loopback endpoint).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenantry.backup import restic
from tenantry.backup.layout import (
    MANIFEST,
    SEGMENT,
    TAG,
    DiskInfo,
    VmManifest,
    disk_dir,
    segment_count,
    segment_name,
    split_datastore_path,
)
from tenantry.backup.vsphere import VSphere, VSphereError
from tenantry.common.memory import write_file

log = logging.getLogger(__name__)

SNAPSHOT_PREFIX = "tenantry-backup-"
PARTIAL_TAG = "tenantry-partial"
#: Staged bytes that start restic's first run (each later run takes what was staged during the last).
FIRST_BATCH = 128 << 20
Progress = Callable[[dict[str, Any]], None]


class BackupError(RuntimeError):
    pass


@dataclass
class DiskState:
    """What the last backup of a disk looked like (kept at the Transporter between backups)."""

    size: int
    change_id: str | None
    mtimes: list[int]  # per segment, ns (the value its placeholder gets)
    hashes: list[str]  # per segment, SHA-256 (hex, first 32)

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "change_id": self.change_id, "mtimes": _rle(self.mtimes), "hashes": self.hashes}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DiskState:
        return cls(int(data["size"]), data.get("change_id"), _unrle(data["mtimes"]), list(data["hashes"]))


def _rle(values: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for v in values:
        if out and out[-1][0] == v:
            out[-1][1] += 1
        else:
            out.append([v, 1])
    return out


def _unrle(runs: list[list[int]]) -> list[int]:
    return [v for v, n in runs for _ in range(n)]


@dataclass
class Options:
    job_id: str
    vm: str
    parent: str | None = None  # the snapshot the Director considers this VM's latest
    changed_blocks: bool = False
    tags: list[str] = field(default_factory=list)
    staging_bytes: int = 512 << 20


@dataclass
class Result:
    snapshot_id: str
    partial_snapshots: list[str]
    mode: str
    bytes_read: int
    bytes_staged: int
    segments_total: int
    segments_changed: int
    restic_runs: int
    data_added: int
    total_bytes: int
    seconds: float
    manifest: dict[str, Any]


class SourceBackup:
    """One VM's backup; :meth:`run` does it all and always removes the VM snapshot."""

    def __init__(
        self,
        vs: VSphere,
        repo: restic.Repo,
        options: Options,
        *,
        staging_root: Path,
        state_root: Path,
        progress: Progress | None = None,
    ) -> None:
        self.vs = vs
        self.repo = repo
        self.opt = options
        self.root = staging_root
        self.dir = staging_root / options.vm
        self.state_file = state_root / f"{options.vm}.json"
        # Present while the VM may carry our snapshot: the janitor of a restarted Transporter reads it.
        self.marker = state_root.parent / "active" / options.vm
        self.report = progress or (lambda _m: None)
        self.bytes_read = 0
        self.bytes_staged = 0
        self.partials: list[str] = []
        self.runs = 0
        self.data_added = 0
        self._placeholders = 0
        self._staged_files = 0
        self._last_report = 0.0
        self._total = 0
        self.shadow = staging_root / f".next-{options.vm}"
        # Files restic is done with, kept to be written over by the next segments (see _settle).
        self.spare_dir = staging_root / f".spare-{options.vm}"
        self._spares: list[tuple[Path, int]] = []
        self._spare_bytes = 0
        self._spare_seq = 0
        self._live: list[str] = []  # staged files in the directory restic reads
        self._live_bytes = 0
        self._next: list[str] = []  # staged while restic runs: moved in afterwards
        self._next_bytes = 0
        self._running: asyncio.Future[None] | None = None

    # ------------------------------------------------------------------ state
    def _load_state(self) -> tuple[str | None, dict[int, DiskState]]:
        try:
            data = json.loads(self.state_file.read_text())
            return data.get("snapshot_id"), {int(k): DiskState.from_json(v) for k, v in data["disks"].items()}
        except (OSError, ValueError, KeyError, TypeError):
            return None, {}

    def _save_state(self, snapshot_id: str, disks: dict[int, DiskState]) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        data = {
            "snapshot_id": snapshot_id,
            "saved_at": time.time(),
            "disks": {k: v.to_json() for k, v in disks.items()},
        }
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.state_file)

    # ------------------------------------------------------------------ the job
    async def run(self) -> Result:
        started = time.monotonic()
        vm = await self.vs.call(self.vs.find_vm, self.opt.vm)
        if vm is None:
            raise BackupError(f"no VM named {self.opt.vm!r} at {self.vs.endpoint.hostname}")
        for leftover in await self.vs.call(self.vs.snapshots_named, vm, SNAPSHOT_PREFIX):
            log.warning("removing a leftover backup snapshot of %s", self.opt.vm)
            await self.vs.call(self.vs.remove_snapshot, leftover)
        if self.opt.changed_blocks:
            await self.vs.call(self.vs.enable_change_tracking, vm)
        self.report({"phase": "snapshot", "message": f"snapshot of {self.opt.vm}"})
        self.marker.parent.mkdir(parents=True, exist_ok=True)
        self.marker.touch()
        snapshot = await self.vs.call(self.vs.create_snapshot, vm, SNAPSHOT_PREFIX + self.opt.job_id)
        try:
            return await self._backup(vm, snapshot, started)
        finally:
            # Removed whatever happened, also when this task is being cancelled.
            if self._running is not None:
                self._running.cancel()
                with contextlib.suppress(BaseException):
                    await self._running
            await asyncio.shield(self._remove_snapshot(snapshot))
            for path in (self.dir, self.shadow, self.spare_dir):
                await asyncio.shield(asyncio.to_thread(shutil.rmtree, path, True))

    async def _remove_snapshot(self, snapshot: Any) -> None:
        try:
            await self.vs.call(self.vs.remove_snapshot, snapshot)
            self.marker.unlink(missing_ok=True)
            self.report({"phase": "cleanup", "message": "snapshot removed"})
        except VSphereError as exc:
            log.error("could not remove the backup snapshot of %s: %s", self.opt.vm, exc)

    async def _backup(self, vm: Any, snapshot: Any, started: float) -> Result:
        hardware = await self.vs.call(lambda: snapshot.config.hardware)
        manifest = await self.vs.call(self.vs.manifest, vm, hardware)
        datacenter = await self.vs.datacenter_name()
        last_snapshot, last_disks = self._load_state()
        parent = self.opt.parent
        usable = bool(
            parent and last_snapshot and (parent.startswith(last_snapshot) or last_snapshot.startswith(parent))
        )
        for stale in (self.dir, self.shadow, self.spare_dir):
            if stale.exists():
                await asyncio.to_thread(shutil.rmtree, stale)
        (self.dir / "config").mkdir(parents=True)
        await self._config_files(manifest, datacenter)
        self._total = sum(d.capacity_bytes for d in manifest.disks)
        # 1. Plan: which segments of each disk changed since the parent (all of them without one).
        plans: list[tuple[DiskInfo, str, list[int], DiskState, str]] = []
        for disk in manifest.disks:
            previous = last_disks.get(disk.key) if usable else None
            if previous is not None and previous.size != disk.capacity_bytes:
                previous = None
            data_file = await self._data_file(disk, datacenter)
            changed, state, mode = await self._plan(vm, snapshot, disk, previous, data_file, datacenter)
            plans.append((disk, data_file, changed, state, mode))
        # 2. Every unchanged segment becomes a placeholder before restic first runs, so each run's
        #    parent (the previous backup, then this job's previous partial) holds every placeholder.
        for disk, _f, changed, state, _m in plans:
            wanted = set(changed)
            base = self.dir / disk_dir(disk.key)
            for i in range(segment_count(disk.capacity_bytes)):
                if i not in wanted:
                    self._placeholder(base / segment_name(i), self._seg_size(disk, i), state.mtimes[i])
        # 3. Stage the changed segments; restic runs whenever the staging budget is full, in the
        #    background while the next batch is read into the shadow directory.
        for disk, data_file, changed, state, _m in plans:
            await self._read_segments(disk, data_file, datacenter, changed, state)
        modes = {m for *_x, m in plans}
        manifest.mode = "changed-blocks" if modes == {"changed-blocks"} else "incremental" if usable else "full"
        await self._settle()
        (self.dir / MANIFEST).write_text(manifest.model_dump_json(indent=1))
        summary = await self._restic(final=True)
        snapshot_id = str(summary["snapshot_id"])
        new_disks = {disk.key: state for disk, _f, _c, state, _m in plans}
        self._save_state(snapshot_id, new_disks)
        segments = sum(len(s.mtimes) for s in new_disks.values())
        return Result(
            snapshot_id=snapshot_id,
            partial_snapshots=self.partials,
            mode=manifest.mode,
            bytes_read=self.bytes_read,
            bytes_staged=self.bytes_staged,
            segments_total=segments,
            segments_changed=self._staged_files,
            restic_runs=self.runs,
            data_added=self.data_added,
            total_bytes=self._total,
            seconds=time.monotonic() - started,
            manifest=manifest.model_dump(),
        )

    async def _config_files(self, manifest: VmManifest, datacenter: str) -> None:
        """The .vmx, .nvram, vmware.log and each disk's descriptor, as the datastore has them."""
        wanted: list[tuple[str, str]] = []
        if manifest.vmx_path:
            ds, path = split_datastore_path(manifest.vmx_path)
            folder = path.rsplit("/", 1)[0] if "/" in path else ""
            stem = path.rsplit("/", 1)[-1].removesuffix(".vmx")
            wanted.append((manifest.vmx_path, manifest.vmx_file or f"{stem}.vmx"))
            prefix = f"[{ds}] {folder + '/' if folder else ''}"
            wanted.append((f"{prefix}{stem}.nvram", f"{stem}.nvram"))
            wanted.append((f"{prefix}vmware.log", "vmware.log"))
        for disk in manifest.disks:
            wanted.append((disk.file_name, f"disk-{disk.key}.vmdk"))
        for source, name in wanted:
            size = await self.vs.file_size(source, datacenter)
            if size is None or size > 64 << 20:
                continue  # not there (or not a descriptor: a monolithic disk is read as data)
            data = b"".join([c async for c in self.vs.read_file(source, datacenter)])
            (self.dir / "config" / name).write_bytes(data)

    # ------------------------------------------------------------------ disks
    async def _plan(
        self, vm: Any, snapshot: Any, disk: DiskInfo, previous: DiskState | None, data_file: str, datacenter: str
    ) -> tuple[list[int], DiskState, str]:
        """The segments to stage, the disk's new state (their mtimes and hashes), how it was decided."""
        count = segment_count(disk.capacity_bytes)
        stamp = time.time_ns()
        if previous is None:
            state = DiskState(disk.capacity_bytes, disk.change_id, [stamp] * count, [""] * count)
            return list(range(count)), state, "full"
        state = DiskState(disk.capacity_bytes, disk.change_id, list(previous.mtimes), list(previous.hashes))
        if self.opt.changed_blocks and disk.change_id and previous.change_id:
            areas = await self.vs.call(self.vs.changed_areas, vm, snapshot, disk, previous.change_id)
            changed = sorted(
                {
                    i
                    for start, length in areas
                    if length > 0
                    for i in range(start // SEGMENT, (start + length - 1) // SEGMENT + 1)
                }
            )
            return [i for i in changed if i < count], state, "changed-blocks"
        # No changed-block tracking: read the whole disk once and compare each segment's hash.
        changed = []
        index = 0
        sizes = [self._seg_size(disk, i) for i in range(count)]
        async for block in self.vs.read_blocks(data_file, datacenter, 0, sizes):
            self.bytes_read += len(block)
            digest = (await asyncio.to_thread(hashlib.sha256, block)).hexdigest()[:32]
            if digest != previous.hashes[index]:
                changed.append(index)
            index += 1
            self._progress("compare")
        changed.extend(range(index, count))  # short thin file: the rest reads as zeros, stage it
        return changed, state, "incremental"

    async def _data_file(self, disk: DiskInfo, datacenter: str) -> str:
        """The file holding the disk's bytes: ``<name>-flat.vmdk`` beside a descriptor, else the file itself."""
        flat = disk.file_name.removesuffix(".vmdk") + "-flat.vmdk"
        if await self.vs.file_size(flat, datacenter) is not None:
            return flat
        return disk.file_name

    def _seg_size(self, disk: DiskInfo, index: int) -> int:
        return min(SEGMENT, disk.capacity_bytes - index * SEGMENT)

    def _placeholder(self, path: Path, size: int, mtime: int) -> None:
        """A sparse file with the size and mtime restic saw last time: restic reuses it, unread."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, size)
        finally:
            os.close(fd)
        os.utime(path, ns=(mtime, mtime))
        self._placeholders += 1

    async def _read_segments(
        self, disk: DiskInfo, data_file: str, datacenter: str, changed: list[int], state: DiskState
    ) -> None:
        runs: list[list[int]] = []
        for i in changed:
            if runs and runs[-1][-1] == i - 1:
                runs[-1].append(i)
            else:
                runs.append([i])
        stamp = time.time_ns()
        rel = disk_dir(disk.key)

        async def stage(i: int, data: bytes | bytearray) -> None:
            state.mtimes[i] = stamp
            state.hashes[i] = await self._stage(f"{rel}/{segment_name(i)}", data, stamp)

        for run in runs:
            # Each segment is read whole into its own buffer, then hashed and written in one
            # worker-thread hop: no re-buffering of the stream, no slicing copies.
            sizes = [self._seg_size(disk, i) for i in run]
            pos = 0
            async for block in self.vs.read_blocks(data_file, datacenter, run[0] * SEGMENT, sizes):
                self.bytes_read += len(block)
                if len(block) < sizes[pos]:  # the end of a thin file: the rest of the segment reads as zeros
                    block.extend(bytes(sizes[pos] - len(block)))
                await stage(run[pos], block)
                pos += 1
                self._progress("read")
            while pos < len(run):  # past the end of a thin file: zeros
                await stage(run[pos], bytes(sizes[pos]))
                pos += 1

    # ------------------------------------------------------------------ staging, pipelined with restic
    async def _stage(self, rel: str, data: bytes | bytearray, mtime: int) -> str:
        """Stage a changed segment; its SHA-256 (hex, first 32), computed in the same worker-thread hop."""
        budget = self.opt.staging_bytes
        if self._running is not None and (self._running.done() or self._next_bytes + len(data) > budget):
            await self._settle()  # restic is done with its batch, or both halves are full: wait for it
        if (
            self._running is None
            and self._live
            and (self._live_bytes + len(data) > budget or self._live_bytes >= min(FIRST_BATCH, budget))
        ):
            # restic starts on the first FIRST_BATCH bytes and then takes whatever was staged
            # meanwhile, so the disk is read while restic works (not all of it first).
            self._running = asyncio.ensure_future(self._partial())
        into_shadow = self._running is not None
        path = (self.shadow if into_shadow else self.dir) / rel
        spare: Path | None = None
        if self._spares:
            spare, size = self._spares.pop()
            self._spare_bytes -= size

        def write() -> str:
            digest = hashlib.sha256(data).hexdigest()[:32]
            path.parent.mkdir(parents=True, exist_ok=True)
            if spare is not None:
                # Written over in place: the page cache's pages are reused instead of new ones
                # (new pages cost 0.3-0.5 CPU-seconds per GiB in this VM, overwriting ~0.1).
                fd = os.open(spare, os.O_WRONLY)
                target = spare
            else:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                target = path
            try:
                write_file(fd, data)
                if spare is not None:
                    os.ftruncate(fd, len(data))
            finally:
                os.close(fd)
            os.utime(target, ns=(mtime, mtime))
            if spare is not None:
                os.replace(spare, path)
            return digest

        digest = await asyncio.to_thread(write)
        self.bytes_staged += len(data)
        self._staged_files += 1
        if into_shadow:
            self._next.append(rel)
            self._next_bytes += len(data)
        else:
            self._live.append(rel)
            self._live_bytes += len(data)
        return digest

    async def _partial(self) -> None:
        await self._restic(final=False)

    async def _settle(self) -> None:
        """Wait for the running restic; its files become placeholders; the shadow moves in.

        The files restic read are kept aside as spares (up to the staging budget, with the shadow)
        and the next segments are written over them: staging then reuses the same page-cache pages
        instead of taking fresh ones for every segment.
        """
        if self._running is None:
            return
        running, self._running = self._running, None
        await running  # its failure is the job's failure
        self.spare_dir.mkdir(parents=True, exist_ok=True)
        for rel in self._live:
            path = self.dir / rel
            st = path.stat()
            if self._spare_bytes + st.st_size <= self.opt.staging_bytes:
                self._spare_seq += 1
                spare = self.spare_dir / str(self._spare_seq)
                os.replace(path, spare)
                self._spares.append((spare, st.st_size))
                self._spare_bytes += st.st_size
            self._placeholder(path, st.st_size, st.st_mtime_ns)
        for rel in self._next:
            target = self.dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.shadow / rel, target)
        self._live, self._live_bytes = self._next, self._next_bytes
        self._next, self._next_bytes = [], 0

    def _progress(self, phase: str) -> None:
        now = time.monotonic()
        if now - self._last_report >= 0.5:
            self._last_report = now
            self.report({"phase": phase, "bytes_done": self.bytes_read, "bytes_total": self._total})

    # ------------------------------------------------------------------ restic
    async def _restic(self, *, final: bool) -> dict[str, Any]:
        parent = self.partials[-1] if self.partials else self.opt.parent
        tags = [TAG, *self.opt.tags] + ([] if final else [PARTIAL_TAG])
        placeholders = self._placeholders
        # Unchanged since the parent: the placeholders, and from the second run of this job on,
        # the configuration files the first run stored.
        expected = placeholders + (len(list((self.dir / "config").iterdir())) if self.runs else 0)
        self.report({"phase": "upload", "message": f"restic run {self.runs + 1}", "bytes_done": self.bytes_read})
        summary = await restic.backup(
            self.repo,
            [self.opt.vm],
            host=self.opt.vm,
            tags=tags,
            parent=parent,
            flags=["--ignore-inode", "--ignore-ctime"],
            cwd=self.root,
        )
        self.runs += 1
        self.data_added += int(summary.get("data_added") or 0)
        unmodified = int(summary.get("files_unmodified") or 0)
        if unmodified != expected:
            raise BackupError(
                f"restic reused {unmodified} file(s) of {self.opt.vm} from the parent snapshot where {expected} were "
                "unchanged; the backup is refused (a placeholder must never be read)"
            )
        log.info(
            "%s: restic run %d: %d staged, %d placeholders, %s new, %s changed, %d unmodified",
            self.opt.vm,
            self.runs,
            len(self._live),
            placeholders,
            summary.get("files_new"),
            summary.get("files_changed"),
            unmodified,
        )
        if not final:
            self.partials.append(str(summary["snapshot_id"]))
        return summary

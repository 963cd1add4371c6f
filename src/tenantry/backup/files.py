"""Single files out of a backed-up disk, where the disk's format allows: ext2/3/4 filesystems.

restic restores the disk's segments at the MSP; they are joined into one image in a staging
directory and e2fsprogs' ``debugfs`` (read-only, no mount, no privileges) copies the file out.  The
filesystem is found on the raw disk, or in a partition of an MBR or GPT partition table.  Other
formats (NTFS, XFS, LVM) are reported as such: restore the VM instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import struct
import uuid
from dataclasses import dataclass
from pathlib import Path

from tenantry.backup import restic
from tenantry.backup.layout import SEGMENT, DiskInfo, disk_dir, segment_count, segment_name

_EXT_MAGIC = 0xEF53
_SAFE_PATH = re.compile(r"^/[^\x00-\x1f\x7f\"\\]{0,4000}$")


class FileRestoreError(RuntimeError):
    pass


@dataclass(frozen=True)
class Filesystem:
    partition: int  # 0: the whole disk, else the partition number
    offset: int
    size: int


def _is_ext(f: object, offset: int) -> bool:
    f.seek(offset + 1024 + 56)  # type: ignore[attr-defined]
    data = f.read(2)  # type: ignore[attr-defined]
    return len(data) == 2 and struct.unpack("<H", data)[0] == _EXT_MAGIC


def filesystems(image: Path) -> list[Filesystem]:
    """The ext filesystems of a disk image: the raw disk, MBR partitions, GPT partitions."""
    size = image.stat().st_size
    found: list[Filesystem] = []
    with image.open("rb") as f:
        if _is_ext(f, 0):
            return [Filesystem(0, 0, size)]
        f.seek(0)
        mbr = f.read(512)
        if len(mbr) < 512 or mbr[510:512] != b"\x55\xaa":
            return []
        entries = [struct.unpack_from("<BBBBBBBBII", mbr, 446 + 16 * i) for i in range(4)]
        if any(e[4] == 0xEE for e in entries):  # protective MBR: a GPT follows
            f.seek(512)
            header = f.read(92)
            if header[:8] != b"EFI PART":
                return []
            table, count, entry_size = struct.unpack_from("<QII", header, 72)
            f.seek(table * 512)
            for n in range(min(count, 128)):
                entry = f.read(entry_size)
                kind = uuid.UUID(bytes_le=entry[:16])
                first, last = struct.unpack_from("<QQ", entry, 32)
                if kind.int == 0:
                    continue
                if _is_ext(f, first * 512):  # Linux filesystem data, or any type holding an ext superblock
                    found.append(Filesystem(n + 1, first * 512, (last - first + 1) * 512))
                f.seek(table * 512 + (n + 1) * entry_size)
            return found
        for n, e in enumerate(entries):
            kind, start, sectors = e[4], e[8], e[9]
            if kind and sectors and _is_ext(f, start * 512):
                found.append(Filesystem(n + 1, start * 512, sectors * 512))
    return found


async def disk_image(repo: restic.Repo, snapshot: str, vm_dir: str, disk: DiskInfo, staging: Path) -> Path:
    """Restore one backed-up disk into ``staging`` as a single image file."""
    work = staging / f"disk-{uuid.uuid4().hex[:12]}"
    work.mkdir(parents=True, mode=0o700)
    await restic.restore(repo, snapshot, work, [f"{vm_dir}/{disk_dir(disk.key)}"])
    image = work / "disk.img"
    local = work / vm_dir.strip("/") / disk_dir(disk.key)

    def join() -> None:
        with image.open("wb") as out:
            for i in range(segment_count(disk.capacity_bytes)):
                part = local / segment_name(i)
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, SEGMENT)
                part.unlink()
        shutil.rmtree(work / vm_dir.strip("/"), ignore_errors=True)

    await asyncio.to_thread(join)
    return image


async def extract(image: Path, path: str, partition: int | None, out: Path) -> Filesystem:
    """Copy ``path`` out of the ext filesystem of ``image`` (the only one, or ``partition``) into ``out``."""
    if not _SAFE_PATH.match(path) or "/../" in path + "/":
        raise FileRestoreError("path must be absolute, without quotes, backslashes or control characters")
    found = await asyncio.to_thread(filesystems, image)
    if not found:
        raise FileRestoreError(
            "no ext2/3/4 filesystem on this disk (raw, MBR or GPT): single files cannot be read from its format; "
            "restore the VM instead"
        )
    if partition is None:
        if len(found) > 1:
            parts = ", ".join(str(f.partition) for f in found)
            raise FileRestoreError(f"the disk has several ext filesystems (partitions {parts}): name one")
        fs = found[0]
    else:
        chosen = [f for f in found if f.partition == partition]
        if not chosen:
            raise FileRestoreError(f"partition {partition} holds no ext filesystem")
        fs = chosen[0]
    target = f"{image}?offset={fs.offset}" if fs.offset else str(image)
    proc = await asyncio.create_subprocess_exec(
        "debugfs",
        "-R",
        f'dump "{path}" {out}',
        target,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _stdout, stderr = await proc.communicate()
    text = stderr.decode("utf-8", "replace")
    if proc.returncode != 0 or "File not found" in text or not out.exists():
        with contextlib.suppress(FileNotFoundError):
            out.unlink()
        reason = "not found" if "not found" in text.lower() else text.strip().splitlines()[-1:] or ["unknown"]
        raise FileRestoreError(f"{path}: {reason if isinstance(reason, str) else reason[0]}")
    return fs

"""What one VM backup looks like inside a restic snapshot.

A VM backup is one restic snapshot of a directory named after the VM (``--host`` is the VM's
name, so restic's retention groups backups per VM)::

    /<vm>/_tenantry.json          the manifest (VmManifest): hardware, disks, change ids
    /<vm>/config/<name>.vmx       the VM's configuration file as the datastore holds it
    /<vm>/disk-<key>/<dir>/<seg>  disk <key> cut into segments of SEGMENT bytes (256 per dir)

Disks are cut into fixed segments so that restic's own parent mechanism skips what did not
change: a segment that is unchanged since the parent snapshot is presented to restic as a
sparse placeholder with the parent's size and modification time, which restic does not read
(``--ignore-inode --ignore-ctime``); only changed segments hold real bytes.  The segments of
one disk, in name order, are the disk's bytes; ``restic dump`` of the directory streams them
as a tar in that order, so a restore is one sequential pass.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

FORMAT = 1
SEGMENT = 4 << 20  # bytes per segment file
PER_DIR = 256  # segment files per directory (1 GiB)
MANIFEST = "_tenantry.json"
TAG = "tenantry"  # every VM backup carries this tag

VmName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.()-]{0,78}$")]
DatastorePath = Annotated[str, StringConstraints(pattern=r"^\[[^\]\n]{1,80}\] [^\n]{0,400}$", max_length=500)]
SnapshotId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{8,64}$")]
_DS_PATH = re.compile(r"^\[(?P<ds>[^\]]+)\] ?(?P<path>.*)$")


def split_datastore_path(path: str) -> tuple[str, str]:
    """``[ds] dir/file`` → ``("ds", "dir/file")``."""
    match = _DS_PATH.match(path)
    if not match:
        raise ValueError(f"{path!r} is not a datastore path ([datastore] path)")
    return match.group("ds"), match.group("path")


def segment_count(size: int, segment: int = SEGMENT) -> int:
    return (size + segment - 1) // segment


def segment_name(index: int) -> str:
    """``<dir>/<segment>``: ``0000/00000000`` … (fixed width, so name order is disk order)."""
    return f"{index // PER_DIR:04d}/{index:08d}"


def disk_dir(key: int) -> str:
    return f"disk-{key}"


#: Every disk's directory, as a restic ``--include`` pattern.
DISK_DIRS = "disk-*"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class DiskInfo(_Model):
    key: int
    label: str = Field(default="", max_length=200)
    capacity_bytes: int = Field(ge=0)
    file_name: DatastorePath  # the disk's backing file in the source (base disk of the snapshot)
    controller_key: int | None = None
    unit_number: int | None = None
    thin: bool = True
    change_id: str | None = Field(default=None, max_length=200)  # CBT change id at this backup (None: no CBT)
    segment_bytes: int = SEGMENT


class NicInfo(_Model):
    label: str = Field(default="", max_length=200)
    network: str = Field(default="", max_length=200)
    mac: str = Field(default="", max_length=32)
    kind: str = Field(default="vmxnet3", max_length=64)


class VmManifest(_Model):
    format: int = FORMAT
    vm: VmName
    uuid: str = Field(default="", max_length=64)
    guest_id: str = Field(default="otherGuest64", max_length=100)
    cpus: int = Field(default=1, ge=1, le=768)
    memory_mb: int = Field(default=64, ge=4)
    firmware: str = Field(default="bios", max_length=16)
    vmx_path: DatastorePath | None = None
    vmx_file: str | None = Field(default=None, max_length=255)  # config/<this> holds the .vmx
    disks: list[DiskInfo] = Field(default_factory=list, max_length=64)
    nics: list[NicInfo] = Field(default_factory=list, max_length=16)
    taken_at: float = 0.0
    source: str = Field(default="", max_length=300)
    mode: Literal["full", "incremental", "changed-blocks"] = "full"

    def disk(self, key: int) -> DiskInfo:
        for d in self.disks:
            if d.key == key:
                return d
        raise KeyError(key)

"""Back up a client-site VM through the uplink into the tenant's repository at the MSP, then restore it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from backuplab import BackupLab

from tenantry.lab import client as site_vms
from tenantry.lab.simulator import Endpoint

pytestmark = pytest.mark.integration

MIB = 1 << 20


def test_full_then_incremental_then_restore(backup_lab: BackupLab) -> None:
    lab = backup_lab
    lab.job("nightly", ["acme-dc01"], retention={"keep_last": 5})
    first = lab.run("nightly")
    assert first["state"] == "succeeded", first["message"]
    vm = first["detail"]["vms"]["acme-dc01"]
    assert vm["mode"] == "full"
    print("full", vm)


def _change(lab: BackupLab, vm: str, regions: int, size: int, disk_bytes: int) -> None:
    """``regions`` guest writes of ``size`` bytes spread over the disk."""
    import os

    step = disk_bytes // regions
    for i in range(regions):
        site_vms.guest_write(lab.site, vm, i * step + 12345, os.urandom(size))


def test_incremental_sends_only_changes_and_restore_is_identical(backup_lab: BackupLab) -> None:
    lab = backup_lab
    lab.job("nightly", ["acme-dc01"])
    full = lab.run("nightly")["detail"]["vms"]["acme-dc01"]
    assert full["ok"] and full["mode"] == "full"
    _change(lab, "acme-dc01", 2, 256 << 10, 64 * MIB)
    second = lab.run("nightly")
    inc = second["detail"]["vms"]["acme-dc01"]
    assert inc["ok"], second
    assert inc["mode"] == "incremental"
    assert inc["segments_changed"] == 2
    # Only the changed chunks travel: a few MiB against a 64 MiB disk (full: tens of MiB).
    assert inc["uplink_bytes"] < full["uplink_bytes"] / 4, (inc, full)
    before = site_vms.disk_sha256(lab.site, "acme-dc01")
    # Break it, then restore over it.
    site_vms.guest_write(lab.site, "acme-dc01", 0, b"\0" * MIB)
    assert site_vms.disk_sha256(lab.site, "acme-dc01") != before
    restored = lab.restore(vm="acme-dc01", replace=True)
    assert restored["state"] == "succeeded", restored["message"]
    assert site_vms.disk_sha256(lab.site, "acme-dc01") == before


def test_restore_into_production(backup_lab: BackupLab, vcenter: Endpoint, vsphere_connect: Any) -> None:
    """Disaster recovery from backup: the MSP restores a tenant's VM into its production cluster."""
    lab = backup_lab
    lab.job("nightly", ["acme-app01"])
    assert lab.run("nightly")["state"] == "succeeded"
    source = site_vms.disk_sha256(lab.site, "acme-app01")
    done = lab.restore(
        vm="acme-app01",
        destination="production",
        name="acme-app01-dr",
        datastore="prod-ds-01",
        folder="production",
        power_on=True,
        vcenter={
            "hostname": vcenter.hostname,
            "port": vcenter.port,
            "username": vcenter.username,
            "password": vcenter.password,
            "ca_file": str(vcenter.ca_file),
        },
    )
    assert done["state"] == "succeeded", done["message"]
    si = vsphere_connect(vcenter)
    vm = si.RetrieveContent().searchIndex.FindByInventoryPath("provider/vm/production/acme-app01-dr")
    assert vm is not None and vm.runtime.powerState == "poweredOn"
    disks = [
        d for d in vm.config.hardware.device if hasattr(d.backing, "fileName") and d.backing.fileName.endswith(".vmdk")
    ]
    assert [d.backing.fileName for d in disks] == ["[prod-ds-01] acme-app01-dr/acme-app01-dr.vmdk"]
    assert vm.config.hardware.memoryMB == 512
    restored = site_vms.disk_sha256(vcenter, "acme-app01-dr", datacenter="provider", datastore="prod-ds-01")
    assert restored == source
    assert "password" not in lab.director.log().lower().replace("password_file", "")


def test_single_file_from_a_partitioned_ext4_disk(backup_lab: BackupLab, tmp_path: Path) -> None:
    """A file out of a backup where the disk's format allows it (an MBR partition holding ext4)."""
    import struct
    import subprocess
    import urllib.error
    import urllib.request

    root = tmp_path / "fsroot"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hostname").write_text("acme-files\n")
    payload = os.urandom(3_000_000)
    (root / "srv").mkdir()
    (root / "srv" / "data.bin").write_bytes(payload)
    fs = tmp_path / "fs.img"
    with fs.open("wb") as f:
        f.truncate(48 * MIB)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(root), str(fs)], check=True)
    mbr = bytearray(MIB)
    mbr[510:512] = b"\x55\xaa"
    struct.pack_into("<BBBBBBBBII", mbr, 446, 0, 0, 0, 0, 0x83, 0, 0, 0, 2048, 48 * MIB // 512)
    disk = bytes(mbr) + fs.read_bytes()
    disk += bytes(64 * MIB - len(disk))
    site_vms.seed(backup_lab.site, ["acme-files"], disk_mib=64)
    site_vms.fill(backup_lab.site, "acme-files/acme-files-flat.vmdk", iter([disk]), len(disk))
    backup_lab.job("files", ["acme-files", "acme-dc01"])
    run = backup_lab.run("files")
    assert run["state"] == "succeeded", run["message"]
    snap = run["detail"]["vms"]["acme-files"]["snapshot_id"]
    d = backup_lab.director

    def get(snapshot: str, path: str) -> tuple[int, bytes]:
        query = urllib.parse.urlencode({"path": path})
        req = urllib.request.Request(f"{d.url}/api/v1/tenants/acme/backups/{snapshot}/file?{query}")
        req.add_header("Authorization", f"Bearer {d.token}")
        try:
            with urllib.request.urlopen(req, context=d.ctx, timeout=120) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    assert get(snap, "/etc/hostname") == (200, b"acme-files\n")
    assert get(snap, "/srv/data.bin") == (200, payload)
    status, body = get(snap, "/etc/missing")
    assert status == 422 and b"not found" in body
    other = run["detail"]["vms"]["acme-dc01"]["snapshot_id"]
    status, body = get(other, "/etc/hostname")
    assert status == 422 and b"no ext2/3/4 filesystem" in body


def test_restic_overlaps_the_disk_read_and_restore_runs_ahead_of_the_upload(backup_lab: BackupLab) -> None:
    """Issue 14 (throughput): restic starts on the first 128 MiB instead of after the whole 384 MiB
    disk is staged (the staging budget, 1 GiB, holds it all), so the backup takes several restic runs;
    the restore cuts the 96 segments into four restic restores (8, 64, 16, 8) running ahead of the
    upload, and the disk comes back byte for byte."""
    lab = backup_lab
    site_vms.seed(lab.site, ["acme-big"], disk_mib=384)
    lab.job("big", ["acme-big"])
    run = lab.run("big")
    assert run["state"] == "succeeded", run["message"]
    vm = run["detail"]["vms"]["acme-big"]
    assert vm["mode"] == "full" and vm["segments_changed"] == 96
    assert vm["restic_runs"] >= 2, vm  # one run after all 384 MiB were staged, before
    assert len(vm["partial_snapshots"]) == vm["restic_runs"] - 1
    before = site_vms.disk_sha256(lab.site, "acme-big")
    site_vms.guest_write(lab.site, "acme-big", 200 * MIB, os.urandom(MIB))
    restored = lab.restore(vm="acme-big", replace=True, timeout=600)
    assert restored["state"] == "succeeded", restored["message"]
    assert site_vms.disk_sha256(lab.site, "acme-big") == before

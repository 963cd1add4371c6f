"""Back up a client-site VM through the uplink into the tenant's repository at the MSP, then restore it."""

from __future__ import annotations

import pytest
from backuplab import BackupLab

from tenantry.lab import client as site_vms

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

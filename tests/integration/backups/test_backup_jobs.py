"""Backup jobs end to end: quota, a job killed mid-stream, retention, the 3-2-1 copy, changed-block tracking.

Real Director and Transporter processes, real restic at both ends, the client site's vCenter
simulator with VMs full of bytes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from backuplab import BackupLab
from integration.services.services_harness import wait_for

from tenantry.lab import client as site_vms
from tenantry.lab.simulator import Endpoint

pytestmark = pytest.mark.integration

MIB = 1 << 20


def _restic(lab: BackupLab, *args: str, repo: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "RESTIC_PASSWORD": lab.password(),
        "RESTIC_REPOSITORY": str(repo or lab.repository()),
    }
    return subprocess.run(["restic", "--no-cache", *args], env=env, capture_output=True, text=True, timeout=300)


def _snapshots_on_vm(si: Any, vm: str) -> list[str]:
    found = si.RetrieveContent().searchIndex.FindByInventoryPath(f"site/vm/{vm}")
    out: list[str] = []

    def walk(trees: Any) -> None:
        for t in trees or []:
            out.append(t.name)
            walk(t.childSnapshotList)

    if found is not None and found.snapshot is not None:
        walk(found.snapshot.rootSnapshotList)
    return out


def _wait_for_phase(lab: BackupLab, run_id: int, vm: str, phase: str, timeout: float = 120) -> None:
    def seen() -> bool:
        run = lab.api("GET", f"/api/v1/backup-runs/{run_id}")
        if run["state"] != "running":
            raise AssertionError(f"run ended before {phase}: {run['message']}")
        return bool(run["progress"].get(vm, {}).get("phase") == phase)

    wait_for(seen, timeout, f"{vm} in phase {phase}")


def test_quota_exceeded_fails_cleanly(backup_lab: BackupLab, vsphere_connect: Callable[[Endpoint], Any]) -> None:
    lab = backup_lab
    lab.api("PUT", f"/api/v1/tenants/{lab.tenant}/backup-repository", {"quota_bytes": 8 * MIB})
    lab.job("nightly", ["acme-dc01"])
    started = time.monotonic()
    run = lab.run("nightly")
    assert run["state"] == "failed"
    error = run["detail"]["vms"]["acme-dc01"]["error"]
    assert "repository quota of 8.0 MiB exceeded" in error, error
    assert time.monotonic() - started < 60, "a quota refusal fails the job at once, not after restic's retries"
    si = vsphere_connect(lab.site)
    wait_for(lambda: _snapshots_on_vm(si, "acme-dc01") == [], 30, "the stopped job's snapshot removed")
    repo = lab.api("GET", f"/api/v1/tenants/{lab.tenant}/backup-repository")
    assert repo["used_bytes"] <= 8 * MIB
    check = _restic(lab, "check")
    assert check.returncode == 0, check.stderr
    events = lab.api("GET", f"/api/v1/events?tenant={lab.tenant}&kind=backup_failed")
    assert events and events[-1]["data"]["severity"] == "error"
    # The console's alarm opens with the failure and clears when the job succeeds again.
    alarms = [a for a in lab.api("GET", "/api/v1/alarms") if a["kind"] == "backup_failed"]
    assert [(a["tenant"], a["data"]["job"], a["severity"]) for a in alarms] == [(lab.tenant, "nightly", "major")]
    assert "repository quota of 8.0 MiB exceeded" in alarms[0]["message"]
    lab.api("PUT", f"/api/v1/tenants/{lab.tenant}/backup-repository", {"quota_bytes": 1 << 30})
    assert lab.run("nightly")["state"] == "succeeded"
    assert not [a for a in lab.api("GET", "/api/v1/alarms") if a["kind"] == "backup_failed"]
    cleared = [a for a in lab.api("GET", "/api/v1/alarms?state=all") if a["kind"] == "backup_failed"]
    assert cleared[0]["cleared_by"].startswith("run "), cleared


def test_a_job_cancelled_mid_stream_leaves_nothing_behind(
    backup_lab: BackupLab, vsphere_connect: Callable[[Endpoint], Any]
) -> None:
    lab = backup_lab
    site_vms.seed(lab.site, ["acme-big"], disk_mib=384)
    lab.job("big", ["acme-big"])
    run = lab.api("POST", f"/api/v1/tenants/{lab.tenant}/backup-jobs/big/run")
    _wait_for_phase(lab, run["id"], "acme-big", "upload")
    time.sleep(1.0)  # restic is sending packs now
    lab.api("POST", f"/api/v1/backup-runs/{run['id']}/cancel")
    done = lab.wait(run["id"])
    assert done["state"] == "cancelled"
    si = vsphere_connect(lab.site)
    wait_for(lambda: _snapshots_on_vm(si, "acme-big") == [], 30, "the backup snapshot removed")
    assert not list((lab.repository() / "locks").iterdir()), "no lock of the stopped restic is left"
    check = _restic(lab, "check")
    assert check.returncode == 0, check.stderr + check.stdout
    again = lab.run("big")
    assert again["state"] == "succeeded", again["message"]


def test_a_transporter_killed_mid_job(backup_lab: BackupLab, vsphere_connect: Callable[[Endpoint], Any]) -> None:
    lab = backup_lab
    site_vms.seed(lab.site, ["acme-big"], disk_mib=384)
    lab.job("big", ["acme-big"])
    run = lab.api("POST", f"/api/v1/tenants/{lab.tenant}/backup-jobs/big/run")
    _wait_for_phase(lab, run["id"], "acme-big", "upload")
    assert lab.transporter.proc is not None
    lab.transporter.proc.send_signal(signal.SIGKILL)
    lab.transporter.proc.wait(10)
    done = lab.wait(run["id"])
    assert done["state"] == "failed"
    si = vsphere_connect(lab.site)
    assert _snapshots_on_vm(si, "acme-big"), "a killed Transporter could not clean up"
    lab.transporter.start(config=lab.transporter.config.read_text().replace("backoff_base = 0.2\n", "", 1))
    wait_for(lambda: _snapshots_on_vm(si, "acme-big") == [], 60, "the restarted Transporter removes the leftover")
    wait_for(lambda: lab.director.online(lab.tenant), 30, "online again")
    check = _restic(lab, "check")
    assert check.returncode == 0, check.stderr + check.stdout


def test_retention_removes_exactly_what_the_policy_says(backup_lab: BackupLab) -> None:
    lab = backup_lab
    lab.api("PUT", f"/api/v1/tenants/{lab.tenant}/backup-repository", {})
    day = 86400
    base = 1_790_000_000 - 1_790_000_000 % day + 12 * 3600  # noon, some day
    times: list[int] = [base - d * day for d in range(10)] + [base + 3600, base + 7200]
    ids: dict[int, str] = {}
    for t in times:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))
        out = subprocess.run(
            [
                "restic",
                "--no-cache",
                "--json",
                "backup",
                "--stdin",
                "--stdin-filename",
                "x",
                "--host",
                "acme-dc01",
                "--tag",
                "tenantry",
                "--time",
                stamp,
            ],
            input=str(t),
            env={
                **os.environ,
                "TZ": "UTC",
                "RESTIC_PASSWORD": lab.password(),
                "RESTIC_REPOSITORY": str(lab.repository()),
            },
            capture_output=True,
            text=True,
            check=True,
        )
        summary = next(json.loads(line) for line in out.stdout.splitlines() if '"summary"' in line)
        ids[t] = summary["snapshot_id"]
    # keep_last 2: the two newest; keep_daily 4: the newest of each of the 4 newest days.
    newest_first = sorted(times, reverse=True)
    expected = set(newest_first[:2])
    days_seen: list[int] = []
    for t in newest_first:
        d = t // day
        if d not in days_seen and len(days_seen) < 4:
            days_seen.append(d)
            expected.add(t)
    run = lab.api(
        "POST",
        f"/api/v1/tenants/{lab.tenant}/backup-repository/retention?vms=acme-dc01",
        {"keep_last": 2, "keep_daily": 4},
    )
    done = lab.wait(run["id"])
    assert done["state"] == "succeeded", done["message"]
    listing = json.loads(_restic(lab, "snapshots", "--json").stdout)
    remaining = {s["short_id"] for s in listing}
    assert remaining == {ids[t][:8] for t in expected}
    assert len(done["detail"]["removed"]) == len(times) - len(expected)


def test_secondary_copy_is_verified(
    tmp_path: Path, client_site: Endpoint, monkeypatch: pytest.MonkeyPatch, make_lab: Callable[..., BackupLab]
) -> None:
    secondary = tmp_path / "second-disk"
    monkeypatch.setenv("TENANTRY_DIRECTOR_SECONDARY_REPOSITORY_ROOT", str(secondary))
    lab = make_lab()
    lab.api("PUT", f"/api/v1/tenants/{lab.tenant}/backup-repository", {"secondary": True, "check_subset": "100%"})
    lab.job("nightly", ["acme-dc01", "acme-app01"], retention={"keep_last": 3})
    run = lab.run("nightly")
    assert run["state"] == "succeeded", run["message"]
    copy = run["detail"]["vms"]["_maintenance"]["copy"]
    assert copy == {"copied": 2, "verified": True, "missing": []}
    second = secondary / lab.api("GET", f"/api/v1/tenants/{lab.tenant}")["id"]
    check = _restic(lab, "check", "--read-data", repo=second)
    assert check.returncode == 0, check.stderr
    originals = {s.get("original") for s in json.loads(_restic(lab, "snapshots", "--json", repo=second).stdout)}
    primary = {s["id"] for s in json.loads(_restic(lab, "snapshots", "--json").stdout)}
    assert primary <= originals
    repo = lab.api("GET", f"/api/v1/tenants/{lab.tenant}/backup-repository")
    assert repo["last_copy_ok"] is True and repo["secondary_used_bytes"] > 0
    assert all(b["copied"] for b in lab.api("GET", f"/api/v1/tenants/{lab.tenant}/backups"))


def test_changed_block_tracking_reads_only_changes(backup_lab: BackupLab) -> None:
    lab = backup_lab
    lab.job("cbt", ["acme-app01"], changed_blocks=True)
    full = lab.run("cbt")["detail"]["vms"]["acme-app01"]
    assert full["ok"] and full["mode"] == "full" and full["bytes_read"] == 64 * MIB
    for offset in (3 * MIB + 5, 40 * MIB):
        site_vms.guest_write(lab.site, "acme-app01", offset, os.urandom(64 << 10))
    inc = lab.run("cbt")["detail"]["vms"]["acme-app01"]
    assert inc["ok"] and inc["mode"] == "changed-blocks"
    assert inc["bytes_read"] == 2 * 4 * MIB, "only the two changed segments are read from the datastore"
    before = site_vms.disk_sha256(lab.site, "acme-app01")
    done = lab.restore(vm="acme-app01", name="acme-app01-copy")
    assert done["state"] == "succeeded", done["message"]
    assert site_vms.disk_sha256(lab.site, "acme-app01-copy", "acme-app01-copy/acme-app01-copy-flat.vmdk") == before


def test_a_tenant_with_its_own_repository(tmp_path: Path, make_lab: Callable[..., BackupLab]) -> None:
    """A remote tenant with its own standalone instance: backups stay at its site; the Director sees their status
    and the repository usage."""
    own = tmp_path / "site-repository"
    lab = make_lab(site_repository=own)
    lab.api("PUT", f"/api/v1/tenants/{lab.tenant}/backup-repository", {"location": "site"})
    lab.job("nightly", ["acme-dc01"], retention={"keep_last": 1})
    first = lab.run("nightly")
    assert first["state"] == "succeeded", first["message"]
    assert (own / "config").exists()
    assert not (lab.director.state / "repositories").exists() or not any(
        (lab.director.state / "repositories").iterdir()
    )
    assert not (lab.director.state / "repository-keys").exists(), "the Director never holds this tenant's key"
    repo = lab.api("GET", f"/api/v1/tenants/{lab.tenant}/backup-repository")
    assert repo["location"] == "site" and repo["used_bytes"] > 0 and repo["path"] is None
    backups = lab.api("GET", f"/api/v1/tenants/{lab.tenant}/backups")
    assert [b["location"] for b in backups] == ["site"] and backups[0]["uplink_bytes"] is None
    overview = lab.api("GET", "/api/v1/backups/overview")
    assert overview[0]["location"] == "site" and overview[0]["last_run"]["state"] == "succeeded"
    second = lab.run("nightly")
    assert second["state"] == "succeeded", second["message"]
    backups = lab.api("GET", f"/api/v1/tenants/{lab.tenant}/backups")
    assert len(backups) == 1 and backups[0]["id"].startswith(second["detail"]["vms"]["acme-dc01"]["snapshot_id"])
    before = site_vms.disk_sha256(lab.site, "acme-dc01")
    done = lab.restore(vm="acme-dc01", name="acme-dc01-copy")
    assert done["state"] == "succeeded", done["message"]
    assert site_vms.disk_sha256(lab.site, "acme-dc01-copy", "acme-dc01-copy/acme-dc01-copy-flat.vmdk") == before

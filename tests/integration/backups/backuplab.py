"""A Director, an enrolled Transporter and a client-site vCenter simulator, all real processes on loopback.

The Transporter's ``[backup.vsphere]`` points at the client-mode simulator (the tenant's own
vCenter, which only the Transporter talks to); the Director keeps the tenant's repository under
the test's temporary directory.  Helpers start jobs through the Director's REST API and wait for
their runs, exactly as an operator or a playbook would.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from integration.services.services_harness import DirectorProc, TransporterProc, enroll_and_run, wait_for

from tenantry.lab.simulator import Endpoint


def transporter_config(
    site: Endpoint,
    root: Path,
    *,
    staging_bytes: int | None = None,
    site_repository: Path | None = None,
    staging_dir: Path | None = None,
) -> str:
    password = root / "vcenter.password"
    password.write_text(site.password)
    password.chmod(0o600)
    lines = [
        "[backup]",
        f"staging_dir = {str(staging_dir or root / 'staging')!r}",
    ]
    if staging_bytes is not None:
        lines.append(f"staging_bytes = {staging_bytes}")
    if site_repository is not None:
        lines.append(f"site_repository = {str(site_repository)!r}")
    lines += [
        "[backup.vsphere]",
        f"hostname = {site.hostname!r}",
        f"port = {site.port}",
        f"username = {site.username!r}",
        f"password_file = {str(password)!r}",
        f"ca_file = {str(site.ca_file)!r}",
        "",
    ]
    return "\n".join(lines)


@dataclass
class BackupLab:
    root: Path
    director: DirectorProc
    transporter: TransporterProc
    site: Endpoint
    tenant: str

    def api(self, method: str, path: str, body: Any = None) -> Any:
        return self.director.api(method, path, body)

    def job(self, name: str, vms: list[str], **spec: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.api(
            "PUT", f"/api/v1/tenants/{self.tenant}/backup-jobs/{name}", {"vms": vms, **spec}
        )
        return result

    def run(self, name: str, vms: list[str] | None = None, timeout: float = 300, poll: float = 0.1) -> dict[str, Any]:
        body = {"vms": vms} if vms else None
        run = self.api("POST", f"/api/v1/tenants/{self.tenant}/backup-jobs/{name}/run", body)
        return self.wait(run["id"], timeout, poll)

    def wait(self, run_id: int, timeout: float = 300, poll: float = 0.1) -> dict[str, Any]:
        """Poll the run every ``poll`` seconds (each poll is a new HTTPS connection: a benchmark polls slowly)."""

        def done() -> dict[str, Any] | None:
            run: dict[str, Any] = self.api("GET", f"/api/v1/backup-runs/{run_id}")
            return run if run["state"] != "running" else None

        result: dict[str, Any] = wait_for(done, timeout, f"backup run {run_id}", interval=poll)
        return result

    def restore(self, timeout: float = 300, poll: float = 0.1, **spec: Any) -> dict[str, Any]:
        run = self.api("POST", f"/api/v1/tenants/{self.tenant}/restores", spec)
        return self.wait(run["id"], timeout, poll)

    def repository(self) -> Path:
        tenant = self.api("GET", f"/api/v1/tenants/{self.tenant}")
        return self.director.state / "repositories" / str(tenant["id"])

    def password(self) -> str:
        tenant = self.api("GET", f"/api/v1/tenants/{self.tenant}")
        return (self.director.state / "repository-keys" / f"{tenant['id']}.key").read_text().strip()


def start_lab(
    root: Path,
    site: Endpoint,
    tenant: str = "acme",
    *,
    seeds: dict[str, Any] | None = None,
    staging_bytes: int | None = None,
    site_repository: Path | None = None,
    staging_dir: Path | None = None,
) -> BackupLab:
    # Heartbeats of 2 s (not the services tests' 0.3 s): bulk transfers on a loaded 2-core machine must not
    # look like a dead peer.
    director = DirectorProc(root, {"heartbeat_interval": 2.0, **(seeds or {})}).start()
    transporter = TransporterProc(root, tenant)
    created = director.create_tenant(tenant)
    result = transporter.enroll(director, created["credentials"]["enrollment_key"])
    assert result.returncode == 0, result.stderr
    transporter.start(
        config=transporter_config(
            site, root, staging_bytes=staging_bytes, site_repository=site_repository, staging_dir=staging_dir
        )
    )
    wait_for(lambda: director.online(tenant), 30, f"{tenant} online")
    return BackupLab(root, director, transporter, site, tenant)


def now() -> float:
    return time.time()


__all__ = ["BackupLab", "enroll_and_run", "start_lab", "transporter_config"]

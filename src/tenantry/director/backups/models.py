"""Backup job definitions, repository settings, restores and runs as the API and the store see them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, field_validator

from tenantry.director.backups.schedule import Schedule, ScheduleError

JobName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
VmName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.()-]{0,78}$")]
Subset = Annotated[str, StringConstraints(pattern=r"^(\d{1,3}(\.\d{1,2})?%|\d+/\d+|\d+[kKmMgGtT]?)$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=200)]


def _cron(value: str | None) -> str | None:
    """A five-field cron expression, normalized; empty means none."""
    if value is None or not value.strip():
        return None
    try:
        Schedule.parse(value)
    except ScheduleError as exc:
        raise ValueError(str(exc)) from None
    return " ".join(value.split())


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Retention(_Strict):
    """restic's ``--keep-*`` per VM; all zero keeps everything."""

    keep_last: int = Field(default=0, ge=0, le=10000)
    keep_hourly: int = Field(default=0, ge=0, le=10000)
    keep_daily: int = Field(default=0, ge=0, le=10000)
    keep_weekly: int = Field(default=0, ge=0, le=10000)
    keep_monthly: int = Field(default=0, ge=0, le=10000)
    keep_yearly: int = Field(default=0, ge=0, le=1000)

    def flags(self) -> dict[str, int]:
        return {k.removeprefix("keep_"): v for k, v in self.model_dump().items() if v}


class JobSpec(_Strict):
    vms: list[VmName] = Field(min_length=1, max_length=1000)
    schedule: str | None = Field(
        None, description="five-field cron expression (minute hour day month weekday, UTC); none: on demand only"
    )
    retention: Retention = Field(default_factory=Retention)
    changed_blocks: bool = Field(default=False, description="read only what vSphere's changed-block tracking reports")
    enabled: bool = True

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        return _cron(value)

    @field_validator("vms")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a VM is listed twice")
        return value


class JobOut(JobSpec):
    model_config = ConfigDict(extra="ignore")

    name: str
    tenant: str
    created_at: float
    updated_at: float
    last_run_id: int | None = None
    next_run_at: float | None = None


class RepositorySpec(_Strict):
    location: Literal["msp", "site"] = Field(
        "msp",
        description="msp: the tenant's repository at the MSP, through the uplink; site: the tenant's own "
        "repository at its site (its own standalone instance; the Director sees status and usage only)",
    )
    quota_bytes: int | None = Field(
        default=None, ge=1 << 20, le=1 << 60, description="write-time quota; none: unlimited"
    )
    secondary: bool = Field(
        default=False, description="3-2-1: copy every snapshot into the secondary repository, verified"
    )
    check_subset: Subset = Field(default="5%", description="restic check --read-data-subset for scheduled checks")
    check_schedule: str | None = Field(
        default="30 3 * * *", description="cron (UTC) of the repository check; none: never"
    )

    @field_validator("check_schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        return _cron(value)


class RepositoryOut(RepositorySpec):
    model_config = ConfigDict(extra="ignore")

    tenant: str
    path: str | None = None
    used_bytes: int = 0
    secondary_used_bytes: int | None = None
    snapshots: int = 0
    last_check_at: float | None = None
    last_check_ok: bool | None = None
    last_check_message: str | None = None
    last_copy_at: float | None = None
    last_copy_ok: bool | None = None
    last_copy_message: str | None = None
    last_retention_at: float | None = None


class VCenterSpec(_Strict):
    """A vCenter the Director restores into (production); the password is used for this run only."""

    hostname: Text
    port: int = Field(default=443, ge=1, le=65535)
    username: Text
    password: SecretStr = Field(max_length=512)
    ca_file: str | None = Field(default=None, max_length=4096)
    insecure: bool = False
    datacenter: Text | None = None


class RestoreSpec(_Strict):
    vm: VmName
    snapshot: Annotated[str, StringConstraints(pattern=r"^([0-9a-f]{8,64}|latest)$")] = "latest"
    destination: Literal["site", "production"] = "site"
    name: VmName | None = Field(default=None, description="the restored VM's name (default: the backed-up VM's name)")
    replace: bool = Field(default=False, description="remove an existing VM of that name first")
    datastore: Text | None = None
    folder: Text | None = None
    resource_pool: Text | None = None
    host: Text | None = None
    power_on: bool = False
    network_map: dict[Text, Text] = Field(default_factory=dict, max_length=16)
    vcenter: VCenterSpec | None = Field(default=None, description="destination production: where to restore")

    def placement(self) -> dict[str, Any]:
        """Where the restored VM goes (the fields a restore target has beside its name), for either path."""
        return {
            "datastore": self.datastore,
            "folder": self.folder,
            "resource_pool": self.resource_pool,
            "host": self.host,
            "power_on": self.power_on,
            "replace": self.replace,
            "network_map": dict(self.network_map),
        }


class RunRequest(_Strict):
    vms: list[VmName] | None = Field(default=None, max_length=1000, description="a subset of the job's VMs")


class RunOut(BaseModel):
    id: int
    tenant: str
    kind: str
    job: str | None = None
    state: str
    trigger: str
    started_at: float
    finished_at: float | None = None
    message: str = ""
    detail: dict[str, Any] = Field(default_factory=dict)
    progress: dict[str, Any] = Field(default_factory=dict)


class SnapshotOut(BaseModel):
    id: str
    vm: str
    time: float
    job: str | None = None
    run_id: int | None = None
    location: str
    total_bytes: int | None = None
    added_bytes: int | None = None
    uplink_bytes: int | None = None
    copied: bool = False

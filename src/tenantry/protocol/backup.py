"""Payloads of backup and restore jobs on the uplink (the Director opens every stream).

=======  =========================  ================================================================
method   path                       body → answer
=======  =========================  ================================================================
POST     /v1/jobs/backup            BackupJob → 200, then NDJSON JobEvent lines, the last a result
POST     /v1/jobs/restore           RestoreJob → 200, then NDJSON JobEvent lines, the last a result
POST     /v1/jobs/<id>/carrier      (none) → 200; the stream then carries one restic connection:
                                    its requests in the answer body, the repository's replies in the
                                    request body (see tenantry.director.repository.carrier)
GET      /v1/jobs/janitor           → JobEvent result: leftover backup snapshots removed
=======  =========================  ================================================================
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints

JobId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{8,32}$")]
VmName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.()-]{0,78}$")]
SnapshotId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{8,64}$")]
Tag = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:=-]{1,80}$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class _Msg(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RepositoryAccess(_Msg):
    """How restic reaches the repository during this job.

    ``msp``: the tenant's repository at the MSP, through this job's carriers (the Transporter's
    loopback endpoint, ``token`` in its URL).  ``site``: the Transporter's own repository at the
    client site (remote tenants with their own standalone instance); the Director never holds
    its password.
    """

    location: Literal["msp", "site"] = "msp"
    password: SecretStr | None = Field(default=None, max_length=512)
    token: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16,128}$")] | None = None


class BackupJob(_Msg):
    job_id: JobId
    vm: VmName
    repository: RepositoryAccess
    parent: SnapshotId | None = None
    changed_blocks: bool = False
    tags: list[Tag] = Field(default_factory=list, max_length=16)
    # A repository at the site: its owner applies retention there (restic --keep-<what> N).
    retention: dict[Annotated[str, StringConstraints(pattern=r"^(last|hourly|daily|weekly|monthly|yearly)$")], int] = (
        Field(default_factory=dict, max_length=6)
    )


class RestoreTargetSpec(_Msg):
    name: VmName
    datastore: Name | None = None
    folder: Name | None = None
    resource_pool: Name | None = None
    host: Name | None = None
    power_on: bool = False
    replace: bool = False
    network_map: dict[Name, Name] = Field(default_factory=dict, max_length=16)


class RestoreJob(_Msg):
    job_id: JobId
    repository: RepositoryAccess
    snapshot: SnapshotId
    vm_dir: Annotated[str, StringConstraints(pattern=r"^/[A-Za-z0-9][A-Za-z0-9 _.()-]{0,78}$")]
    target: RestoreTargetSpec


class JobEvent(_Msg):
    """One line of a job's answer: progress, or the result (always last)."""

    event: Literal["progress", "result"]
    phase: Annotated[str, StringConstraints(max_length=40)] = ""
    message: Annotated[str, StringConstraints(max_length=2000)] = ""
    bytes_done: int | None = Field(default=None, ge=0)
    bytes_total: int | None = Field(default=None, ge=0)
    ok: bool | None = None
    error: Annotated[str, StringConstraints(max_length=2000)] | None = None
    result: dict[str, Any] = Field(default_factory=dict)

"""Request and response bodies of the REST API (pydantic): the OpenAPI document is generated from them.

A tenant's declared fields are defined once (the ``Annotated`` types below) and used by the
create, patch and output models.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from tenantry.protocol.messages import split_target

NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"

TenantName = Annotated[str, Field(pattern=NAME_PATTERN, description="unique, DNS-label style")]
Description = Annotated[str, Field(max_length=1000, description="free text")]
Contact = Annotated[str, Field(max_length=500, description="who to call at the tenant")]
WorkloadQuota = Annotated[int, Field(ge=0, le=1_000_000, description="protected workloads allowed (0: none set)")]
TenantKind = Literal["remote", "local"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DirectConnectSpec(_In):
    address: str = Field(description="host:port of the Transporter's Direct Connect listener (default port 9446)")
    auth: Literal["certificate", "psk"] = "certificate"
    psk: SecretStr | None = Field(None, min_length=16, max_length=256, description="write-only; never returned")

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        split_target(value)
        return value


class TenantCreate(_In):
    name: TenantName
    kind: TenantKind = Field("remote", description="remote: own Transporter; local: MSP-managed")
    description: Description = ""
    contact: Contact = ""
    workload_quota: WorkloadQuota = 0
    direct_connect: DirectConnectSpec | None = None

    @field_validator("direct_connect")
    @classmethod
    def _psk(cls, value: DirectConnectSpec | None) -> DirectConnectSpec | None:
        if value is not None and value.auth == "psk" and value.psk is None:
            raise ValueError("auth 'psk' needs psk")
        return value


class TenantPatch(_In):
    description: Description | None = None
    contact: Contact | None = None
    workload_quota: WorkloadQuota | None = None
    direct_connect: DirectConnectSpec | None = None


class DirectConnectOut(BaseModel):
    address: str
    auth: str
    psk_set: bool


class TenantStatus(BaseModel):
    online: bool
    state: Literal["online", "offline", "awaiting_enrollment", "revoked", "local"]
    since: float | None
    last_heartbeat: float | None
    address: str | None
    version: str | None
    hostname: str | None
    enrolled: bool
    director: str | None = Field(None, description="several Directors: the one holding the session")


class TenantOut(BaseModel):
    id: str
    name: str
    kind: str
    description: str
    contact: str
    workload_quota: int
    created_at: float
    updated_at: float
    enrolled_at: float | None
    revoked_at: float | None
    direct_connect: DirectConnectOut | None
    status: TenantStatus


class Credentials(BaseModel):
    enrollment_key: str = Field(description="everything a Transporter needs: tnt1_… (shown once)")
    tenant_id: str
    token: str = Field(description="the one-time secret inside the key (shown once)")
    ca_sha256: str
    setup_url: str
    expires_at: float


class TenantCreated(BaseModel):
    tenant: TenantOut
    credentials: Credentials | None = Field(description="remote tenants only; returned exactly once")


class EnrollRequest(_In):
    tenant_id: str = Field(max_length=64)
    token: SecretStr = Field(max_length=256)
    csr_pem: str = Field(max_length=16384)


class EnrollResponse(BaseModel):
    certificate_pem: str
    ca_pem: str
    uplink_port: int
    settings: dict[str, Any]


class EnrollInfo(BaseModel):
    version: str
    setup_port: int
    uplink_port: int
    ca_sha256: str


class EnrollCa(BaseModel):
    ca_pem: str
    ca_sha256: str


class ConnectionCheck(BaseModel):
    tenant_id: str
    known: bool
    enrolled: bool
    online: bool


class SettingsOut(BaseModel):
    values: dict[str, Any]
    registry: dict[str, dict[str, Any]]


class SettingsChanged(BaseModel):
    values: dict[str, Any]
    changed: list[str]
    restart_required: list[str]


class SettingValue(BaseModel):
    key: str
    value: Any
    definition: dict[str, Any]


class EventOut(BaseModel):
    id: int
    ts: float
    kind: str
    tenant_id: str | None
    message: str
    data: dict[str, Any]


class TunnelCreate(_In):
    target: str = Field(description="host:port on the Transporter's allow-list")
    via: Literal["uplink", "direct"] = Field("uplink", description="over the uplink session or Direct Connect")
    listen_port: int = Field(0, ge=0, le=65535, description="local port for MSP tools (0: pick one)")

    @field_validator("target")
    @classmethod
    def _target(cls, value: str) -> str:
        split_target(value)
        return value


class TunnelOut(BaseModel):
    id: str
    tenant: str
    target: str
    via: str
    host: str
    port: int
    created_at: float
    connections: int
    raw_connections: int = Field(
        0, description="Direct Connect: connections whose bytes went on their own TLS connection, not HTTP/2"
    )
    director: str | None = Field(None, description="several Directors: the one the tunnel listens on")


class Health(BaseModel):
    status: str
    version: str
    tenants_online: int
    uplink_handshakes: int = Field(description="mutual-TLS uplink handshakes completed since start")
    uplink_handshakes_peak: int = Field(description="most uplink handshakes completed within any 1 s window")
    director_id: str = Field("", description="this Director's id")
    directors_alive: int = Field(1, description="Directors sharing the database whose heartbeat is current")
    tenants_online_cluster: int | None = Field(None, description="several Directors: tenants online on any of them")
    uplink_admitted_peak: int = Field(
        0, description="most uplink connections admitted to a handshake within any 1 s window"
    )
    uplink_throttled: int = Field(
        description="connections refused by max_handshakes_per_second (or max_sessions) since start, each told "
        "when to come back"
    )


class StatusOut(BaseModel):
    version: str
    started_at: float
    setup_port: int
    uplink_ports: list[int]
    tenants: dict[str, TenantStatus]
    next_after: str | None = Field(
        None, description="with limit: the name to pass as after= for the next page; null on the last page"
    )

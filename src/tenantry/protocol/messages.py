"""Typed payloads exchanged on uplink and Direct Connect streams (JSON bodies).

Paths served by the Transporter (it is always the HTTP/2 server side):

=======  ====================  ==========================================
method   path                  body → answer
=======  ====================  ==========================================
GET      /v1/info              → SiteInfo
GET      /v1/dashboard         → Dashboard
PUT      /v1/settings          TransporterSettings → Ack
POST     /v1/commands          CommandRequest → CommandResult
POST     /v1/csr               → CsrResponse (new key kept pending)
PUT      /v1/certificate       CertificateInstall → Ack
POST     /v1/tunnel-check      TunnelCheck → TunnelCheckResult
CONNECT  host:port             a raw byte tunnel (allow-list enforced)
=======  ====================  ==========================================
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

MAX_TARGET_LEN = 261  # host (253) + ":" + port

# Every string a peer sends is bounded and, where it is an identifier, shaped like one: a
# Transporter's answers end up in the Director's log, its store and its API answers.
TenantId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
Token = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,64}$")]  # printable, no spaces (versions, ids)
HostName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,253}$")]
Text = Annotated[str, StringConstraints(max_length=2000)]
PathText = Annotated[str, StringConstraints(max_length=4096)]
Pem = Annotated[str, StringConstraints(max_length=16384)]


class _Msg(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TransporterSettings(_Msg):
    """The Expert Settings a Transporter acts on; pushed on connect and on change."""

    setup_port: int = Field(ge=1, le=65535)
    uplink_port: int = Field(ge=1, le=65535)
    heartbeat_interval: float = Field(gt=0)
    heartbeat_misses: int = Field(ge=1)
    reconnect_backoff_cap: float = Field(gt=0)
    max_concurrent_tasks: int = Field(ge=1, le=1024)


class Ack(_Msg):
    ok: bool = True
    message: str = ""


class SiteInfo(_Msg):
    tenant_id: TenantId
    version: Token
    hostname: HostName
    started_at: float
    direct_connect_port: int | None = Field(None, ge=1, le=65535)
    # The Expert Settings this Transporter acts on now (absent from older Transporters): the
    # Director pushes its settings on connect only when they differ.
    settings: TransporterSettings | None = None


class RepositorySpace(_Msg):
    path: PathText
    total_bytes: int | None = None
    free_bytes: int | None = None
    error: Text | None = None


class TaskInfo(_Msg):
    id: Token
    command: Token
    started_at: float


class Dashboard(_Msg):
    site: SiteInfo
    repositories: list[RepositorySpace] = Field(max_length=256)
    tasks: list[TaskInfo] = Field(max_length=1024)
    max_concurrent_tasks: int = Field(ge=1, le=1024)


class CommandRequest(_Msg):
    command: str = Field(min_length=1, max_length=64)
    args: dict[str, Any] = Field(default_factory=dict)


class CommandResult(_Msg):
    task_id: Token
    command: Token
    ok: bool
    result: dict[str, Any] = Field(default_factory=dict)
    error: Text | None = None


class CsrResponse(_Msg):
    csr_pem: Pem


class CertificateInstall(_Msg):
    certificate_pem: Pem
    ca_pem: Pem


class TunnelCheck(_Msg):
    target: str = Field(min_length=3, max_length=MAX_TARGET_LEN)


class TunnelCheckResult(_Msg):
    target: Annotated[str, StringConstraints(max_length=MAX_TARGET_LEN)]
    allowed: bool
    message: Text = ""


class ErrorBody(_Msg):
    error: Text


def split_target(target: str) -> tuple[str, int]:
    """``host:port`` / ``[v6]:port`` → (host, port); raises ``ValueError`` with a clear message."""
    if len(target) > MAX_TARGET_LEN:
        raise ValueError("target too long")
    host, sep, port_s = target.rpartition(":")
    if not sep or not host or not port_s.isdigit():
        raise ValueError(f"target {target!r} is not host:port")
    port = int(port_s)
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} out of range 1..65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host.lower(), port


def bad_fields(exc: ValidationError) -> str:
    """The fields a validation refused, by name only (a peer's values never reach a log or an answer)."""
    return ", ".join(sorted({".".join(map(str, e["loc"])) or "body" for e in exc.errors()}))

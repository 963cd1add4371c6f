"""The Director's HTTPS API on the setup port (default 4443): REST API, OpenAPI document, enrollment.

Admin endpoints (``/api/v1/tenants``, ``/settings``, ``/events``, ``/status``)
need the admin token: ``Authorization: Bearer <token>`` or HTTP basic auth
with user ``admin`` and the token as password.  Enrollment endpoints
(``/api/v1/enroll*``) authenticate with the one-time credentials instead.
See docs/director-api.md for every request and answer.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Annotated, Any, Literal

import uvicorn
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

import tenantry
from tenantry.director import settings as settings_registry
from tenantry.director.service import Director, DirectorError, Issued
from tenantry.director.store import TenantRow
from tenantry.protocol.channel import ChannelClosed, StreamError
from tenantry.protocol.identity import is_tenant_id
from tenantry.protocol.messages import CommandRequest, CommandResult, Dashboard, split_target

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20
NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


# ---------------------------------------------------------------------------- models
class DirectConnectSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: str = Field(description="host:port of the Transporter's Direct Connect listener (default port 9446)")
    auth: Literal["certificate", "psk"] = "certificate"
    psk: SecretStr | None = Field(None, min_length=16, max_length=256, description="write-only; never returned")

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        split_target(value)
        return value


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="unique, DNS-label style")
    kind: Literal["remote", "local"] = Field("remote", description="remote: own Transporter; local: MSP-managed")
    description: str = Field("", max_length=1000)
    contact: str = Field("", max_length=500)
    workload_quota: int = Field(0, ge=0, le=1_000_000, description="protected workloads allowed (0: none set)")
    direct_connect: DirectConnectSpec | None = None

    @field_validator("direct_connect")
    @classmethod
    def _psk(cls, value: DirectConnectSpec | None) -> DirectConnectSpec | None:
        if value is not None and value.auth == "psk" and value.psk is None:
            raise ValueError("auth 'psk' needs psk")
        return value


class TenantPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(None, max_length=1000)
    contact: str | None = Field(None, max_length=500)
    workload_quota: int | None = Field(None, ge=0, le=1_000_000)
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


class EnrollRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

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


class TunnelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

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


class Health(BaseModel):
    status: str
    version: str
    tenants_online: int
    uplink_handshakes: int = Field(description="mutual-TLS uplink handshakes completed since start")
    uplink_handshakes_peak: int = Field(description="most uplink handshakes completed within any 1 s window")
    uplink_throttled: int = Field(description="connections closed by max_handshakes_per_second since start")


class StatusOut(BaseModel):
    version: str
    started_at: float
    setup_port: int
    uplink_ports: list[int]
    tenants: dict[str, TenantStatus]


# ---------------------------------------------------------------------------- helpers
def tenant_out(director: Director, row: TenantRow) -> TenantOut:
    dc = row.direct_connect
    return TenantOut(
        id=row.id,
        name=row.name,
        kind=row.kind,
        description=row.description,
        contact=row.contact,
        workload_quota=row.workload_quota,
        created_at=row.created_at,
        updated_at=row.updated_at,
        enrolled_at=row.enrolled_at,
        revoked_at=row.revoked_at,
        direct_connect=DirectConnectOut(address=dc["address"], auth=dc["auth"], psk_set=bool(dc.get("psk")))
        if dc
        else None,
        status=TenantStatus.model_validate(director.status(row)),
    )


def _dc_stored(spec: DirectConnectSpec | None) -> dict[str, Any] | None:
    if spec is None:
        return None
    out: dict[str, Any] = {"address": spec.address, "auth": spec.auth}
    if spec.psk is not None:
        out["psk"] = spec.psk.get_secret_value()
    return out


def _credentials(director: Director, issued: Issued) -> Credentials:
    return Credentials(
        enrollment_key=issued.enrollment_key,
        tenant_id=issued.tenant.id,
        token=issued.secret,
        ca_sha256=director.authority.ca_sha256,
        setup_url=director.public_url(),
        expires_at=issued.expires_at,
    )


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes (declared or streamed) with 413."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", []):
            if key == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                await _send_json(send, 413, {"detail": f"request body larger than {self.limit} bytes"})
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await _send_json(send, 413, {"detail": f"request body larger than {self.limit} bytes"})


class _TooLarge(Exception):
    pass


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    import json

    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": data})


# ---------------------------------------------------------------------------- admin authentication
class _UnauthorizedError(Exception):
    pass


def _admin(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    """Bearer <token>, or basic auth as ``admin`` with the token as password (constant-time compare)."""
    token: str = request.app.state.director.admin_token
    ok = False
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer":
            ok = hmac.compare_digest(value.strip().encode(), token.encode())
        elif scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value.strip()).decode().partition(":")
            except ValueError:
                user, password = "", ""
            ok = user == "admin" and hmac.compare_digest(password.encode(), token.encode())
    if not ok:
        raise _UnauthorizedError


Admin = Annotated[None, Depends(_admin)]


# ---------------------------------------------------------------------------- app
def create_app(director: Director) -> FastAPI:
    app = FastAPI(
        title="tenantry Director API",
        version=tenantry.__version__,
        description="Tenants, enrollment, Expert Settings, status, events and tunnels. See docs/director-api.md.",
    )
    app.state.director = director

    @app.exception_handler(DirectorError)
    async def _director_error(request: Request, exc: DirectorError) -> JSONResponse:
        headers = {"Retry-After": "60"} if exc.status == 429 else None
        return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            problems.append(f"{loc or 'body'}: {err.get('msg')}")
        return JSONResponse({"detail": "invalid request: " + "; ".join(problems)}, status_code=422)

    @app.exception_handler(_UnauthorizedError)
    async def _unauthorized(request: Request, exc: _UnauthorizedError) -> JSONResponse:
        return JSONResponse(
            {"detail": "admin authentication required (Bearer token or basic auth as admin)"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="tenantry", Basic realm="tenantry"'},
        )

    # ---------------------------------------------------------------- public
    @app.get("/api/v1/health", tags=["status"])
    async def health() -> Health:
        return Health(
            status="ok",
            version=tenantry.__version__,
            tenants_online=len(director.hub.sessions),
            uplink_handshakes=director.hub.handshakes,
            uplink_handshakes_peak=director.hub.peak_handshakes,
            uplink_throttled=director.hub.throttled,
        )

    @app.get("/api/v1/enroll/info", tags=["enrollment"])
    async def enroll_info() -> EnrollInfo:
        return EnrollInfo(
            version=tenantry.__version__,
            setup_port=director.setup_port,
            uplink_port=director.settings.uplink_port,
            ca_sha256=director.authority.ca_sha256,
        )

    @app.get("/api/v1/enroll/ca", tags=["enrollment"])
    async def enroll_ca() -> JSONResponse:
        return JSONResponse({"ca_pem": director.authority.ca_pem, "ca_sha256": director.authority.ca_sha256})

    @app.post("/api/v1/enroll", tags=["enrollment"])
    async def enroll(body: EnrollRequest, request: Request) -> EnrollResponse:
        source = request.client.host if request.client else "?"
        result = await director.enroll(
            tenant_id=body.tenant_id, secret=body.token.get_secret_value(), csr_pem=body.csr_pem, source=source
        )
        return EnrollResponse(**result.__dict__)

    @app.get("/api/v1/enroll/check/{tenant_id}", tags=["enrollment"])
    async def connection_check(tenant_id: str) -> ConnectionCheck:
        row = director.store.tenant(tenant_id) if is_tenant_id(tenant_id) else None
        return ConnectionCheck(
            tenant_id=tenant_id,
            known=row is not None and row.revoked_at is None,
            enrolled=row is not None and row.enrolled_at is not None and row.revoked_at is None,
            online=row is not None and tenant_id in director.hub.sessions,
        )

    # ---------------------------------------------------------------- tenants
    @app.get("/api/v1/tenants", tags=["tenants"])
    async def list_tenants(_: Admin, name: str | None = None) -> list[TenantOut]:
        rows = director.store.tenants()
        if name is not None:
            rows = [r for r in rows if r.name == name]
        return [tenant_out(director, r) for r in rows]

    @app.post("/api/v1/tenants", status_code=201, tags=["tenants"])
    async def create_tenant(_: Admin, body: TenantCreate) -> TenantCreated:
        result = await director.create_tenant(
            name=body.name,
            kind=body.kind,
            description=body.description,
            contact=body.contact,
            workload_quota=body.workload_quota,
            direct_connect=_dc_stored(body.direct_connect),
        )
        if isinstance(result, Issued):
            return TenantCreated(tenant=tenant_out(director, result.tenant), credentials=_credentials(director, result))
        return TenantCreated(tenant=tenant_out(director, result), credentials=None)

    @app.get("/api/v1/tenants/{name}", tags=["tenants"])
    async def get_tenant(_: Admin, name: str) -> TenantOut:
        return tenant_out(director, director.tenant_or_404(name))

    @app.patch("/api/v1/tenants/{name}", tags=["tenants"])
    async def patch_tenant(_: Admin, name: str, body: TenantPatch) -> TenantOut:
        changes = body.model_dump(exclude_unset=True)
        if "direct_connect" in changes:
            current = director.tenant_or_404(name).direct_connect or {}
            spec = body.direct_connect
            stored = _dc_stored(spec)
            if stored is not None and spec is not None and spec.auth == "psk" and "psk" not in stored:
                if not current.get("psk"):
                    raise DirectorError(422, "direct_connect.auth 'psk' needs psk")
                stored["psk"] = current["psk"]
            changes["direct_connect"] = stored
        return tenant_out(director, director.update_tenant(name, changes))

    @app.delete("/api/v1/tenants/{name}", tags=["tenants"])
    async def delete_tenant(_: Admin, name: str) -> TenantOut:
        row = director.revoke(name, remove=True)
        out = tenant_out(director, row)
        out.revoked_at = out.revoked_at or out.updated_at
        return out

    @app.post("/api/v1/tenants/{name}/revoke", tags=["tenants"])
    async def revoke_tenant(_: Admin, name: str) -> TenantOut:
        director.revoke(name, remove=False)
        return tenant_out(director, director.tenant_or_404(name))

    @app.post("/api/v1/tenants/{name}/credentials", status_code=201, tags=["tenants"])
    async def new_credentials(_: Admin, name: str) -> Credentials:
        return _credentials(director, await director.reissue_credentials(name))

    @app.post("/api/v1/tenants/{name}/renew", tags=["tenants"])
    async def renew(_: Admin, name: str) -> TenantOut:
        await director.renew(name)
        return tenant_out(director, director.tenant_or_404(name))

    @app.get("/api/v1/tenants/{name}/status", tags=["status"])
    async def tenant_status(_: Admin, name: str) -> TenantStatus:
        return TenantStatus.model_validate(director.status(director.tenant_or_404(name)))

    @app.get("/api/v1/tenants/{name}/dashboard", tags=["status"])
    async def dashboard(_: Admin, name: str) -> Dashboard:
        _row, session = director.session_for(name)
        resp = await _uplink(
            session.channel.request("GET", "/v1/dashboard", timeout=15, limit=director.settings.max_message_bytes)
        )
        if resp.status != 200:
            raise DirectorError(502, f"Transporter answered HTTP {resp.status}")
        return Dashboard.model_validate_json(resp.body)

    @app.post("/api/v1/tenants/{name}/commands", tags=["tenants"])
    async def command(_: Admin, name: str, body: CommandRequest) -> JSONResponse:
        _row, session = director.session_for(name)
        resp = await _uplink(
            session.channel.request(
                "POST",
                "/v1/commands",
                body.model_dump_json().encode(),
                timeout=3600,
                limit=director.settings.max_message_bytes,
            )
        )
        if resp.status == 200:
            return JSONResponse(CommandResult.model_validate_json(resp.body).model_dump())
        return JSONResponse(_error_body(resp.body, resp.status), status_code=resp.status if resp.status >= 400 else 502)

    # ---------------------------------------------------------------- tunnels
    @app.get("/api/v1/tenants/{name}/tunnels", tags=["tunnels"])
    async def list_tunnels(_: Admin, name: str) -> list[TunnelOut]:
        row = director.tenant_or_404(name)
        return [TunnelOut(**t.describe()) for t in director.tunnels.of(row.id)]

    @app.post("/api/v1/tenants/{name}/tunnels", status_code=201, tags=["tunnels"])
    async def create_tunnel(_: Admin, name: str, body: TunnelCreate) -> TunnelOut:
        row = director.tenant_or_404(name)
        tunnel = await director.tunnels.create(row, body.target, body.via, body.listen_port)
        return TunnelOut(**tunnel.describe())

    @app.delete("/api/v1/tenants/{name}/tunnels/{tunnel_id}", tags=["tunnels"])
    async def delete_tunnel(_: Admin, name: str, tunnel_id: str) -> TunnelOut:
        row = director.tenant_or_404(name)
        tunnel = await director.tunnels.delete(row.id, tunnel_id)
        return TunnelOut(**tunnel.describe())

    # ---------------------------------------------------------------- settings, events, status
    @app.get("/api/v1/settings", tags=["settings"])
    async def get_settings(_: Admin) -> SettingsOut:
        return SettingsOut(values=director.settings.model_dump(), registry=settings_registry.describe())

    @app.put("/api/v1/settings", tags=["settings"])
    async def put_settings(_: Admin, request: Request) -> SettingsChanged:
        changes = await _json_object(request)
        new, changed = await director.change_settings(changes)
        registry = settings_registry.describe()
        return SettingsChanged(
            values=new.model_dump(),
            changed=changed,
            restart_required=[k for k in changed if registry[k]["applies"] == "restart"],
        )

    @app.get("/api/v1/settings/{key}", tags=["settings"])
    async def get_setting(_: Admin, key: str) -> SettingValue:
        registry = settings_registry.describe()
        if key not in registry:
            raise DirectorError(404, f"unknown setting {key!r}; allowed settings: {', '.join(sorted(registry))}")
        return SettingValue(key=key, value=getattr(director.settings, key), definition=registry[key])

    @app.put("/api/v1/settings/{key}", tags=["settings"])
    async def put_setting(_: Admin, key: str, request: Request) -> SettingsChanged:
        body = await _json_object(request, allow_scalar=True)
        value = body["value"] if isinstance(body, dict) and set(body) == {"value"} else body
        new, changed = await director.change_settings({key: value})
        registry = settings_registry.describe()
        return SettingsChanged(
            values=new.model_dump(),
            changed=changed,
            restart_required=[k for k in changed if registry[k]["applies"] == "restart"],
        )

    @app.get("/api/v1/events", tags=["status"])
    async def events(
        _: Admin,
        after: Annotated[int, Query(ge=0)] = 0,
        tenant: str | None = None,
        kind: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[EventOut]:
        tenant_id = director.tenant_or_404(tenant).id if tenant else None
        rows = director.store.events(after_id=after, tenant_id=tenant_id, kind=kind, limit=limit)
        return [EventOut(**r.__dict__) for r in rows]

    @app.get("/api/v1/status", tags=["status"])
    async def status(_: Admin) -> StatusOut:
        return StatusOut(
            version=tenantry.__version__,
            started_at=director.started_at,
            setup_port=director.setup_port,
            uplink_ports=director.hub.ports,
            tenants={r.name: TenantStatus.model_validate(director.status(r)) for r in director.store.tenants()},
        )

    return app


async def _json_object(request: Request, allow_scalar: bool = False) -> Any:
    import json

    raw = await request.body()
    try:
        data = json.loads(raw)
    except ValueError:
        raise DirectorError(400, "request body is not valid JSON") from None
    if not allow_scalar and not isinstance(data, dict):
        raise DirectorError(422, "expected a JSON object of setting: value")
    return data


async def _uplink(coro: Awaitable[Any]) -> Any:
    try:
        return await coro
    except (ChannelClosed, StreamError) as exc:
        raise DirectorError(502, f"uplink request failed: {exc}") from None


def _error_body(body: bytes, status: int) -> dict[str, Any]:
    import json

    try:
        data = json.loads(body)
        if isinstance(data, dict) and "error" in data:
            return {"detail": str(data["error"])}
    except ValueError:
        pass
    return {"detail": f"Transporter answered HTTP {status}"}


# ---------------------------------------------------------------------------- server
class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the Director owns SIGTERM/SIGINT."""

    def capture_signals(self) -> Any:
        import contextlib

        return contextlib.nullcontext()


class ApiServer:
    def __init__(self, director: Director) -> None:
        self.director = director
        self.app = BodyLimit(create_app(director))
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, host: str, port: int) -> int:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
        config = uvicorn.Config(
            self.app,
            log_config=None,
            access_log=self.director.config.access_log,
            lifespan="off",
            timeout_keep_alive=5,
            timeout_graceful_shutdown=5,
            server_header=False,
            backlog=1024,
        )
        config.load()
        config.ssl = self.director.api_ctx
        self._server = _Server(config)
        self._task = asyncio.get_running_loop().create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("API server stopped during start-up")
            await asyncio.sleep(0.01)
        return int(sock.getsockname()[1])

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        await self._task

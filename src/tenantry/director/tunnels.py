"""Tunnels: a local port at the Director for MSP tools, relayed to one allow-listed client resource.

Each accepted local connection becomes its own HTTP/2 CONNECT stream, either on
the tenant's uplink session or on a Direct Connect channel the Director dials to
the Transporter's Direct Connect port (default 9446).  The Transporter decides
what is reachable (its allow-list); the Director only ever uses the channel that
belongs to the tenant the tunnel was created for, and on Direct Connect it
checks that the peer really is that tenant (certificate SAN URI or PSK proof).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tenantry.director.authority import Authority
from tenantry.director.errors import DirectorError, SessionElsewhere
from tenantry.director.settings import ExpertSettings
from tenantry.director.store import Store, TenantRow
from tenantry.director.uplink import Events, UplinkHub
from tenantry.protocol import psk as pskproof
from tenantry.protocol import rawtunnel, tls
from tenantry.protocol.channel import RAW_ALPN, Channel, ChannelClosed, ChannelLimits, H2Stream, StreamError
from tenantry.protocol.identity import der_sha256, tenant_id_of
from tenantry.protocol.messages import TunnelCheck, TunnelCheckResult, split_target
from tenantry.protocol.relay import TcpSide, relay

log = logging.getLogger(__name__)

# Tunnel connections per tenant at once that get their own TLS connection (rawtunnel); more share
# the HTTP/2 channel.  Each raw one is a connection at the Transporter's Direct Connect port, whose
# per-source cap is 8 by default (the channel is one): this keeps well inside it.
RAW_PER_TENANT = 4


@dataclass
class RawDialer:
    """Direct Connect: dials a tunnel connection's own TLS connection and redeems its token (rawtunnel)."""

    ctx: ssl.SSLContext
    host: str
    port: int
    tenant_id: str
    timeout: float

    async def dial(self, token: str, fingerprint: str | None) -> Channel:
        """A raw connection to the same Transporter: the tenant's certificate, or ``fingerprint`` (PSK)."""
        loop = asyncio.get_running_loop()
        limits = ChannelLimits(handshake_timeout=self.timeout)
        try:
            async with asyncio.timeout(self.timeout):
                _t, channel = await loop.create_connection(
                    lambda: Channel(
                        self.ctx, server_side=False, h2_client=True, server_hostname=self.host, limits=limits
                    ),
                    self.host,
                    self.port,
                )
                await channel.ready
        except (OSError, TimeoutError) as exc:
            raise StreamError(f"raw tunnel connection failed: {exc}") from None
        if fingerprint is not None:
            same = der_sha256(channel.peer_cert_der or b"") == fingerprint
        else:
            same = channel.peer_cert is not None and tenant_id_of(channel.peer_cert) == self.tenant_id
        if not same or not channel.raw:
            channel.close("not the tenant's Transporter, or no raw tunnel")
            raise StreamError("the raw tunnel connection reached another peer or was not agreed")
        channel.send_raw(token.encode("ascii") + b"\n")
        return channel


@dataclass
class Route:
    """Which channel carries a tenant's tunnel streams, and how each stream proves itself."""

    channel: Channel
    psk: str | None = None
    raw: RawDialer | None = None  # Direct Connect: tunnel bytes on their own TLS connection

    def open(self, target: str, *, raw: bool = False) -> tuple[H2Stream, str | None]:
        extra: list[tuple[str, str]] = []
        nonce = None
        if self.psk is not None:
            nonce, extra = pskproof.client_headers(self.psk, self.fingerprint)
        if raw and self.raw is not None:
            extra.append((rawtunnel.REQUEST_HEADER, "1"))
        return self.channel.open_tunnel(target, extra), nonce

    @property
    def fingerprint(self) -> str:
        return der_sha256(self.channel.peer_cert_der or b"")

    def headers(self) -> list[tuple[str, str]]:
        if self.psk is None:
            return []
        _nonce, extra = pskproof.client_headers(self.psk, self.fingerprint)
        return extra

    def verify(self, nonce: str | None, response: list[tuple[str, str]]) -> None:
        if self.psk is None or nonce is None:
            return
        proof = dict(response).get(pskproof.PROOF_HEADER)
        if not pskproof.check_server(self.psk, self.fingerprint, nonce, proof):
            self.channel.close("Direct Connect peer failed the PSK proof")
            raise StreamError("Direct Connect peer failed the pre-shared-key proof")


@dataclass
class Tunnel:
    id: str
    tenant_id: str
    tenant_name: str
    target: str
    via: str
    host: str
    port: int
    created_at: float
    server: asyncio.Server | None = None
    connections: int = 0
    raw_connections: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant": self.tenant_name,
            "target": self.target,
            "via": self.via,
            "host": self.host,
            "port": self.port,
            "created_at": self.created_at,
            "connections": self.connections,
            "raw_connections": self.raw_connections,
        }


class TunnelManager:
    def __init__(
        self,
        *,
        store: Store,
        hub: UplinkHub,
        authority: Authority,
        settings: Callable[[], ExpertSettings],
        events: Events,
        bind: str,
        session_owner: Callable[[str], str | None] | None = None,
        director_id: str | None = None,
    ) -> None:
        self._store = store
        # Several Directors: who holds a tenant's session elsewhere, and our id for the tunnel registry
        # (``cluster_tunnels``: every Director lists every tunnel, and forwards a change to its owner).
        self._session_owner = session_owner or (lambda _tenant_id: None)
        self._director_id = director_id
        self._hub = hub
        self._authority = authority
        self._settings = settings
        self._events = events
        self._bind = bind
        self.tunnels: dict[str, Tunnel] = {}
        self._direct: dict[str, tuple[Channel, str | None, RawDialer | None]] = {}
        self._dial_locks: dict[str, asyncio.Lock] = {}
        self._raw_active: dict[str, int] = {}  # tenant id -> tunnel connections on their own TLS connection

    def of(self, tenant_id: str) -> list[Tunnel]:
        return [t for t in self.tunnels.values() if t.tenant_id == tenant_id]

    def describe_all(self, tenant_id: str) -> list[dict[str, Any]]:
        """The tenant's tunnels on this Director and, with several, on every live one."""
        if self._director_id is None:
            return [t.describe() for t in self.of(tenant_id)]
        rows = self._store.db.rows(
            "SELECT t.description, d.name FROM cluster_tunnels t JOIN directors d ON d.id = t.director_id "
            "WHERE t.tenant_id = ? AND d.heartbeat_at > ? ORDER BY t.id",
            (tenant_id, time.time() - 10.0),
        )
        out = []
        for description, director in rows:
            described = json.loads(description)
            local = self.tunnels.get(described.get("id", ""))
            out.append((local.describe() if local is not None else described) | {"director": director})
        return out

    def _record(self, tunnel: Tunnel) -> None:
        if self._director_id is not None:
            self._store.db.execute(
                "INSERT INTO cluster_tunnels (id, tenant_id, director_id, description) VALUES (?, ?, ?, ?)",
                (tunnel.id, tunnel.tenant_id, self._director_id, json.dumps(tunnel.describe())),
            )

    def _forget(self, tunnel: Tunnel) -> None:
        if self._director_id is not None:
            self._store.db.execute("DELETE FROM cluster_tunnels WHERE id = ?", (tunnel.id,))

    # ------------------------------------------------------------------ routes
    async def route(self, tenant_id: str, via: str) -> Route:
        row = self._store.tenant(tenant_id)
        if row is None or row.revoked_at is not None:
            raise DirectorError(404, "tenant unknown or revoked")
        if via == "uplink":
            session = self._hub.sessions.get(tenant_id)
            if session is None:
                owner = self._session_owner(tenant_id)
                if owner is not None:
                    raise SessionElsewhere(owner, f"tenant {row.name!r}'s session")
                raise DirectorError(409, f"tenant {row.name!r} is not online")
            return Route(session.channel)
        cached = self._direct.get(tenant_id)
        if cached is not None and cached[0].is_open:
            return Route(*cached)
        lock = self._dial_locks.setdefault(tenant_id, asyncio.Lock())
        async with lock:
            cached = self._direct.get(tenant_id)
            if cached is not None and cached[0].is_open:
                return Route(*cached)
            cached = await self._dial(row)
            self._direct[tenant_id] = cached
            return Route(*cached)

    async def _dial(self, row: TenantRow) -> tuple[Channel, str | None, RawDialer | None]:
        dc = row.direct_connect
        if not dc:
            raise DirectorError(409, f"tenant {row.name!r} has no direct_connect address")
        host, port = split_target(dc["address"])
        auth = self._authority
        settings = self._settings()

        def context() -> ssl.SSLContext:
            if dc.get("auth") == "psk":
                return tls.client_context(ca=None, min_version=settings.tls_min_version)
            return tls.client_context(
                ca=auth.ca_cert_path,
                cert=auth.client_cert_path,
                key=auth.client_key_path,
                min_version=settings.tls_min_version,
                check_hostname=False,  # identity is the tenant URI, checked below
            )

        ctx = context()
        psk: str | None = str(dc["psk"]) if dc.get("auth") == "psk" else None
        raw_ctx = context()
        raw_ctx.set_alpn_protocols([RAW_ALPN])
        raw = RawDialer(raw_ctx, host, port, row.id, settings.handshake_timeout)
        limits = ChannelLimits(
            max_frame_size=max(settings.max_frame_size, 1 << 20),  # a channel we dialed, for bulk bytes
            max_concurrent_streams=settings.max_streams_per_session,
            stream_window=4 << 20,
            connection_window=16 << 20,
            handshake_timeout=settings.handshake_timeout,
        )
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(settings.handshake_timeout):
                _t, channel = await loop.create_connection(
                    lambda: Channel(ctx, server_side=False, h2_client=True, server_hostname=host, limits=limits),
                    host,
                    port,
                )
                await channel.ready
        except (OSError, TimeoutError, ChannelClosed) as exc:
            raise DirectorError(502, f"Direct Connect to {row.name!r} at {dc['address']} failed: {exc}") from None
        if psk is None:
            peer = tenant_id_of(channel.peer_cert) if channel.peer_cert is not None else None
            if peer != row.id:
                channel.close("Direct Connect peer is another tenant")
                self._events("direct_connect_refused", f"peer at {dc['address']} is not this tenant", row.id)
                raise DirectorError(502, f"the Direct Connect peer at {dc['address']} is not tenant {row.name!r}")
        return channel, psk, raw

    # ------------------------------------------------------------------ lifecycle
    async def create(self, row: TenantRow, target: str, via: str, listen_port: int) -> Tunnel:
        route = await self.route(row.id, via)
        body = TunnelCheck(target=target).model_dump_json().encode()
        try:
            resp = await route.channel.request("POST", "/v1/tunnel-check", body, headers=route.headers(), timeout=15)
        except (ChannelClosed, StreamError) as exc:
            raise DirectorError(502, f"cannot ask the Transporter: {exc}") from None
        if resp.status != 200:
            raise DirectorError(502 if resp.status != 403 else 403, _detail(resp.body, resp.status))
        check = TunnelCheckResult.model_validate_json(resp.body)
        if not check.allowed:
            self._events("tunnel_refused", f"{target} is not on the allow-list", row.id, target=target)
            raise DirectorError(403, f"target {target} refused by the Transporter: {check.message}")
        tunnel = Tunnel(
            id=secrets.token_hex(6),
            tenant_id=row.id,
            tenant_name=row.name,
            target=target,
            via=via,
            host=self._bind,
            port=0,
            created_at=time.time(),
        )
        try:
            tunnel.server = await asyncio.get_running_loop().create_server(
                lambda: TcpSide(lambda tcp: self._accepted(tunnel, tcp)), host=tunnel.host, port=listen_port
            )
        except OSError as exc:
            raise DirectorError(409, f"cannot listen on {tunnel.host}:{listen_port}: {exc.strerror}") from None
        tunnel.port = int(tunnel.server.sockets[0].getsockname()[1])
        self.tunnels[tunnel.id] = tunnel
        self._record(tunnel)
        self._events(
            "tunnel_opened",
            f"{tunnel.host}:{tunnel.port} -> {target} via {via}",
            row.id,
            tunnel=tunnel.id,
            target=target,
            via=via,
            port=tunnel.port,
        )
        return tunnel

    async def delete(self, tenant_id: str, tunnel_id: str) -> Tunnel:
        tunnel = self.tunnels.get(tunnel_id)
        if tunnel is None and self._director_id is not None:
            row = self._store.db.row(
                "SELECT director_id FROM cluster_tunnels WHERE id = ? AND tenant_id = ?", (tunnel_id, tenant_id)
            )
            if row is not None and row[0] != self._director_id:
                raise SessionElsewhere(str(row[0]), f"tunnel {tunnel_id!r}")
        if tunnel is None or tunnel.tenant_id != tenant_id:
            raise DirectorError(404, f"no tunnel {tunnel_id!r} for this tenant")
        await self._close(tunnel)
        self._events("tunnel_closed", f"tunnel to {tunnel.target} closed", tenant_id, tunnel=tunnel.id)
        return tunnel

    async def _close(self, tunnel: Tunnel) -> None:
        if self.tunnels.pop(tunnel.id, None) is not None:
            self._forget(tunnel)
        if tunnel.server is not None:
            tunnel.server.close()
        for task in list(tunnel.tasks):
            task.cancel()

    def close_tenant(self, tenant_id: str) -> None:
        for tunnel in self.of(tenant_id):
            asyncio.get_running_loop().create_task(self._close(tunnel))
        direct = self._direct.pop(tenant_id, None)
        if direct is not None:
            direct[0].close("tenant revoked")

    async def close_all(self) -> None:
        for tunnel in list(self.tunnels.values()):
            await self._close(tunnel)
        for channel, _psk, _raw in self._direct.values():
            channel.close("director shutting down")
        self._direct.clear()

    # ------------------------------------------------------------------ relay
    def _accepted(self, tunnel: Tunnel, tcp: TcpSide) -> None:
        # What the MSP tool sends before the tunnel is authorised waits in ``tcp`` (reading pauses when full).
        task = asyncio.get_running_loop().create_task(self._accept(tunnel, tcp))
        tunnel.tasks.add(task)
        task.add_done_callback(tunnel.tasks.discard)

    async def _accept(self, tunnel: Tunnel, tcp: TcpSide) -> None:
        tunnel.connections += 1
        stream: H2Stream | None = None
        raw: Channel | None = None
        counted = False
        try:
            route = await self.route(tunnel.tenant_id, tunnel.via)
            if route.raw is not None and self._raw_active.get(tunnel.tenant_id, 0) < RAW_PER_TENANT:
                self._raw_active[tunnel.tenant_id] = self._raw_active.get(tunnel.tenant_id, 0) + 1
                counted = True
            stream, nonce = route.open(tunnel.target, raw=counted)
            headers = await asyncio.wait_for(asyncio.shield(stream.response_headers), 30)
            status = dict(headers).get(":status")
            if status != "200":
                log.info("tunnel %s: Transporter refused %s (HTTP %s)", tunnel.id, tunnel.target, status)
                return
            route.verify(nonce, headers)
            token = dict(headers).get(rawtunnel.TOKEN_HEADER)
            if route.raw is not None and counted and token:
                # Authorised on the channel; the bytes go on their own TLS connection (rawtunnel).
                raw = await route.raw.dial(token, route.fingerprint if route.psk is not None else None)
                tunnel.raw_connections += 1
                await rawtunnel.relay_raw(raw, tcp)
            else:
                await relay(tcp, stream)
        except Exception as exc:  # one bad connection must not hurt the listener
            log.info("tunnel %s connection ended: %s", tunnel.id, exc)
        finally:
            if counted:
                self._raw_active[tunnel.tenant_id] -= 1
            if raw is not None:
                raw.close("tunnel connection ended")
            if stream is not None:
                with contextlib.suppress(Exception):
                    stream.reset()
            tcp.close()


def _detail(body: bytes, status: int) -> str:
    try:
        data = json.loads(body)
        if isinstance(data, dict) and "error" in data:
            return str(data["error"])
    except ValueError:
        pass
    return f"Transporter answered HTTP {status}"

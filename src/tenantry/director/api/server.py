"""The HTTPS server of the setup port: the front door (admission, TLS, deadlines), then uvicorn's
HTTP/1.1 protocol serving the API app behind a body limit and the trusted-proxy rule."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import ssl
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn
from cryptography import x509
from uvicorn.server import ServerState

from tenantry.common.memory import Reclaimer
from tenantry.director.api import create_app
from tenantry.director.api.frontdoor import DoorStats, FrontDoor
from tenantry.director.cluster.forward import Forwarding, PeerMark
from tenantry.director.errors import DirectorError
from tenantry.director.service import Director
from tenantry.director.settings import ExpertSettings
from tenantry.protocol.gate import ConnectionGate, GateLimits
from tenantry.protocol.identity import is_director

MAX_BODY = 1 << 20

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413: declared ones at once, streamed ones when read.

    A streamed body that grows past the limit raises :class:`DirectorError` inside the
    route that reads it, so the app's own error handler answers (no response has started).
    """

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = f"request body larger than {self.limit} bytes"
        for key, value in scope.get("headers", []):
            if key == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                await _send_json(send, 413, {"detail": too_large})
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise DirectorError(413, too_large)
            return message

        await self.app(scope, limited, send)


class TrustedProxies:
    """Believe ``X-Forwarded-For`` only from the Expert Setting ``trusted_proxies`` (none by default).

    From a trusted proxy, the client is the right-most address in the header that is not
    itself a trusted proxy; from anyone else the header is ignored.
    """

    def __init__(self, app: ASGIApp, settings: Callable[[], ExpertSettings]) -> None:
        self.app = app
        self._settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] == "http" and client:
            networks = self._settings().proxy_networks()
            if networks and _within(client[0], networks):
                forwarded = b",".join(v for k, v in scope.get("headers", []) if k == b"x-forwarded-for")
                for hop in reversed(forwarded.decode("latin-1").split(",")):
                    hop = hop.strip()
                    if _is_ip(hop) and not _within(hop, networks):
                        scope = dict(scope, client=(hop, 0))
                        break
        await self.app(scope, receive, send)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _within(address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


class ApiServer:
    """The setup port; or, with ``peer=True``, the port other Directors forward requests to.

    The peer port requires a client certificate of the Director CA carrying
    ``urn:tenantry:director`` (checked right after the handshake); what arrives there is marked
    forwarded and never forwarded again.  The setup port of a Director sharing PostgreSQL
    forwards requests for sessions held elsewhere (``director/cluster/forward.py``).
    """

    def __init__(self, director: Director, *, peer: bool = False) -> None:
        self.director = director
        self.peer = peer
        self.forwarding: Forwarding | None = None
        app: ASGIApp = BodyLimit(create_app(director))
        if peer:
            app = PeerMark(app)
        else:
            cluster = director.cluster
            if cluster is not None:
                self.forwarding = Forwarding(
                    app,
                    director_id=lambda: director.director_id,
                    peer_url=cluster.peer_address,
                    client_context=lambda: director.peer_client_ctx,
                )
                app = self.forwarding
            app = TrustedProxies(app, self.settings)
        self.app = app
        self.config = uvicorn.Config(
            self.app,
            log_config=None,
            access_log=director.config.access_log,
            lifespan="off",
            timeout_keep_alive=5,
            server_header=False,
            proxy_headers=False,  # TrustedProxies decides, from a live setting
        )
        self.config.load()
        self.state = ServerState()
        self.gate = ConnectionGate(self._limits, exempt=self._is_proxy)
        self.reclaimer = Reclaimer()
        self.stats = DoorStats()
        self._server: asyncio.Server | None = None

    def settings(self) -> ExpertSettings:
        return self.director.settings

    @property
    def ssl_context(self) -> ssl.SSLContext:
        return self.director.peer_server_ctx if self.peer else self.director.api_ctx

    def accepts(self, peer_der: bytes | None) -> bool:
        """After the TLS handshake: on the peer port only another Director of this CA is served."""
        if not self.peer:
            return True
        if not peer_der:
            return False
        try:
            return is_director(x509.load_der_x509_certificate(peer_der))
        except ValueError:
            return False

    def _limits(self) -> GateLimits:
        s = self.settings()
        return GateLimits(total=s.api_max_connections, per_source=s.api_max_connections_per_source)

    def _is_proxy(self, source: str) -> bool:
        networks = self.settings().proxy_networks()
        return bool(networks) and _within(source, networks)

    def is_proxy(self, source: str) -> bool:
        """A configured proxy (``trusted_proxies``): its PROXY v2 header and X-Forwarded-For are believed."""
        return self._is_proxy(source)

    async def start(self, host: str, port: int) -> int:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # IPPROTO_TCP, not 0: asyncio only turns Nagle off (TCP_NODELAY) on sockets that say they are
        # TCP, and with Nagle on every answer's body waited ~40 ms for the client's delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: FrontDoor(self), sock=sock, backlog=1024)
        return int(sock.getsockname()[1])

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, let running requests finish (bounded), close every connection."""
        if self._server is None:
            return
        self._server.close()
        for connection in list(self.state.connections):
            connection.shutdown()
        deadline = asyncio.get_running_loop().time() + grace
        while self.state.tasks and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        for task in list(self.state.tasks):
            task.cancel()
        for door in self.gate.connections():
            door.evict()

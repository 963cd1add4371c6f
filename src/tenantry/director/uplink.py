"""The uplink listener (default port 6702): one mutual-TLS, reverse-HTTP/2 session per remote tenant."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import ssl
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import h2.errors
from pydantic import ValidationError

from tenantry.common import pki
from tenantry.director.settings import ExpertSettings
from tenantry.director.store import Store
from tenantry.protocol.channel import Channel, ChannelClosed, ChannelLimits, StreamError
from tenantry.protocol.identity import serial_hex, tenant_id_of
from tenantry.protocol.messages import CertificateInstall, CsrResponse, SiteInfo

log = logging.getLogger(__name__)

# GOAWAY debug strings the Transporter understands (see tenantry.transporter.uplink).
GOAWAY_RESTART = b"director restarting: reconnect"
GOAWAY_MOVED = b"uplink moved: reconnect"
GOAWAY_REPLACED = b"session replaced by a newer one"
GOAWAY_REVOKED = b"refused: tenant revoked"
GOAWAY_SUPERSEDED = b"refused: certificate superseded"

_MAX_PENDING_HANDSHAKES = 512
FIREWALL_GRACE = 1.0  # seconds between opening a new uplink listener and moving the Transporters to it


class Events(Protocol):
    def __call__(self, kind: str, message: str, tenant_id: str | None = None, **data: object) -> None: ...


class Refused(Exception):
    """The peer's certificate is valid TLS-wise but not acceptable (unknown, revoked, ...)."""


@dataclass
class Session:
    tenant_id: str
    channel: Channel
    connected_at: float
    address: str
    cert_serial: str
    cert_not_after: float
    info: SiteInfo | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def port(self) -> int:
        return self.channel.local_port

    @property
    def last_heartbeat(self) -> float:
        return time.time() - self.channel.silent_for()


class _Refuse(asyncio.Protocol):
    """Accepted only to be closed at once (too many sessions or handshakes)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class UplinkHub:
    def __init__(
        self,
        *,
        store: Store,
        settings: Callable[[], ExpertSettings],
        ssl_context: ssl.SSLContext,
        authority: pki.KeyPair,
        listen_host: str,
        events: Events,
    ) -> None:
        self._store = store
        self._settings = settings
        self._ctx = ssl_context
        self._ca = authority
        self._host = listen_host
        self._events = events
        self.sessions: dict[str, Session] = {}
        self._listeners: dict[int, asyncio.Server] = {}
        self._pending = 0
        self._closing = False
        self._ticker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.handshakes = 0  # completed handshakes, for benchmarks
        self.throttled = 0  # connections closed by the admission rate limit
        self.peak_handshakes = 0  # most handshakes completed within any 1 s window since start
        self._recent: deque[float] = deque()
        self._tokens = 0.0
        self._tokens_at = time.monotonic()
        self.on_connect: list[Callable[[Session], None]] = []
        self.on_ports_changed: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ listeners
    @property
    def ports(self) -> list[int]:
        return sorted(self._listeners)

    async def listen(self, port: int) -> int:
        """Open a listener; returns the bound port (``port`` may be 0 in tests)."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(self._protocol, host=self._host, port=port, reuse_address=True, backlog=1024)
        bound = int(server.sockets[0].getsockname()[1])
        self._listeners[bound] = server
        log.info("uplink listening on %s:%d", self._host, bound)
        self._ports_changed()
        return bound

    def _ports_changed(self) -> None:
        for callback in self.on_ports_changed:
            callback()

    def start(self) -> None:
        self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def move_to(self, new_port: int, push: Callable[[], asyncio.Future[None]], grace: float) -> None:
        """Open ``new_port``, let Transporters move (``push`` tells them), close the old listener(s)."""
        old = [p for p in self._listeners if p != new_port]
        if new_port not in self._listeners:
            await self.listen(new_port)
            # The host firewall follows the published ports (docs/roles.md): give it a moment before
            # the Transporters are told, so their first connect is not dropped.
            await asyncio.sleep(FIREWALL_GRACE)
        await push()
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(s.port in old for s in self.sessions.values()):
            await asyncio.sleep(0.1)
        for port in old:
            server = self._listeners.pop(port)
            server.close()
            for s in list(self.sessions.values()):
                if s.port == port:
                    s.channel.close("uplink port moved", debug=GOAWAY_MOVED)
            log.info("uplink listener on port %d closed", port)
        if old:
            self._ports_changed()

    def _admit(self, limit: int) -> bool:
        """Token bucket: rate 0.8*limit, depth 0.1*limit: no 1 s window admits more than 0.9*limit.

        The 10 % slack absorbs handshakes admitted late in one window that complete in the next.
        """
        now = time.monotonic()
        rate = 0.8 * limit
        depth = max(1.0, 0.1 * limit)
        self._tokens = min(depth, self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now
        if self._tokens < 1.0:
            self.throttled += 1
            return False
        self._tokens -= 1.0
        return True

    def _protocol(self) -> asyncio.Protocol:
        settings = self._settings()
        if (
            self._closing
            or self._pending >= _MAX_PENDING_HANDSHAKES
            or len(self.sessions) >= settings.max_sessions
            or not self._admit(settings.max_handshakes_per_second)
        ):
            return _Refuse()
        self._pending += 1
        limits = ChannelLimits(
            max_frame_size=settings.max_frame_size,
            max_concurrent_streams=settings.max_streams_per_session,
            handshake_timeout=settings.handshake_timeout,
            control_frames_per_second=settings.control_frames_per_second,
            control_frames_burst=int(10 * settings.control_frames_per_second),
            # The Director only reads small answers and tunnel bytes; modest windows keep memory flat.
            stream_window=256 * 1024,
            connection_window=1 << 20,
        )
        channel = Channel(
            self._ctx,
            server_side=True,
            h2_client=True,
            limits=limits,
            on_secure=self._on_secure,
            on_closed=self._on_closed,
        )
        channel.tag = _PENDING
        return channel

    # ------------------------------------------------------------------ session lifecycle
    def _on_secure(self, channel: Channel) -> None:
        self._pending -= 1
        channel.tag = None
        self.handshakes += 1
        now = time.monotonic()
        self._recent.append(now)
        while self._recent and self._recent[0] <= now - 1.0:
            self._recent.popleft()
        self.peak_handshakes = max(self.peak_handshakes, len(self._recent))
        cert = channel.peer_cert
        if cert is None:
            raise Refused("refused: no client certificate")
        tenant_id = tenant_id_of(cert)
        if tenant_id is None:
            raise Refused("refused: certificate carries no tenant identity")
        serial = serial_hex(cert)
        record = self._store.certificate(serial)
        tenant = self._store.tenant(tenant_id)
        reason = None
        if record is None or record.tenant_id != tenant_id:
            reason = "refused: certificate unknown to this Director"
        elif tenant is None or tenant.revoked_at is not None:
            reason = GOAWAY_REVOKED.decode()
        elif record.revoked_at is not None:
            reason = GOAWAY_SUPERSEDED.decode()
        elif tenant.kind != "remote":
            reason = "refused: tenant is not a remote tenant"
        if reason is not None:
            self._events("handshake_refused", reason, tenant_id if tenant else None, address=channel.peer_address)
            raise Refused(reason)
        session = Session(
            tenant_id=tenant_id,
            channel=channel,
            connected_at=time.time(),
            address=channel.peer_address,
            cert_serial=serial,
            cert_not_after=cert.not_valid_after_utc.timestamp(),
        )
        channel.tag = tenant_id
        # The first session with a renewed certificate ends the hand-over: earlier ones stop working.
        superseded = self._store.supersede_certificates(tenant_id, serial)
        if superseded:
            self._events("certificates_superseded", f"{superseded} earlier certificate(s) revoked", tenant_id)
        old = self.sessions.get(tenant_id)
        self.sessions[tenant_id] = session
        if old is not None:
            self._events("replaced", "a new session replaced the previous one", tenant_id, old=old.address)
            old.channel.close("replaced by a newer session", debug=GOAWAY_REPLACED)
        self._store.touch_status(
            tenant_id, last_seen=time.time(), last_address=channel.peer_address, state_since=time.time()
        )
        self._events(
            "connected",
            f"uplink session from {channel.peer_address}",
            tenant_id,
            address=channel.peer_address,
            port=channel.local_port,
        )
        for callback in self.on_connect:
            callback(session)

    def _on_closed(self, channel: Channel) -> None:
        if channel.tag is _PENDING:
            self._pending -= 1
            channel.tag = None
            log.info("uplink handshake from %s failed: %s", channel.peer_address, channel.close_reason)
            return
        tenant_id = channel.tag
        if not isinstance(tenant_id, str):
            return
        session = self.sessions.get(tenant_id)
        if session is None or session.channel is not channel:
            return  # a replaced session; the new one is current
        del self.sessions[tenant_id]
        for task in session.tasks:
            task.cancel()
        now = time.time()
        if not self._closing:
            self._store.touch_status(tenant_id, last_seen=now - channel.silent_for(), state_since=now)
            self._events("disconnected", channel.close_reason, tenant_id, address=session.address)

    def spawn(self, session: Session, coro: asyncio.Future[None] | object) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        session.tasks.add(task)
        task.add_done_callback(session.tasks.discard)

    def close_tenant(self, tenant_id: str, reason: str, debug: bytes) -> bool:
        session = self.sessions.get(tenant_id)
        if session is None:
            return False
        session.channel.close(reason, code=h2.errors.ErrorCodes.NO_ERROR, debug=debug)
        return True

    # ------------------------------------------------------------------ heartbeat
    async def _tick(self) -> None:
        last_persist = time.monotonic()
        while True:
            settings = self._settings()
            await asyncio.sleep(settings.heartbeat_interval)
            dead_after = settings.heartbeat_interval * settings.heartbeat_misses
            for session in list(self.sessions.values()):
                channel = session.channel
                if channel.silent_for() > dead_after:
                    channel.abort(f"no heartbeat for {dead_after:g} s ({settings.heartbeat_misses} missed)")
                else:
                    channel.ping()
            if time.monotonic() - last_persist > 60:
                last_persist = time.monotonic()
                self._persist_last_seen()

    def _persist_last_seen(self) -> None:
        sessions = list(self.sessions.values())
        if not sessions:
            return
        with self._store.tx():
            for s in sessions:
                self._store.touch_status(s.tenant_id, last_seen=s.last_heartbeat)

    # ------------------------------------------------------------------ fan-out
    async def broadcast(self, method: str, path: str, body: bytes, *, concurrency: int = 64) -> int:
        """Send one request to every session; returns how many answered 2xx."""
        sem = asyncio.Semaphore(concurrency)
        ok = 0

        async def one(session: Session) -> None:
            nonlocal ok
            async with sem:
                try:
                    resp = await session.channel.request(method, path, body, timeout=10)
                except (ChannelClosed, StreamError) as exc:
                    log.info("tenant %s: %s %s failed: %s", session.tenant_id, method, path, exc)
                    return
                if 200 <= resp.status < 300:
                    ok += 1

        await asyncio.gather(*(one(s) for s in list(self.sessions.values())))
        return ok

    # ------------------------------------------------------------------ certificate renewal
    async def renew(self, session: Session, issue: Callable[[bytes], tuple[str, float]]) -> None:
        """Ask the Transporter for a CSR, sign it (``issue``), install the new certificate."""
        resp = await session.channel.request("POST", "/v1/csr", b"{}", timeout=30)
        if resp.status != 200:
            raise StreamError(f"transporter refused the CSR request (HTTP {resp.status})")
        try:
            csr = CsrResponse.model_validate_json(resp.body)
        except ValidationError as exc:
            raise StreamError("transporter sent a malformed CSR answer") from exc
        cert_pem, not_after = issue(csr.csr_pem.encode())
        body = CertificateInstall(certificate_pem=cert_pem, ca_pem=self._ca.cert_pem().decode())
        resp = await session.channel.request("PUT", "/v1/certificate", body.model_dump_json().encode(), timeout=30)
        if resp.status != 200:
            raise StreamError(f"transporter refused the new certificate (HTTP {resp.status})")
        self._events(
            "certificate_renewed",
            "client certificate renewed over the uplink",
            session.tenant_id,
            not_after=dt.datetime.fromtimestamp(not_after, dt.UTC).isoformat(),
        )

    # ------------------------------------------------------------------ shutdown
    async def shutdown(self, grace: float) -> None:
        """Stop accepting; let in-flight streams finish (bounded); tell everyone to come back; close."""
        self._closing = True
        for server in self._listeners.values():
            server.close()
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(s.channel.active_streams for s in self.sessions.values()):
            await asyncio.sleep(0.05)
        for session in list(self.sessions.values()):
            session.channel.close("director shutting down", debug=GOAWAY_RESTART)
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        self._listeners.clear()
        # Give the kernel a moment to flush the GOAWAY frames.
        await asyncio.sleep(0.05)


_PENDING = object()

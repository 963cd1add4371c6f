"""The setup port's front door: what a client may cost the Director before it has proven anything.

Each accepted TCP connection goes through, in order:

1. **admission** (:class:`~tenantry.protocol.gate.ConnectionGate`): caps in total and per
   source address, checked before a byte is read; a refused connection is reset at once;
2. **ClientHello**: bytes are held (a few hundred, at most one TLS record) until the first
   record is complete, so a half-open connection costs no TLS state;
3. **TLS** with the project's own engine over memory BIOs (no 256 KiB asyncio buffer),
   within ``api_handshake_timeout``;
4. **HTTP/1.1** by uvicorn's h11 protocol on a small TLS transport adapter, with deadlines
   uvicorn does not have: a request's headers within ``api_header_timeout`` of its first byte
   (and the first request within that of the handshake), its body within ``api_body_timeout``.

When a crowd of connections has gone, the heap is trimmed once so the memory they used
returns to the operating system (:class:`~tenantry.common.memory.Reclaimer`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from tenantry.protocol import proxyproto
from tenantry.protocol.tlsengine import TLSEngine, TLSError

if TYPE_CHECKING:
    from tenantry.director.api.server import ApiServer

log = logging.getLogger(__name__)

_TLS_HANDSHAKE = 0x16
_MAX_HELLO = 16384 + 5  # one TLS record


@dataclass
class DoorStats:
    """Counters for /health, tests and the abuse benchmark."""

    handshake_timeouts: int = 0
    header_timeouts: int = 0
    body_timeouts: int = 0
    not_tls: int = 0


class _TLSTransport(asyncio.Transport):
    """What uvicorn's protocol writes to: encrypts through the door's TLS engine."""

    def __init__(self, door: FrontDoor) -> None:
        super().__init__()
        self._door = door
        self._closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "sslcontext":
            return self._door.server.ssl_context
        if name == "ssl_object":
            return self._door.tls.ssl_object if self._door.tls is not None else default
        if name == "peername" and self._door.peer is not None:
            return self._door.peer  # the client, also behind a trusted proxy's PROXY header
        if name == "socket":
            return None  # uvicorn would ask the socket for its peer, which may be the proxy
        return self._door.transport.get_extra_info(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._door.send(bytes(data))

    def is_closing(self) -> bool:
        return self._closing or self._door.transport.is_closing()

    def close(self) -> None:
        self._closing = True
        self._door.close()

    def abort(self) -> None:
        self._closing = True
        self._door.transport.abort()

    def pause_reading(self) -> None:
        self._door.transport.pause_reading()

    def resume_reading(self) -> None:
        self._door.transport.resume_reading()

    def is_reading(self) -> bool:
        return self._door.transport.is_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._door.transport.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._door.transport.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._door.transport.get_write_buffer_limits()

    def can_write_eof(self) -> bool:
        return False

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._door.http  # type: ignore[return-value]


class FrontDoor(asyncio.Protocol):
    """One connection on the setup port."""

    def __init__(self, server: ApiServer) -> None:
        self.server = server
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.source = ""
        self.tls: TLSEngine | None = None
        self.http: H11Protocol | None = None
        self._hello = bytearray()
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = ""  # what the running timer waits for
        self._admitted = False
        self.peer: tuple[str, int] | None = None  # the client (behind a trusted proxy: from its PROXY header)
        self._proxy_pending: bytearray | None = None  # bytes from a trusted proxy until its header is read

    # ------------------------------------------------------------------ asyncio
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = (str(peer[0]), int(peer[1])) if peer else None
        self.source = str(peer[0]) if peer else "?"
        self._arm("handshake", self.server.settings().api_handshake_timeout)
        if self.server.is_proxy(self.source):
            # A trusted load balancer may say who the client is first (PROXY v2): admission then
            # counts that client, not the balancer.
            self._proxy_pending = bytearray()
            return
        self._admit()

    def _admit(self) -> bool:
        if not self.server.gate.admit(self):
            self._disarm()
            self.transport.abort()
            return False
        self._admitted = True
        return True

    def _proxy_header(self, data: bytes) -> bytes | None:
        """Bytes after the PROXY header (``None``: wait for more, or the connection was refused)."""
        assert self._proxy_pending is not None
        self._proxy_pending += data
        pending = bytes(self._proxy_pending)
        if proxyproto.may_start(pending):
            try:
                header = proxyproto.parse(pending)
            except proxyproto.ProxyHeaderError:
                self.server.stats.not_tls += 1
                self.transport.abort()
                return None
            if header is None:
                return None
            if header.source is not None:
                self.peer = header.source
                self.source = header.source[0]
            pending = pending[header.length :]
        self._proxy_pending = None
        return pending if self._admit() else None

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        if self._proxy_pending is not None:
            rest = self._proxy_header(data)
            if not rest:
                return
            data = rest
        if self.tls is None:
            if not self._hello_complete(data):
                return
        else:
            self.tls.feed(data)
        if self.http is None:
            self._handshake()
        if self.http is not None:
            self._deliver()

    def eof_received(self) -> bool | None:
        if self.http is not None:
            self.http.eof_received()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._admitted:
            self.server.gate.release(self)
            self.server.reclaimer.track(self.server.gate.active)
        if self.http is not None:
            self.http.connection_lost(exc)
        # Break the door <-> uvicorn protocol cycle so the connection is freed at once, not at
        # the next full garbage collection.
        self.http = None
        self.tls = None
        self._hello = bytearray()

    def pause_writing(self) -> None:
        if self.http is not None:
            self.http.pause_writing()

    def resume_writing(self) -> None:
        if self.http is not None:
            self.http.resume_writing()

    # ------------------------------------------------------------------ ConnectionGate
    def evictable(self) -> bool:
        if self.http is None:
            return True
        cycle = self.http.cycle
        return self.http.conn.their_state is h11.IDLE and (cycle is None or cycle.response_complete)

    def evict(self) -> None:
        self.transport.abort()

    # ------------------------------------------------------------------ TLS
    def _hello_complete(self, data: bytes) -> bool:
        """Hold bytes until the first TLS record is whole, then start TLS with them."""
        self._hello += data
        if len(self._hello) >= 5:
            length = int.from_bytes(self._hello[3:5], "big")
            if self._hello[0] != _TLS_HANDSHAKE or self._hello[1] != 3 or length + 5 > _MAX_HELLO:
                self.server.stats.not_tls += 1
                self.transport.abort()
                return False
            if len(self._hello) < length + 5:
                return False
        else:
            return False
        try:
            self.tls = TLSEngine(self.server.ssl_context, server_side=True)
        except TLSError:
            self.transport.abort()
            return False
        self.tls.feed(bytes(self._hello))
        self._hello = bytearray()
        return True

    def _handshake(self) -> None:
        assert self.tls is not None
        try:
            done = self.tls.handshake()
        except TLSError as exc:
            self._flush()
            log.debug("setup port: %s from %s", exc, self.source)
            self.transport.close()
            return
        self._flush()
        if done:
            if not self.server.accepts(self.tls.peer_certificate()):
                log.info("setup port: %s presented no Director certificate on the peer port", self.source)
                self.transport.abort()
                return
            self._start_http()

    def _start_http(self) -> None:
        self.http = H11Protocol(config=self.server.config, server_state=self.server.state, app_state={})
        self.http.connection_made(_TLSTransport(self))
        # The first request must begin (and its headers end) within the header deadline.
        self._arm("headers", self.server.settings().api_header_timeout)

    def _flush(self) -> None:
        if self.tls is not None and not self.transport.is_closing():
            out = self.tls.outgoing()
            if out:
                self.transport.write(out)

    def send(self, data: bytes) -> None:
        """Plaintext from uvicorn: encrypt and write."""
        if self.tls is None or self.transport.is_closing():
            return
        try:
            self.tls.write(data)
        except TLSError:
            self.transport.abort()
            return
        self._flush()

    def close(self) -> None:
        if self.tls is not None and not self.transport.is_closing():
            goodbye = self.tls.close()
            if goodbye:
                self.transport.write(goodbye)
        if not self.transport.is_closing():
            self.transport.close()
            asyncio.get_running_loop().call_later(5.0, self.transport.abort)

    # ------------------------------------------------------------------ HTTP
    def _deliver(self) -> None:
        assert self.tls is not None and self.http is not None
        plaintext, eof = self.tls.read()
        self._flush()  # TLS 1.3 may answer (key update) while reading
        if plaintext:
            self.http.data_received(plaintext)
            self._follow_request()
        if eof and not self.transport.is_closing():
            self.http.eof_received()
            self.close()

    def _follow_request(self) -> None:
        """Keep the deadline that matches where the current request is."""
        assert self.http is not None
        state = self.http.conn.their_state
        settings = self.server.settings()
        if state is h11.IDLE:
            # Bytes of a request arrived and its headers are not complete yet.
            if self._deadline != "headers":
                self._arm("headers", settings.api_header_timeout)
        elif state is h11.SEND_BODY:
            if self._deadline != "body":
                self._arm("body", settings.api_body_timeout)
        else:
            self._disarm()

    # ------------------------------------------------------------------ deadlines
    def _arm(self, what: str, seconds: float) -> None:
        self._disarm()
        self._deadline = what
        self._timer = asyncio.get_running_loop().call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._deadline = ""

    def _expired(self) -> None:
        what, self._timer, self._deadline = self._deadline, None, ""
        stats = self.server.stats
        if what == "handshake":
            stats.handshake_timeouts += 1
        elif what == "headers":
            if self.http is not None and self.http.conn.their_state is not h11.IDLE:
                return  # the request moved on meanwhile
            stats.header_timeouts += 1
        else:
            stats.body_timeouts += 1
        log.debug("setup port: %s from %s took too long; connection closed", what, self.source)
        self.transport.abort()

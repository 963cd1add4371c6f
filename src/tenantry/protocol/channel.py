"""One TLS connection carrying HTTP/2: the uplink and the Direct Connect channel.

TLS is done with :class:`ssl.SSLObject` over two :class:`ssl.MemoryBIO` on a
plain asyncio TCP transport instead of ``loop.create_connection(ssl=...)``:
Python 3.11's ``asyncio/sslproto.py`` allocates a 256 KiB read buffer per
connection, which alone would cost 250 MiB at 1,000 idle uplinks.  Here the
only per-connection buffers are OpenSSL's own and whatever is in flight.

HTTP/2 framing, flow control and HPACK come from the ``h2`` library.  The
roles are *reversed* on the uplink: the Transporter dials out (TLS client) and
serves HTTP/2 (``h2`` server side); the Director accepts (TLS server) and opens
streams (``h2`` client side).  On a Direct Connect channel the Director dials
the Transporter, which is TLS server and HTTP/2 server.  Either way the
Transporter only ever *answers* streams; it can never open one, so a tenant
has no way to address anything at the Director but its own session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.frame_buffer
import h2.settings
import hyperframe.exceptions
import hyperframe.frame
from cryptography import x509

from tenantry.protocol import busy, proxyproto
from tenantry.protocol.gate import ConnectionGate
from tenantry.protocol.ratelimit import TokenBucket
from tenantry.protocol.tlsengine import TLSEngine, TLSError

log = logging.getLogger(__name__)

Headers = list[tuple[str, str]]
StreamHandler = Callable[["H2Stream"], Awaitable[None]]

# HTTP/2 bytes are parsed in slices so that a flood is noticed (and cut off) after one slice,
# not after the whole socket read (up to 256 KiB of 9-byte frames): h2 spends tens of
# microseconds per frame, so a 2 KiB slice of PINGs costs a few milliseconds.  A slice ends on
# a frame boundary and holds whole frames only: h2 gets each frame once, complete (a 1 MiB DATA
# frame in one call instead of 64 calls of 16 KiB that each re-parse a partial frame).
_H2_SLICE = 16384
_H2_SLICE_MIN = 2048
_FRAME_HEADER = 9
_PREAMBLE = len(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
# A PING or SETTINGS frame makes us answer: it costs more of the control budget.
_REPLY_COST = 5.0
# Control replies (PING/SETTINGS ACKs, RST_STREAM) a non-reading peer may make us queue
# beyond what our own flow-controlled writers can: past it we stop reading from that peer.
_REPLY_ALLOWANCE = 65536
_MIN_FRAME_SIZE = 16384  # HTTP/2's smallest MAX_FRAME_SIZE
# A WINDOW_UPDATE this small is no real flow-control step: it counts as a control frame.
_TINY_WINDOW_UPDATE = 1024
# ALPN of a raw tunnel connection (Direct Connect only): after the handshake no HTTP/2, just
# the tunnel's bytes, once the owner has accepted a one-time token (see protocol/rawtunnel.py).
RAW_ALPN = "tenantry-raw/1"
_RAW_PENDING_MAX = 1 << 20  # raw bytes held before the owner takes them (reading stops at the first)


def _data_frame_repr(frame: hyperframe.frame.DataFrame) -> str:
    return f"data=<{len(frame.data)} bytes>"


# h2 4.x formats every frame it receives for a trace log, even when nothing logs it
# (``repr(frame)`` in ``H2Connection._receive_frame``), and hyperframe's repr of a DATA frame
# hex-encodes the whole payload before cutting it to 20 characters.  Measured on the repository
# carriers: 40 % of a restore's time through the uplink.  A DATA frame's repr shows its length
# instead; nothing else uses it.
hyperframe.frame.DataFrame._body_repr = _data_frame_repr  # type: ignore[method-assign,assignment]


_HEADER = struct.Struct(">HBBBL")  # a frame header: length (24 bits), type, flags, stream id
_DATA_TYPE = 0x0
_END_STREAM = 0x1
# A DATA payload at least this large goes to TLS as it is; smaller ones are joined with the frames around them.
_OWN_PIECE = 16384


class _H2Connection(h2.connection.H2Connection):
    """h2's connection that hands out large DATA payloads as they are, without copying them.

    h2 serializes each frame (hyperframe joins the payload into the frame body, then the header and
    the body: two copies), appends it to its send buffer (a third) and :meth:`data_to_send` copies
    the buffer out (a fourth).  Here the frames h2 decides to send are queued in order as *pieces*:
    a large DATA frame's header joins the small frames before it and its payload is a piece of its
    own, which :meth:`Channel._flush` gives TLS directly.  h2 still does all the protocol work
    (states, flow control, frame sizes); only the bytes it would copy are not copied.
    """

    def __init__(self, config: h2.config.H2Configuration) -> None:
        super().__init__(config=config)
        self._pieces: list[bytes | memoryview] = []  # sent before what is in self._data_to_send

    def _prepare_for_sending(self, frames: list[hyperframe.frame.Frame]) -> None:
        for frame in frames:
            if type(frame) is hyperframe.frame.DataFrame and "PADDED" not in frame.flags:
                data = frame.data
                size = len(data)
                assert size <= self.max_outbound_frame_size
                flags = _END_STREAM if "END_STREAM" in frame.flags else 0
                self._data_to_send += _HEADER.pack(size >> 8, size & 0xFF, _DATA_TYPE, flags, frame.stream_id)
                if size >= _OWN_PIECE:
                    self._pieces.append(bytes(self._data_to_send))
                    self._data_to_send.clear()
                    self._pieces.append(data)
                else:
                    self._data_to_send += data
            else:
                self._data_to_send += frame.serialize()

    def pieces_to_send(self) -> list[bytes | memoryview]:
        """What to send, in order, as pieces (the channel's :meth:`data_to_send`)."""
        pieces, self._pieces = self._pieces, []
        if self._data_to_send:
            pieces.append(bytes(self._data_to_send))
            self._data_to_send.clear()
        return pieces

    def data_to_send(self, amount: int | None = None) -> bytes:
        if self._pieces:
            self._data_to_send[:0] = b"".join(self._pieces)
            self._pieces = []
        return super().data_to_send(amount)

    def clear_outbound_data_buffer(self) -> None:
        self._pieces = []
        super().clear_outbound_data_buffer()


class _WholeFrameBuffer(h2.frame_buffer.FrameBuffer):
    """h2's frame buffer without its copies, for a channel that hands it whole frames only.

    h2's own buffer appends every received byte to a bytearray, slices each frame out of it (a
    copy) and deletes it from the front; hyperframe then copies the payload once more.  The channel
    gives h2 whole frames (:meth:`Channel._receive_frames`), so they are parsed here straight from
    the caller's buffer and only hyperframe's copy of a payload is left: two copies of every byte
    received fewer.  The preface, or bytes left over (never, from the channel), take h2's own path;
    the checks (frame size, header blocks) are h2's.
    """

    def __init__(self, server: bool) -> None:
        super().__init__(server=server)
        self._view: memoryview | None = None
        self._pos = 0

    def add_data(self, data: Any) -> None:
        self._spill()
        if self._preamble_len or self._data:
            super().add_data(data)
            return
        self._view = memoryview(data)
        self._pos = 0

    def _spill(self) -> None:
        """What is left of the caller's buffer (an incomplete frame) moves into h2's own buffer."""
        view, self._view = self._view, None
        if view is not None and self._pos < len(view):
            self._data += view[self._pos :]

    def __next__(self) -> hyperframe.frame.Frame:
        view = self._view
        if view is None:
            return super().__next__()
        while True:
            pos = self._pos
            if len(view) - pos < _FRAME_HEADER:
                self._spill()
                raise StopIteration
            try:
                frame, length = hyperframe.frame.Frame.parse_frame_header(view[pos : pos + _FRAME_HEADER])
            except (hyperframe.exceptions.InvalidDataError, hyperframe.exceptions.InvalidFrameError) as err:
                raise h2.exceptions.ProtocolError(f"Received frame with invalid header: {err!s}") from err
            if len(view) - pos - _FRAME_HEADER < length:
                self._spill()
                raise StopIteration
            self._validate_frame_length(length)
            try:
                frame.parse_body(view[pos + _FRAME_HEADER : pos + _FRAME_HEADER + length])
            except hyperframe.exceptions.InvalidDataError as err:
                raise h2.exceptions.ProtocolError("Received frame with non-compliant data") from err
            except hyperframe.exceptions.InvalidFrameError as err:
                raise h2.exceptions.FrameDataMissingError("Frame data missing or invalid") from err
            self._pos = pos + _FRAME_HEADER + length
            complete = self._update_header_buffer(frame)
            if complete is not None:
                return complete


class ChannelClosed(ConnectionError):
    """The channel is gone (peer closed, heartbeat lost, revoked, shut down)."""


class StreamError(ConnectionError):
    """The stream was reset by the peer or could not be used."""


@dataclass(frozen=True)
class ChannelLimits:
    """Per-connection limits; both ends advertise theirs in HTTP/2 SETTINGS."""

    max_frame_size: int = 16384
    max_concurrent_streams: int = 100
    stream_window: int = 1 << 20
    connection_window: int = 4 << 20
    max_header_list_size: int = 16384
    handshake_timeout: float = 10.0
    # Frames that cost work but carry no data (PING, SETTINGS, PRIORITY, RST_STREAM from the
    # peer, empty DATA, tiny WINDOW_UPDATE): a token bucket; past it the peer gets GOAWAY
    # ENHANCE_YOUR_CALM and the connection is closed.
    control_frames_per_second: float = 100.0
    control_frames_burst: int = 1000
    # None: TLS proved the peer.  Otherwise the peer must be proven (mark_proven) within
    # proof_timeout seconds and may send at most unproven_bytes before that.
    unproven_bytes: int | None = None
    proof_timeout: float = 5.0


@dataclass(frozen=True)
class Response:
    status: int
    headers: Headers
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


class H2Stream:
    """One HTTP/2 stream: request/response bodies or a CONNECT tunnel."""

    def __init__(self, channel: Channel, stream_id: int, headers: Headers | None = None) -> None:
        self.channel = channel
        self.stream_id = stream_id
        self.request_headers: Headers = headers or []
        loop = asyncio.get_running_loop()
        self.response_headers: asyncio.Future[Headers] = loop.create_future()
        self._chunks: deque[tuple[bytes, int]] = deque()
        self._eof = False
        self._error: BaseException | None = None
        self._readable = asyncio.Event()
        self._window = asyncio.Event()
        self._local_closed = False

    # -- request helpers (server role)
    def header(self, name: str) -> str | None:
        for key, value in self.request_headers:
            if key == name:
                return value
        return None

    @property
    def method(self) -> str:
        return self.header(":method") or ""

    @property
    def path(self) -> str:
        return self.header(":path") or ""

    # -- fed by the channel
    def _feed(self, data: bytes, flow_len: int) -> None:
        self._chunks.append((data, flow_len))
        self._readable.set()

    def _feed_eof(self) -> None:
        self._eof = True
        self._readable.set()

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        self._readable.set()
        self._window.set()
        if not self.response_headers.done():
            self.response_headers.set_exception(exc)
            # Nobody may be waiting for the headers; don't warn about it.
            self.response_headers.exception()

    def _wake_writer(self) -> None:
        self._window.set()

    # -- reading
    async def read(self) -> bytes:
        """The next chunk of the body; ``b""`` at end of stream."""
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self._eof:
                return b""
            self._readable.clear()
            await self._readable.wait()
        data, flow_len = self._chunks.popleft()
        self.channel._acknowledge(self.stream_id, flow_len)
        return data

    async def read_all(self, limit: int) -> bytes:
        """The whole body; resets the stream and raises when it exceeds ``limit``."""
        parts: list[bytes] = []
        size = 0
        while True:
            chunk = await self.read()
            if not chunk:
                return b"".join(parts)
            size += len(chunk)
            if size > limit:
                self.reset(h2.errors.ErrorCodes.REFUSED_STREAM)
                raise StreamError(f"body larger than {limit} bytes")
            parts.append(chunk)

    # -- writing
    def send_headers(self, headers: Headers, *, end_stream: bool = False) -> None:
        self.channel._send_headers(self.stream_id, headers, end_stream=end_stream)
        if end_stream:
            self._local_closed = True

    async def write(self, data: bytes) -> None:
        """Send body bytes, waiting for HTTP/2 flow-control credit and socket drain."""
        view = memoryview(data)
        self.channel._writers += 1
        try:
            while view:
                if self._error is not None:
                    raise self._error
                await self.channel._drained()
                window = self.channel._send_window(self.stream_id)
                if window <= 0:
                    self._window.clear()
                    await self._window.wait()
                    continue
                if window >= len(view):
                    # All of it fits the window and a frame: no copy (h2 frames what it is given, and
                    # the channel encrypts the payload where it lies, before this returns).
                    self.channel._send_data(self.stream_id, data if len(view) == len(data) else view)
                    return
                self.channel._send_data(self.stream_id, view[:window])
                view = view[window:]
        finally:
            self.channel._writers -= 1

    def end(self) -> None:
        if not self._local_closed:
            self._local_closed = True
            self.channel._end_stream(self.stream_id)

    async def respond(self, status: int, body: bytes = b"", content_type: str = "application/json") -> None:
        """Server role: send a complete response."""
        headers = [(":status", str(status)), ("content-type", content_type), ("content-length", str(len(body)))]
        if not body:
            self.send_headers(headers, end_stream=True)
            return
        self.send_headers(headers)
        await self.write(body)
        self.end()

    def reset(self, code: int = h2.errors.ErrorCodes.CANCEL) -> None:
        self.channel._reset(self.stream_id, code)
        self._fail(StreamError(f"stream reset locally (code {code})"))


class Channel(asyncio.Protocol):
    """TLS via MemoryBIO plus an HTTP/2 connection in one asyncio protocol."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        *,
        server_side: bool,
        h2_client: bool,
        server_hostname: str | None = None,
        limits: ChannelLimits | None = None,
        handler: StreamHandler | None = None,
        on_secure: Callable[[Channel], None] | None = None,
        on_closed: Callable[[Channel], None] | None = None,
        gate: ConnectionGate | None = None,
        trusted_proxy: Callable[[str], bool] | None = None,
    ) -> None:
        self._ctx = ssl_context
        # Server side behind a load balancer: a trusted proxy may say who the client is first (PROXY v2).
        self._trusted_proxy = trusted_proxy
        self._proxy_pending: bytearray | None = None
        self._gate = gate
        self._server_side = server_side
        self._server_hostname = server_hostname
        self.limits = limits or ChannelLimits()
        self._handler = handler
        self._on_secure = on_secure
        self._on_closed = on_closed
        self._transport: asyncio.Transport | None = None
        self._tls: TLSEngine | None = None
        self._secure = False
        self._h2: _H2Connection | None = None
        self._h2_client = h2_client
        self._streams: dict[int, H2Stream] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._served: dict[int, asyncio.Task[None]] = {}  # stream id -> handler task (server role)
        self._write_ok = asyncio.Event()
        self._write_ok.set()
        self._writers = 0  # H2Stream.write calls in progress
        self._reading_paused = False
        self._handshake_timer: asyncio.TimerHandle | None = None
        self._proof_timer: asyncio.TimerHandle | None = None
        self._control = TokenBucket(self.limits.control_frames_per_second, self.limits.control_frames_burst)
        self.proven = self.limits.unproven_bytes is None
        self._unproven_left = self.limits.unproven_bytes or 0
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[str] = loop.create_future()
        self.peer_cert: x509.Certificate | None = None
        self.peer_cert_der: bytes | None = None
        self.peer_address: str = ""
        self.source: str = ""  # the peer's IP address (what a ConnectionGate counts)
        self.local_port: int = 0
        self.last_rx = time.monotonic()
        self.opened_at = time.monotonic()
        self.bytes_received = 0  # TLS bytes read from / written to the socket (what crossed the wire)
        self.bytes_sent = 0
        self.goaway_code: int | None = None
        self.goaway_data: bytes = b""
        self.close_reason: str = ""
        self._stream_slots: asyncio.Semaphore | None = None
        self._connection_window = 0
        self.tag: object = None  # owner's bookkeeping (tenant id, ...)
        # Client side: the server refused us before TLS and said when to come back (protocol/busy.py).
        self.busy_retry_after: float | None = None
        self._received_any = False
        # HTTP/2 bytes read but not yet given to h2 (the start of an incomplete frame), their
        # length, and how many bytes that frame needs (joined once, when they are all there).
        self._h2_parts: list[bytes] = []
        self._h2_have = 0
        self._h2_need = 0
        self._preamble_left = 0 if h2_client else _PREAMBLE  # the client's preface precedes the frames
        self._frame_cap = _MIN_FRAME_SIZE  # the largest MAX_FRAME_SIZE we ever advertised
        # Raw mode (ALPN RAW_ALPN): plaintext goes to on_raw_data / on_raw_eof, never to h2.
        self.raw = False
        self._raw_pending: list[bytes] = []
        self._raw_eof = False
        self._raw_paused = False
        self._on_raw_data: Callable[[bytes], None] | None = None
        self._on_raw_eof: Callable[[], None] | None = None
        # Raw mode: told False when the socket's write buffer passed its high-water mark, True when it
        # drained (the owner pauses and resumes its other side: rawtunnel.relay_raw).
        self.on_raw_writable: Callable[[bool], None] | None = None

    # ------------------------------------------------------------------ asyncio
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer_address = f"{peer[0]}:{peer[1]}"
            self.source = str(peer[0])
        sock = transport.get_extra_info("sockname")
        if sock:
            self.local_port = int(sock[1])
        if self._server_side and self._trusted_proxy is not None and self._trusted_proxy(self.source):
            self._proxy_pending = bytearray()
        if self._gate is not None and not self._gate.admit(self):
            self._gate = None  # never admitted: nothing to release
            transport.abort()  # refused before TLS: no state, no timer
            self._finish("refused: too many connections")
            return
        try:
            self._tls = TLSEngine(self._ctx, server_side=self._server_side, server_hostname=self._server_hostname)
        except TLSError as exc:
            self._abort(str(exc))
            return
        loop = asyncio.get_running_loop()
        self._handshake_timer = loop.call_later(self.limits.handshake_timeout, self._handshake_timeout)
        if not self._server_side:
            self._do_handshake()

    def data_received(self, data: bytes) -> None:
        self.last_rx = time.monotonic()
        self.bytes_received += len(data)
        if self._tls is None or self.closed.done():
            return
        if self._proxy_pending is not None:
            rest = self._proxy_header(data)
            if not rest:
                return
            data = rest
        if not self._received_any:
            self._received_any = True
            if not self._server_side:
                retry_after = busy.parse(data)
                if retry_after is not None:
                    self.busy_retry_after = retry_after
                    self._abort(f"server busy: retry in {retry_after:g} s")
                    return
        self._tls.feed(data)
        if not self._secure:
            self._do_handshake()
            # The owner may have refused the peer during the handshake: nothing more is read.
            if not self._secure or self.closed.done():
                return
        self._read_tls()

    def eof_received(self) -> bool | None:
        self._abort("peer closed the connection")
        return False

    def _proxy_header(self, data: bytes) -> bytes | None:
        """Bytes after a trusted proxy's PROXY v2 header (``None``: wait, or the connection was dropped)."""
        assert self._proxy_pending is not None
        self._proxy_pending += data
        pending = bytes(self._proxy_pending)
        if proxyproto.may_start(pending):
            try:
                header = proxyproto.parse(pending)
            except proxyproto.ProxyHeaderError as exc:
                self._abort(f"bad PROXY header from a trusted proxy: {exc}")
                return None
            if header is None:
                return None
            if header.source is not None:
                self.source = header.source[0]
                host = f"[{header.source[0]}]" if ":" in header.source[0] else header.source[0]
                self.peer_address = f"{host}:{header.source[1]}"
            pending = pending[header.length :]
        self._proxy_pending = None
        return pending

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(self.close_reason or (f"connection lost: {exc}" if exc else "connection closed"))

    def pause_writing(self) -> None:
        self._write_ok.clear()
        if self.on_raw_writable is not None:
            self.on_raw_writable(False)

    def resume_writing(self) -> None:
        self._write_ok.set()
        if self.on_raw_writable is not None:
            self.on_raw_writable(True)
        if self._raw_paused:
            self._reading_paused = False  # the raw owner resumes reading when its side has drained
            return
        if self._reading_paused and self._transport is not None and not self._transport.is_closing():
            self._reading_paused = False
            self._transport.resume_reading()

    # ------------------------------------------------------------------ TLS
    def _handshake_timeout(self) -> None:
        if not self._secure:
            self._abort("TLS handshake timed out")

    def _do_handshake(self) -> None:
        assert self._tls is not None
        try:
            done = self._tls.handshake()
        except TLSError as exc:
            self._flush_tls()
            self._abort(str(exc))
            return
        if not done:
            self._flush_tls()
            return
        self._secure = True
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None
        der = self._tls.peer_certificate()
        if der:
            self.peer_cert_der = der
            try:
                self.peer_cert = x509.load_der_x509_certificate(der)
            except ValueError:
                self.peer_cert = None
        self.raw = self._tls.alpn() == RAW_ALPN
        if not self.raw:
            self._start_h2()
        if self._on_secure is not None and not self.closed.done():
            try:
                self._on_secure(self)
            except Exception as exc:  # the owner refused this peer
                self.close(str(exc), code=h2.errors.ErrorCodes.REFUSED_STREAM, debug=str(exc).encode()[:200])
                return
        if not self.proven:
            loop = asyncio.get_running_loop()
            self._proof_timer = loop.call_later(self.limits.proof_timeout, self._proof_timeout)
        if not self.ready.done() and not self.closed.done():
            self.ready.set_result(None)

    def _start_h2(self) -> None:
        cfg = h2.config.H2Configuration(client_side=self._h2_client, header_encoding="utf-8")
        conn = _H2Connection(config=cfg)
        conn.incoming_buffer = _WholeFrameBuffer(server=not self._h2_client)
        lim = self.limits
        # An unproven peer gets the smallest frames HTTP/2 allows until mark_proven raises them.
        frame_size = lim.max_frame_size if self.proven else _MIN_FRAME_SIZE
        conn.local_settings = h2.settings.Settings(
            client=self._h2_client,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: lim.max_concurrent_streams,
                h2.settings.SettingCodes.MAX_FRAME_SIZE: frame_size,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: lim.stream_window,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: lim.max_header_list_size,
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
            },
        )
        conn.max_inbound_frame_size = frame_size
        self._frame_cap = max(self._frame_cap, frame_size)
        conn.initiate_connection()
        extra = lim.connection_window - 65535
        if extra > 0:
            conn.increment_flow_control_window(extra)
        self._connection_window = max(lim.connection_window, 65535)
        self._h2 = conn
        self._flush()

    def _read_tls(self) -> None:
        assert self._tls is not None
        data, eof_reason = self._tls.read()
        if data and not self.closed.done():
            # Raw mode bounds an unproven peer differently: nothing is read past the first batch
            # until the owner has checked its token (_raw_received, read_token).
            if not self.proven and not self.raw:
                self._unproven_left -= len(data)
                if self._unproven_left < 0:
                    self._calm(f"peer sent more than {self.limits.unproven_bytes} bytes before proving itself")
                    return
            if self.raw:
                self._raw_received(data)
            else:
                self._receive_h2(data)
        if self.raw and eof_reason == "peer closed TLS" and not self.closed.done():
            # The peer's half-close (close_notify): it may still read what we send.
            self._raw_eof = True
            if self._on_raw_eof is not None:
                self._on_raw_eof()
            self._flush_tls()
            return
        if eof_reason:
            self._abort(eof_reason)
            return
        self._flush_tls()

    def _flush_tls(self) -> None:
        transport = self._transport
        if self._tls is None or transport is None or transport.is_closing():
            return
        data = self._tls.outgoing()
        if data:
            self.bytes_sent += len(data)
            transport.write(data)
        if not self._reading_paused and transport.get_write_buffer_size() > self._backlog_limit(transport):
            # The peer does not read what we answer: stop reading what it sends (resume_writing resumes).
            self._reading_paused = True
            transport.pause_reading()

    def _backlog_limit(self, transport: asyncio.Transport) -> int:
        """Write buffer our own writers can explain: the high-water mark plus one frame per writer."""
        frame = self._h2.max_outbound_frame_size if self._h2 is not None else self.limits.max_frame_size
        return transport.get_write_buffer_limits()[1] + self._writers * (frame + 64) + _REPLY_ALLOWANCE

    # ------------------------------------------------------------------ abuse limits
    def _proof_timeout(self) -> None:
        self._proof_timer = None
        if not self.proven:
            self._calm(f"peer did not prove itself within {self.limits.proof_timeout:g} s")

    # -- ConnectionGate
    def evictable(self) -> bool:
        if self.raw:
            return self._on_raw_data is None  # a raw connection no owner has taken yet
        return not self.proven or (self._secure and not self._streams)

    def evict(self) -> None:
        self._abort("evicted: the listener is full and another source needed the slot")

    def mark_proven(self) -> None:
        """The owner verified the peer (a PSK proof): lift the pre-proof byte budget and deadline."""
        if self.proven:
            return
        self.proven = True
        if self._proof_timer is not None:
            self._proof_timer.cancel()
            self._proof_timer = None
        if self._h2 is not None and self.limits.max_frame_size > _MIN_FRAME_SIZE:
            # Larger frames from now on (applied by h2 once the peer acknowledges the SETTINGS).
            self._h2.update_settings({h2.settings.SettingCodes.MAX_FRAME_SIZE: self.limits.max_frame_size})
            self._frame_cap = max(self._frame_cap, self.limits.max_frame_size)
            self._flush()

    def _control_frame(self, kind: str, cost: float = 1.0) -> None:
        if not self._control.take(cost):
            self._calm(f"{kind} flood: more than {self.limits.control_frames_per_second:g} control frames/s")

    def _calm(self, reason: str) -> None:
        log.warning("closing connection from %s: %s", self.peer_address, reason)
        self.close(reason, code=h2.errors.ErrorCodes.ENHANCE_YOUR_CALM, debug=b"enhance your calm")

    # ------------------------------------------------------------------ raw mode
    def _raw_received(self, data: bytes) -> None:
        if self._on_raw_data is not None:
            self._on_raw_data(data)
            return
        # Nobody reads yet (the owner is about to): hold this, read nothing more until take_raw.
        self._raw_pending.append(data)
        self.pause_raw(True)
        if sum(map(len, self._raw_pending)) > _RAW_PENDING_MAX:
            self._abort("raw connection sent too much before it was accepted")

    def take_raw(self, on_data: Callable[[bytes], None], on_eof: Callable[[], None]) -> None:
        """Raw mode: receive the plaintext from now on (first what arrived before); reading stays as it is."""
        self._on_raw_data, self._on_raw_eof = on_data, on_eof
        pending, self._raw_pending = self._raw_pending, []
        for data in pending:
            on_data(data)
        if self._raw_eof:
            on_eof()

    def send_raw(self, data: bytes) -> None:
        """Raw mode: encrypt and send ``data`` (wait for :meth:`drained` before sending more)."""
        if self._tls is None or self.closed.done():
            raise ChannelClosed(self.close_reason or "channel closed")
        try:
            self._tls.write(data)
        except TLSError as exc:
            self._abort(str(exc))
            raise ChannelClosed(str(exc)) from None
        self._flush_tls()

    def end_raw(self) -> None:
        """Raw mode: half-close (TLS close_notify); what the peer still sends keeps arriving."""
        if self._tls is not None and not self.closed.done():
            self._tls.shutdown()
            self._flush_tls()

    def pause_raw(self, paused: bool) -> None:
        """Raw mode: stop (or resume) reading from the peer while the owner's other side drains."""
        transport = self._transport
        self._raw_paused = paused
        if transport is None or transport.is_closing():
            return
        if paused:
            transport.pause_reading()
        elif not self._reading_paused:
            transport.resume_reading()

    async def drained(self) -> None:
        """Raw mode: wait until the socket's write buffer is below its high-water mark (raises once closed)."""
        if not self._write_ok.is_set() and not self.closed.done():
            waiter: asyncio.Future[Any] = asyncio.ensure_future(self._write_ok.wait())
            await asyncio.wait([waiter, self.closed], return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
        if self.closed.done():
            raise ChannelClosed(self.close_reason or "channel closed")

    # ------------------------------------------------------------------ HTTP/2
    def _receive_h2(self, data: bytes) -> None:
        if self._h2_parts:
            self._h2_parts.append(data)
            self._h2_have += len(data)
            if self._h2_have < self._h2_need:
                return  # the frame is still incomplete: nothing to parse yet
            data = b"".join(self._h2_parts)
            self._h2_parts = []
        view = memoryview(data)
        try:
            start = self._receive_frames(view)
        finally:
            view.release()
        if start is None or start >= len(data):
            self._h2_parts, self._h2_have, self._h2_need = [], 0, 0
            return
        rest = data[start:]
        self._h2_parts, self._h2_have = [rest], len(rest)
        self._h2_need = _FRAME_HEADER + int.from_bytes(rest[:3], "big") if len(rest) >= _FRAME_HEADER else 0

    def _receive_frames(self, view: memoryview) -> int | None:
        """Feed h2 the whole frames in ``view``: where the unfed rest starts (``None``: closing)."""
        end = len(view)
        start = 0
        if self._preamble_left:
            # The client's connection preface: h2 checks it; it is no frame.
            start = min(self._preamble_left, end)
            self._preamble_left -= start
            if self._feed_h2(view[:start]) is None:
                return None
        size = _H2_SLICE_MIN
        pos = start
        while True:
            # Whole frames from ``start`` until the slice is full or no complete frame is left.
            frames = 0
            while pos + _FRAME_HEADER <= end:
                length = int.from_bytes(view[pos : pos + 3], "big")
                if length > self._frame_cap:
                    self.close(
                        f"HTTP/2 protocol error: a frame of {length} bytes (largest allowed {self._frame_cap})",
                        code=h2.errors.ErrorCodes.FRAME_SIZE_ERROR,
                    )
                    return None
                if pos + _FRAME_HEADER + length > end:
                    break
                pos += _FRAME_HEADER + length
                frames += 1
                if pos - start >= size:
                    break
            if not frames:
                return start
            events = self._feed_h2(view[start:pos])
            if events is None:
                return None
            start = pos
            # Many frames in few bytes is what a flood looks like: keep the slices small (a cut-off
            # comes after one small slice); large frames (bulk data) get large slices.
            size = _H2_SLICE if events <= 4 else _H2_SLICE_MIN

    def _feed_h2(self, chunk: memoryview) -> int | None:
        """Give h2 whole frames and act on their events: how many (``None``: the channel is closing)."""
        if self._h2 is None or self.closed.done():
            return None
        try:
            events = self._h2.receive_data(chunk)
        except h2.exceptions.ProtocolError as exc:
            self._flush()
            self._abort(f"HTTP/2 protocol error: {exc}")
            return None
        for event in events:
            self._dispatch(event)
            if self.closed.done():
                return None
        self._flush()
        return len(events)

    def _dispatch(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            self._on_request(event)
        elif isinstance(event, h2.events.ResponseReceived):
            stream = self._streams.get(event.stream_id or 0)
            if stream is not None and not stream.response_headers.done():
                stream.response_headers.set_result(_decode_headers(event.headers))
        elif isinstance(event, h2.events.DataReceived):
            sid = event.stream_id or 0
            if not event.data and not event.stream_ended:
                self._control_frame("empty DATA")
            stream = self._streams.get(sid)
            if stream is None:
                self._acknowledge(sid, event.flow_controlled_length or 0)
            else:
                stream._feed(event.data or b"", event.flow_controlled_length or 0)
        elif isinstance(event, h2.events.StreamEnded):
            stream = self._streams.get(event.stream_id or 0)
            if stream is not None:
                stream._feed_eof()
                self._maybe_forget(stream)
        elif isinstance(event, h2.events.StreamReset):
            if event.remote_reset:
                self._control_frame("RST_STREAM")
            stream = self._streams.pop(event.stream_id or 0, None)
            if stream is not None:
                stream._fail(StreamError(f"stream reset by peer (code {event.error_code})"))
            served = self._served.get(event.stream_id or 0)
            if served is not None:
                served.cancel()  # the handler stops; its slot frees when it has
        elif isinstance(event, h2.events.WindowUpdated):
            if (event.delta or 0) < _TINY_WINDOW_UPDATE:
                self._control_frame("WINDOW_UPDATE")
            if not event.stream_id:
                for stream in self._streams.values():
                    stream._wake_writer()
            else:
                stream = self._streams.get(event.stream_id)
                if stream is not None:
                    stream._wake_writer()
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self._control_frame("SETTINGS", _REPLY_COST)
            for stream in self._streams.values():
                stream._wake_writer()
        elif isinstance(event, h2.events.PingReceived):
            self._control_frame("PING", _REPLY_COST)
        elif isinstance(event, h2.events.PriorityUpdated):
            self._control_frame("PRIORITY")
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway_code = int(event.error_code) if event.error_code is not None else 0
            self.goaway_data = event.additional_data or b""
            detail = self.goaway_data.decode("utf-8", "replace")
            self._abort(f"peer sent GOAWAY (code {self.goaway_code}{': ' + detail if detail else ''})")
        elif isinstance(event, h2.events.PushedStreamReceived) and self._h2 is not None and event.pushed_stream_id:
            self._h2.reset_stream(event.pushed_stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)

    def _on_request(self, event: h2.events.RequestReceived) -> None:
        sid = event.stream_id or 0
        if self._handler is None or self._h2_client:
            if self._h2 is not None:
                self._h2.reset_stream(sid, h2.errors.ErrorCodes.REFUSED_STREAM)
            return
        if len(self._served) >= self.limits.max_concurrent_streams:
            # Streams the peer reset still count until their handlers have stopped.
            if self._h2 is not None:
                with contextlib.suppress(h2.exceptions.StreamClosedError):  # the peer reset it already
                    self._h2.reset_stream(sid, h2.errors.ErrorCodes.REFUSED_STREAM)
            self._control_frame("refused stream")
            return
        stream = H2Stream(self, sid, _decode_headers(event.headers or []))
        self._streams[sid] = stream
        if event.stream_ended is not None:
            stream._feed_eof()
        task = asyncio.get_running_loop().create_task(self._serve_stream(stream))
        self._tasks.add(task)
        self._served[sid] = task
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _t: self._served.pop(sid, None))

    async def _serve_stream(self, stream: H2Stream) -> None:
        assert self._handler is not None
        try:
            await self._handler(stream)
        except (StreamError, ChannelClosed):
            pass
        except Exception:
            log.exception("stream handler failed on %s", stream.path or stream.header(":authority"))
            with contextlib.suppress(Exception):
                stream.reset(h2.errors.ErrorCodes.INTERNAL_ERROR)
        finally:
            stream._local_closed = True
            self._maybe_forget(stream, force=True)

    def _maybe_forget(self, stream: H2Stream, force: bool = False) -> None:
        if (force or (stream._local_closed and stream._eof)) and self._streams.get(stream.stream_id) is stream:
            self._streams.pop(stream.stream_id, None)

    def _flush(self) -> None:
        if self._h2 is None or self._tls is None:
            return
        try:
            for piece in self._h2.pieces_to_send():
                self._tls.write(piece)  # encrypted straight from the piece: a DATA payload is not copied
        except TLSError as exc:
            self._abort(str(exc))
            return
        self._flush_tls()

    # -- used by H2Stream
    def _check_open(self) -> h2.connection.H2Connection:
        if self.closed.done() or self._h2 is None:
            raise ChannelClosed(self.close_reason or "channel closed")
        return self._h2

    def _acknowledge(self, stream_id: int, flow_len: int) -> None:
        if flow_len <= 0 or self._h2 is None or self.closed.done():
            return
        try:
            self._h2.acknowledge_received_data(flow_len, stream_id)
        except h2.exceptions.StreamClosedError:
            # The stream closed; still give the connection-level credit back.
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self._h2.increment_flow_control_window(flow_len)
        except h2.exceptions.ProtocolError:
            return
        self._flush()

    def _send_headers(self, stream_id: int, headers: Headers, *, end_stream: bool) -> None:
        conn = self._check_open()
        try:
            conn.send_headers(stream_id, headers, end_stream=end_stream)
        except h2.exceptions.ProtocolError as exc:
            raise StreamError(str(exc)) from exc
        self._flush()

    def _send_window(self, stream_id: int) -> int:
        conn = self._check_open()
        try:
            window = conn.local_flow_control_window(stream_id)
        except h2.exceptions.ProtocolError as exc:
            raise StreamError(str(exc)) from exc
        return min(window, conn.max_outbound_frame_size)

    def _send_data(self, stream_id: int, data: bytes | memoryview) -> None:
        conn = self._check_open()
        try:
            conn.send_data(stream_id, data)
        except h2.exceptions.ProtocolError as exc:
            raise StreamError(str(exc)) from exc
        self._flush()

    def _end_stream(self, stream_id: int) -> None:
        if self._h2 is None or self.closed.done():
            return
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self._h2.end_stream(stream_id)
        self._flush()
        stream = self._streams.get(stream_id)
        if stream is not None:
            self._maybe_forget(stream)

    def _reset(self, stream_id: int, code: int) -> None:
        self._streams.pop(stream_id, None)
        if self._h2 is None or self.closed.done():
            return
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self._h2.reset_stream(stream_id, code)
        self._flush()

    async def _drained(self) -> None:
        if not self._write_ok.is_set():
            closed = self.closed
            waiter: asyncio.Future[Any] = asyncio.ensure_future(self._write_ok.wait())
            await asyncio.wait([waiter, closed], return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
        self._check_open()

    # ------------------------------------------------------------------ public API
    @property
    def is_open(self) -> bool:
        return self._secure and not self.closed.done()

    @property
    def active_streams(self) -> int:
        return len(self._streams)

    def ping(self) -> None:
        if self._h2 is None or self.closed.done():
            return
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self._h2.ping(b"tnt-ping")
        self._flush()

    def grow_window(self, stream_id: int, size: int) -> None:
        """Let a bulk stream receive ``size`` bytes unacknowledged (its connection at least four times that).

        Control streams keep the small windows the channel was configured with; a stream that
        carries repository data gets more room, so a round trip does not stall it.
        """
        conn = self._h2
        if conn is None or self.closed.done():
            return
        with contextlib.suppress(h2.exceptions.ProtocolError):
            extra = size - conn.local_settings.initial_window_size
            if extra > 0:
                conn.increment_flow_control_window(extra, stream_id)
            wanted = 4 * size
            if self._connection_window < wanted:
                conn.increment_flow_control_window(wanted - self._connection_window)
                self._connection_window = wanted
        self._flush()

    def raise_frame_size(self, size: int) -> None:
        """Accept frames up to ``size`` from now on (bulk data: fewer, larger frames; never lowered)."""
        conn = self._h2
        if conn is None or self.closed.done() or not self.proven:
            return
        if size > conn.local_settings.max_frame_size:
            conn.update_settings({h2.settings.SettingCodes.MAX_FRAME_SIZE: size})
            self._frame_cap = max(self._frame_cap, size)
            self._flush()

    def silent_for(self) -> float:
        return time.monotonic() - self.last_rx

    def open_stream(self, headers: Headers, *, end_stream: bool = False) -> H2Stream:
        """Client role: open a new stream with ``headers``."""
        conn = self._check_open()
        if not self._h2_client:
            raise StreamError("only the HTTP/2 client side opens streams")
        try:
            sid = conn.get_next_available_stream_id()
            stream = H2Stream(self, sid)
            self._streams[sid] = stream
            conn.send_headers(sid, headers, end_stream=end_stream)
        except h2.exceptions.H2Error as exc:
            raise StreamError(f"cannot open stream: {exc}") from exc
        if end_stream:
            stream._local_closed = True
        self._flush()
        return stream

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        headers: Iterable[tuple[str, str]] = (),
        authority: str = "transporter",
        limit: int = 1 << 20,
        timeout: float = 30.0,
    ) -> Response:
        """Client role: one request/response exchange on a new stream."""
        if self._stream_slots is None:
            self._stream_slots = asyncio.Semaphore(self.limits.max_concurrent_streams)
        async with self._stream_slots:
            hdrs: Headers = [(":method", method), (":path", path), (":scheme", "https"), (":authority", authority)]
            if body is not None:
                hdrs += [("content-type", "application/json"), ("content-length", str(len(body)))]
            hdrs += list(headers)
            stream = self.open_stream(hdrs, end_stream=body is None)
            try:
                async with asyncio.timeout(timeout):
                    if body is not None:
                        await stream.write(body)
                        stream.end()
                    resp = await _wait_or_closed(stream.response_headers, self.closed)
                    data = await stream.read_all(limit)
            except TimeoutError:
                stream.reset()
                raise StreamError(f"{method} {path}: no answer within {timeout:g} s") from None
            finally:
                self._streams.pop(stream.stream_id, None)
        status = 0
        for key, value in resp:
            if key == ":status":
                status = int(value)
        return Response(status=status, headers=resp, body=data)

    def open_tunnel(self, target: str, extra: Iterable[tuple[str, str]] = ()) -> H2Stream:
        """Client role: an HTTP/2 CONNECT stream to ``target`` (host:port)."""
        return self.open_stream([(":method", "CONNECT"), (":authority", target), *extra])

    def close(self, reason: str, *, code: int = 0, debug: bytes = b"") -> None:
        """Send GOAWAY (``code``, ``debug``) and close the connection."""
        if self.closed.done():
            return
        self.close_reason = reason
        if self._h2 is not None:
            with contextlib.suppress(Exception):
                self._h2.close_connection(error_code=code, additional_data=debug or None)
                self._flush()
        self._close_transport()
        self._finish(reason)

    def abort(self, reason: str) -> None:
        """Drop the connection at once, no GOAWAY (used for dead peers)."""
        self._abort(reason)

    def _abort(self, reason: str) -> None:
        if self.closed.done():
            return
        self.close_reason = reason
        self._close_transport()
        self._finish(reason)

    def _close_transport(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.close()
        # A peer that does not read would keep what is buffered (and the socket) forever.
        asyncio.get_running_loop().call_later(5.0, transport.abort)

    def _finish(self, reason: str) -> None:
        for timer in (self._handshake_timer, self._proof_timer):
            if timer is not None:
                timer.cancel()
        self._handshake_timer = self._proof_timer = None
        if self.closed.done():
            return
        self.close_reason = self.close_reason or reason
        exc = ChannelClosed(self.close_reason)
        if not self.ready.done():
            self.ready.set_exception(exc)
            self.ready.exception()
        for stream in list(self._streams.values()):
            stream._fail(exc)
        self._streams.clear()
        for task in list(self._tasks):
            task.cancel()
        self._write_ok.set()
        self.closed.set_result(self.close_reason)
        if self._gate is not None:
            self._gate.release(self)
        # Drop TLS and HTTP/2 state now; a closed channel may linger in a list.
        self._h2 = None
        self._tls = None
        if self._on_closed is not None:
            try:
                self._on_closed(self)
            except Exception:
                log.exception("on_closed callback failed")


async def _wait_or_closed(fut: asyncio.Future[Headers], closed: asyncio.Future[str]) -> Headers:
    if not fut.done():
        pending: list[asyncio.Future[Any]] = [fut, closed]
        await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    if not fut.done():
        raise ChannelClosed(closed.result())
    return fut.result()


def _decode_headers(raw: Iterable[tuple[bytes | str, bytes | str]]) -> Headers:
    out: Headers = []
    for key, value in raw:
        k = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
        v = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        out.append((k, v))
    return out

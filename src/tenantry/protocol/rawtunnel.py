"""A Direct Connect tunnel's bytes on their own TLS connection, after HTTP/2 authorised them.

The HTTP/2 CONNECT stream on the Direct Connect channel stays the authorisation and the
lifetime of a tunnel connection: the Director asks for a raw data path
(``tenantry-raw: 1``), the Transporter checks its allow-list, connects to the target and
answers ``200`` with a one-time token (``tenantry-raw-token``).  The Director then dials the
same Direct Connect port again, TLS with ALPN ``tenantry-raw/1`` (the same certificates and
checks as the channel: the Director's client certificate, the tenant's server certificate),
and sends the token as its first line.  The Transporter redeems it once, within a few
seconds, only for the identity that asked for it, and from then on both ends copy bytes
between that TLS connection and a TCP socket with large buffers: no HTTP/2 framing, no flow
control windows, no per-frame copies.  When the CONNECT stream ends or is reset, the raw
connection is closed too.

Only the Director opens connections (as before); nothing new listens at the client site.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from tenantry.protocol.channel import Channel, ChannelClosed
from tenantry.protocol.relay import TcpSide

REQUEST_HEADER = "tenantry-raw"
TOKEN_HEADER = "tenantry-raw-token"
TOKEN_BYTES = 32
TOKEN_LINE = 2 * TOKEN_BYTES + 1  # hex and a newline


class RawRefused(ConnectionError):
    """A raw connection presented no valid token."""


@dataclass
class Pending:
    """A token issued on an authorised CONNECT stream, waiting for its raw connection."""

    identity: str  # who asked (the SHA-256 of the Director's certificate, or "" without one)
    expires: float
    # The raw connection and the bytes that came after its token line.
    connection: asyncio.Future[tuple[Channel, bytes]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Tokens:
    """One-time tokens of one Direct Connect listener (the Transporter side)."""

    def __init__(self) -> None:
        self._pending: dict[str, Pending] = {}

    def issue(self, identity: str, ttl: float) -> tuple[str, Pending]:
        now = time.monotonic()
        for token in [t for t, p in self._pending.items() if p.expires < now]:
            self._pending.pop(token, None)
        token = secrets.token_hex(TOKEN_BYTES)
        pending = Pending(identity=identity, expires=now + ttl)
        self._pending[token] = pending
        return token, pending

    def withdraw(self, token: str) -> None:
        self._pending.pop(token, None)

    def redeem(self, token: str, identity: str, channel: Channel, first: bytes = b"") -> None:
        """Hand ``channel`` to the stream that issued ``token``; the token is gone afterwards."""
        pending = self._pending.pop(token, None)
        if pending is None or pending.expires < time.monotonic() or pending.connection.done():
            raise RawRefused("unknown, used or expired token")
        if not secrets.compare_digest(pending.identity, identity):
            raise RawRefused("token issued to another peer")
        pending.connection.set_result((channel, first))

    def __len__(self) -> int:
        return len(self._pending)


def read_token(channel: Channel, timeout: float) -> asyncio.Future[tuple[str, bytearray]]:
    """The token line a raw connection sends first, and the bytes after it (until the relay takes over)."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[tuple[str, bytearray]] = loop.create_future()
    buf = bytearray()

    def on_data(data: bytes) -> None:
        buf.extend(data)  # after the token line: kept for the relay
        if fut.done() or len(buf) < TOKEN_LINE:
            return
        channel.pause_raw(True)  # nothing more until the relay takes over
        line = bytes(buf[:TOKEN_LINE])
        del buf[:TOKEN_LINE]
        if line[-1:] != b"\n":
            fut.set_exception(RawRefused("malformed token line"))
        else:
            fut.set_result((line[:-1].decode("ascii", "replace"), buf))

    def on_eof() -> None:
        if not fut.done():
            fut.set_exception(RawRefused("closed before sending a token"))

    def expire() -> None:
        if not fut.done():
            fut.set_exception(RawRefused(f"no token within {timeout:g} s"))

    timer = loop.call_later(timeout, expire)
    fut.add_done_callback(lambda _f: timer.cancel())
    channel.take_raw(on_data, on_eof)
    if not fut.done():
        channel.pause_raw(False)
    return fut


async def relay_raw(channel: Channel, tcp: TcpSide, first: bytes = b"") -> None:
    """Copy bytes both ways between a raw TLS channel and a TCP connection, half-close aware.

    Nothing awaits on the way: what one side receives goes straight to the other's write, and a
    side whose write buffer is full pauses reading on the other until it drains.  ``first``: what
    came after the token line.
    """
    loop = asyncio.get_running_loop()
    up_done: asyncio.Future[None] = loop.create_future()  # the TCP peer's end was passed on
    down_done: asyncio.Future[None] = loop.create_future()  # the channel's end was passed on

    def settle(done: asyncio.Future[None], exc: BaseException | None = None) -> None:
        if done.done():
            return
        if exc is None:
            done.set_result(None)
        else:
            done.set_exception(exc)

    # Down: the channel's plaintext to the TCP connection.
    def on_raw(data: bytes) -> None:
        tcp.write_nowait(data)

    def on_raw_eof() -> None:
        tcp.write_eof()
        settle(down_done)

    # Up: the TCP connection's bytes to the channel.
    def on_tcp(data: bytes) -> None:
        try:
            channel.send_raw(data)
        except ChannelClosed as exc:
            tcp.pause(True)
            settle(up_done, exc)

    def on_tcp_eof(error: Exception | None) -> None:
        if error is not None:
            settle(up_done, ConnectionResetError(f"tunnel connection lost: {error}"))
            return
        channel.end_raw()
        settle(up_done)

    tcp.on_writable = lambda ok: channel.pause_raw(not ok)
    channel.on_raw_writable = lambda ok: tcp.pause(not ok)
    if first:
        on_raw(first)
    channel.take_raw(on_raw, on_raw_eof)
    tcp.take(on_tcp, on_tcp_eof)
    if tcp.writable:
        channel.pause_raw(False)

    closed: asyncio.Future[str] = asyncio.ensure_future(asyncio.shield(channel.closed))
    waiters: list[asyncio.Future[Any]] = [up_done, down_done, closed, tcp.lost]
    try:
        while True:
            for done in (up_done, down_done):
                if done.done() and done.exception() is not None:
                    raise done.exception()  # type: ignore[misc]
            if up_done.done() and (down_done.done() or tcp.lost.done()):
                return  # both ends passed on (or the TCP side can take nothing more)
            if closed.done():
                raise ChannelClosed(channel.close_reason or "raw connection closed")
            await asyncio.wait([w for w in waiters if not w.done()], return_when=asyncio.FIRST_COMPLETED)
    finally:
        closed.cancel()
        tcp.on_writable = None
        channel.on_raw_writable = None
        with contextlib.suppress(Exception):
            channel.close("tunnel connection ended")

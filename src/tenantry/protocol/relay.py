"""The TCP side of a tunnel connection, and the copy between it and an HTTP/2 stream.

:class:`TcpSide` is the asyncio protocol of the plain TCP connection at either end of a tunnel
(the MSP tool's connection at the Director, the target's at the Transporter).  It is created by
the listener or the connect call itself, so that nothing the peer sends early (an SSH banner, a
client's first request) is lost while the tunnel is still being authorised: until a relay takes
the connection, what arrives is queued (reading pauses at ``queue`` bytes).  It is read without a
StreamReader, which copies every byte into its buffer and out again (a third of the Director's
CPU in a Direct Connect tunnel, measured with py-spy):

* :meth:`TcpSide.read` / :meth:`TcpSide.write` for a relay that awaits (the HTTP/2 stream, :func:`relay`);
* :meth:`TcpSide.take` hands every received piece straight to a callback, with back-pressure by
  :meth:`TcpSide.pause` and the ``on_writable`` callback (the raw tunnel, ``rawtunnel.relay_raw``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from tenantry.protocol.channel import H2Stream

CHUNK = 256 * 1024
_SMALL = 1 << 16  # received pieces under this are joined for read() (fewer, larger HTTP/2 frames)
HIGH_WATER = 1 << 20  # bytes queued for the socket before its writer is told to wait


class TcpSide(asyncio.Protocol):
    """One plain TCP connection of a tunnel, read without a StreamReader (see the module's doc)."""

    def __init__(self, on_connect: Callable[[TcpSide], None] | None = None, *, queue: int = CHUNK * 4) -> None:
        self._on_connect = on_connect
        self._queue_limit = queue
        self.transport: asyncio.Transport | None = None
        self._chunks: deque[bytes] = deque()
        self._queued = 0
        self._eof = False
        self._lost = False
        self._error: Exception | None = None
        self._full = False  # reading paused: the queue is full
        self._held = False  # reading paused: the owner's other side is busy (pause)
        self._readable: asyncio.Event | None = None
        self._writable = True
        self._write_waiter: asyncio.Future[None] | None = None
        self._on_data: Callable[[bytes], None] | None = None
        self._on_eof: Callable[[Exception | None], None] | None = None
        # Called with False when the socket's write buffer passed HIGH_WATER, True when it drained.
        self.on_writable: Callable[[bool], None] | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # ------------------------------------------------------------------ asyncio
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=HIGH_WATER)
        if self._on_connect is not None:
            self._on_connect(self)

    def data_received(self, data: bytes) -> None:
        if self._on_data is not None:
            self._on_data(data)
            return
        self._chunks.append(data)
        self._queued += len(data)
        if self._readable is not None:
            self._readable.set()
        if self._queued >= self._queue_limit and not self._full:
            self._full = True
            self._reading()

    def eof_received(self) -> bool:
        self._eof = True  # the peer half-closed: what we still send reaches it
        if self._on_eof is not None:
            self._on_eof(None)
        elif self._readable is not None:
            self._readable.set()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if exc is not None and not self._eof:
            self._error = exc
        if not self._eof:
            self._eof = True
            if self._on_eof is not None:
                self._on_eof(self._error)
        if self._readable is not None:
            self._readable.set()
        self.resume_writing()
        if not self.lost.done():
            self.lost.set_result(None)

    def pause_writing(self) -> None:
        self._writable = False
        if self.on_writable is not None:
            self.on_writable(False)

    def resume_writing(self) -> None:
        self._writable = True
        waiter, self._write_waiter = self._write_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self.on_writable is not None:
            self.on_writable(True)

    def _reading(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self._full or self._held:
            transport.pause_reading()
        else:
            transport.resume_reading()

    # ------------------------------------------------------------------ awaiting owner
    async def read(self, limit: int = CHUNK) -> bytes:
        """What the peer sent next, up to about ``limit`` bytes (``b""``: it closed its side)."""
        while not self._chunks:
            if self._error is not None:
                raise ConnectionResetError(f"connection lost: {self._error}")
            if self._eof:
                return b""
            if self._readable is None:
                self._readable = asyncio.Event()
            self._readable.clear()
            await self._readable.wait()
        data = self._chunks.popleft()
        if self._chunks and len(data) < _SMALL:
            parts = [data]
            size = len(data)
            while self._chunks and size + len(self._chunks[0]) <= limit:
                part = self._chunks.popleft()
                parts.append(part)
                size += len(part)
            data = b"".join(parts) if len(parts) > 1 else data
        self._queued -= len(data)
        if self._full and self._queued < self._queue_limit // 2:
            self._full = False
            self._reading()
        return data

    async def write(self, data: bytes) -> None:
        """Send ``data``; return once the socket's write buffer is below its high-water mark."""
        self.write_nowait(data)
        if not self._writable and not self._lost:
            if self._write_waiter is None:
                self._write_waiter = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._write_waiter)
        if self._lost:
            raise ConnectionResetError("the connection was closed")

    # ------------------------------------------------------------------ callback owner
    def take(self, on_data: Callable[[bytes], None], on_eof: Callable[[Exception | None], None]) -> None:
        """From now on every received piece goes to ``on_data`` (first what was queued); the end to ``on_eof``."""
        self._on_data, self._on_eof = on_data, on_eof
        while self._chunks and self._on_data is not None:
            data = self._chunks.popleft()
            self._queued -= len(data)
            on_data(data)
        if self._full:
            self._full = False
            self._reading()
        if self._eof:
            on_eof(self._error)

    def pause(self, paused: bool) -> None:
        """Stop (or resume) reading while the owner's other side drains."""
        if paused != self._held:
            self._held = paused
            self._reading()

    # ------------------------------------------------------------------ both
    @property
    def writable(self) -> bool:
        return self._writable

    def write_nowait(self, data: bytes) -> None:
        """Send ``data`` (dropped if the connection is gone); see :attr:`on_writable` for back-pressure."""
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def write_eof(self) -> None:
        """Half-close: we send nothing more; what the peer sends still arrives."""
        transport = self.transport
        if transport is not None and not transport.is_closing() and transport.can_write_eof():
            transport.write_eof()

    def close(self) -> None:
        """Close once what is buffered is sent."""
        if self.transport is not None:
            self.transport.close()

    async def wait_closed(self) -> None:
        await asyncio.shield(self.lost)


async def relay(tcp: TcpSide, stream: H2Stream) -> None:
    """Copy bytes both ways between a TCP connection and an HTTP/2 stream, half-close aware."""

    async def up() -> None:
        while True:
            data = await tcp.read(CHUNK)
            if not data:
                stream.end()
                return
            await stream.write(data)

    async def down() -> None:
        while True:
            data = await stream.read()
            if not data:
                tcp.write_eof()
                return
            await tcp.write(data)

    await both_ways(up(), down())


async def both_ways(up: Coroutine[Any, Any, None], down: Coroutine[Any, Any, None]) -> None:
    """Run a relay's two directions until both end; the first error ends the other direction too."""
    up_task = asyncio.ensure_future(up)
    down_task = asyncio.ensure_future(down)
    try:
        done, _pending = await asyncio.wait([up_task, down_task], return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()
        await asyncio.gather(up_task, down_task)
    finally:
        up_task.cancel()
        down_task.cancel()

"""restic's repository endpoint at the client site: a loopback port whose connections ride carriers.

The Transporter never opens a stream to the Director.  During a job the Director opens carrier
streams (``POST /v1/jobs/<id>/carrier``); each waits here, idle, until restic connects to this
job's loopback port.  Then the TCP connection and the carrier are joined and bytes are copied
both ways until either side ends.  The Transporter cannot choose what is at the other end: the
Director serves the repository of the tenant whose certificate holds the session.  A connection
that finds no carrier within ``wait`` seconds is closed.  restic's connections are read by
``protocol.relay.TcpSide`` (no StreamReader; reading pauses while 1 MiB waits for the carrier).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

import h2.errors

from tenantry.protocol.channel import ChannelClosed, H2Stream, StreamError
from tenantry.protocol.relay import TcpSide

log = logging.getLogger(__name__)

_CHUNK = 1 << 20  # the most one carrier write takes from restic's connection (one HTTP/2 frame at most)
_QUEUE = 1 << 20  # bytes read from restic and not yet sent on: past it, reading pauses


class Relay:
    def __init__(self, job_id: str, *, wait: float = 60.0) -> None:
        self.job_id = job_id
        self.wait = wait
        self.port = 0
        self.bytes_up = 0  # restic → repository (through the uplink)
        self.bytes_down = 0  # repository → restic
        self.connections = 0
        self._idle: deque[tuple[H2Stream, asyncio.Future[None]]] = deque()
        self._arrived = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: TcpSide(self._connected, queue=_QUEUE), "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    def _connected(self, conn: TcpSide) -> None:
        task = asyncio.get_running_loop().create_task(self._accept(conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ carriers (from the Director)
    async def carry(self, stream: H2Stream) -> None:
        """Park a carrier the Director opened until a restic connection uses it and is done."""
        if self._closed:
            stream.send_headers([(":status", "410")], end_stream=True)
            return
        stream.send_headers([(":status", "200")])
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._idle.append((stream, done))
        self._arrived.set()
        try:
            await done
        finally:
            with contextlib.suppress(ValueError):
                self._idle.remove((stream, done))

    async def _take(self) -> tuple[H2Stream, asyncio.Future[None]]:
        async with asyncio.timeout(self.wait):
            while True:
                while self._idle:
                    stream, done = self._idle.popleft()
                    if not done.done():
                        return stream, done
                self._arrived.clear()
                await self._arrived.wait()

    # ------------------------------------------------------------------ restic's connections
    async def _accept(self, conn: TcpSide) -> None:
        self.connections += 1
        done: asyncio.Future[None] | None = None
        stream: H2Stream | None = None
        try:
            try:
                stream, done = await self._take()
            except TimeoutError:
                log.warning(
                    "job %s: no carrier from the Director within %g s; connection closed", self.job_id, self.wait
                )
                return
            await self._join(conn, stream)
        except (ChannelClosed, StreamError, ConnectionError) as exc:
            log.debug("job %s: repository connection ended: %s", self.job_id, exc)
        except asyncio.CancelledError:
            pass  # the relay closed (job over); a connection handler's end is not an error
        finally:
            conn.close()
            if stream is not None:
                with contextlib.suppress(Exception):
                    stream.reset(h2.errors.ErrorCodes.CANCEL)
            if done is not None and not done.done():
                done.set_result(None)

    async def _join(self, conn: TcpSide, stream: H2Stream) -> None:
        async def up() -> None:
            while True:
                data = await conn.read(_CHUNK)
                if not data:
                    stream.end()
                    return
                self.bytes_up += len(data)
                await stream.write(data)

        async def down() -> None:
            while True:
                data = await stream.read()
                if not data:
                    return
                self.bytes_down += len(data)
                await conn.write(data)

        up_task, down_task = asyncio.ensure_future(up()), asyncio.ensure_future(down())
        try:
            # The Director ending its side ends the exchange; restic ending its side only
            # half-closes (its last request may still be answered).
            await asyncio.wait([up_task, down_task], return_when=asyncio.FIRST_COMPLETED)
            if up_task.done() and up_task.exception() is None:
                await down_task
            for t in (up_task, down_task):
                if t.done() and not t.cancelled() and t.exception() is not None:
                    raise t.exception()  # type: ignore[misc]
        finally:
            up_task.cancel()
            down_task.cancel()

    async def close(self) -> None:
        self._closed = True
        if self._server is not None:
            self._server.close()
        while self._idle:
            stream, done = self._idle.popleft()
            with contextlib.suppress(Exception):
                stream.end()
            if not done.done():
                done.set_result(None)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

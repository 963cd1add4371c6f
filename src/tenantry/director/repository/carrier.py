"""Carriers: the repository protocol in reverse over the tenant's uplink.

Only the Director opens streams on an uplink.  For a job that needs the repository, the Director
opens *carrier* streams (``POST /v1/jobs/<id>/carrier``) and keeps a couple of them idle; the
Transporter answers ``200`` and parks each one.  When restic, at the client site, connects to the
Transporter's loopback endpoint, the Transporter joins that TCP connection to an idle carrier and
copies bytes both ways; the Director sees the first byte arrive, opens a replacement, and serves
the HTTP/1.1 requests that come out of the carrier from the tenant's own repository
(:func:`tenantry.director.repository.rest.serve`).  restic speaks its REST protocol to what it
believes is a server; the Director answers from the repository bound to the certificate's tenant.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import h2.errors

from tenantry.director.repository.rest import RestSession, serve
from tenantry.protocol.channel import Channel, ChannelClosed, H2Stream, StreamError

log = logging.getLogger(__name__)

#: Receive window of one carrier stream (restic uploads packs of up to ~16 MiB).
CARRIER_WINDOW = 4 << 20


class _Watched:
    """An :class:`H2Stream` that reports its first incoming byte (the carrier is in use)."""

    def __init__(self, stream: H2Stream, on_first: Callable[[], None]) -> None:
        self.stream = stream
        self._on_first: Callable[[], None] | None = on_first
        self.eof = False

    async def read(self) -> bytes:
        data = await self.stream.read()
        if not data:
            self.eof = True
        if self._on_first is not None and data:
            callback, self._on_first = self._on_first, None
            callback()
        return data

    async def write(self, data: bytes) -> None:
        await self.stream.write(data)

    def end(self) -> None:
        self.stream.end()


class Carriers:
    """The carrier streams of one job on one uplink channel."""

    def __init__(
        self,
        channel: Channel,
        job_id: str,
        session: RestSession,
        *,
        idle: int = 2,
        most: int = 16,
        frame_size: int = 1 << 20,
    ) -> None:
        self.channel = channel
        self.job_id = job_id
        self.session = session
        self.idle_target = idle
        self.most = most
        self.idle = 0
        self.used = 0
        self.opened = 0
        self.failed: str | None = None
        self.frame_size = frame_size
        self._tasks: set[asyncio.Task[None]] = set()
        self._streams: set[H2Stream] = set()
        self._closed = False

    def start(self) -> None:
        self.channel.raise_frame_size(self.frame_size)
        for _ in range(self.idle_target):
            self._open()

    def _open(self) -> None:
        if self._closed or len(self._streams) >= self.most:
            return
        headers = [
            (":method", "POST"),
            (":path", f"/v1/jobs/{self.job_id}/carrier"),
            (":scheme", "https"),
            (":authority", "transporter"),
        ]
        try:
            stream = self.channel.open_stream(headers)
        except (ChannelClosed, StreamError) as exc:
            self.failed = str(exc)
            return
        self.channel.grow_window(stream.stream_id, CARRIER_WINDOW)
        self.opened += 1
        self.idle += 1
        self._streams.add(stream)
        task = asyncio.get_running_loop().create_task(self._carry(stream))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _in_use(self) -> None:
        self.idle -= 1
        self.used += 1
        self._top_up()

    def _top_up(self) -> None:
        """Keep ``idle_target`` carriers idle (within ``most``): after one is taken, and after one ends."""
        if self.idle < self.idle_target:
            self._open()

    async def _carry(self, stream: H2Stream) -> None:
        watched = _Watched(stream, self._in_use)
        try:
            headers = await _headers(stream, self.channel)
            status = dict(headers).get(":status")
            if status != "200":
                self.failed = f"the Transporter refused a carrier (HTTP {status})"
                return
            await serve(watched, self.session)
        except (ChannelClosed, StreamError) as exc:
            log.debug("carrier %s/%d ended: %s", self.job_id, stream.stream_id, exc)
        finally:
            if watched._on_first is not None:
                self.idle -= 1
            self._streams.discard(stream)
            if not watched.eof:
                with contextlib.suppress(Exception):
                    stream.reset(h2.errors.ErrorCodes.CANCEL)
            # A carrier that ends makes room.  Without this, a moment with ``most`` carriers open
            # (restic runs that follow each other quickly) left none idle for good, and the next
            # restic waited for a carrier until the relay gave up.
            if self.failed is None:
                self._top_up()

    async def close(self) -> None:
        """Stop serving: every carrier of this job is reset."""
        self._closed = True
        for stream in list(self._streams):
            with contextlib.suppress(Exception):
                stream.reset(h2.errors.ErrorCodes.CANCEL)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def _headers(stream: H2Stream, channel: Channel) -> list[tuple[str, str]]:
    pending: list[asyncio.Future[object]] = [stream.response_headers, channel.closed]  # type: ignore[list-item]
    await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    if not stream.response_headers.done():
        raise ChannelClosed(channel.close_reason or "channel closed")
    return stream.response_headers.result()

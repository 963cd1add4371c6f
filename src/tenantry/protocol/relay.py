"""Copy bytes between a TCP connection and an HTTP/2 stream, both directions, half-close aware."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from tenantry.protocol.channel import H2Stream

CHUNK = 256 * 1024


async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, stream: H2Stream) -> None:
    async def up() -> None:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                stream.end()
                return
            await stream.write(data)

    async def down() -> None:
        while True:
            data = await stream.read()
            if not data:
                if writer.can_write_eof() and not writer.is_closing():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

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

"""Carriers over a real uplink channel (TLS + HTTP/2 on loopback) into the Transporter's relay, no mocks."""

from __future__ import annotations

import asyncio
from pathlib import Path

from unit.services.test_repository_rest import TOKEN, Client, _layout
from unit.services.test_uplink_channel import _pair, _pki

from tenantry.director.repository.carrier import Carriers
from tenantry.director.repository.files import RepositoryDir
from tenantry.director.repository.rest import RestSession
from tenantry.protocol.channel import H2Stream
from tenantry.transporter.backup.relay import Relay


def test_carriers_are_topped_up_after_the_most_were_open(tmp_path: Path) -> None:
    """restic runs that follow each other: once ``most`` carriers were in use at one moment, the ones
    that end make room for idle ones again (before, none was opened and the next restic connection
    waited for a carrier until the relay closed it: restic saw EOF)."""
    _pki(tmp_path)
    root = tmp_path / "repo"
    _layout(root)
    session = RestSession(RepositoryDir(root), TOKEN)
    relay = Relay("0123456789abcdef", wait=3.0)

    async def handler(stream: H2Stream) -> None:
        await relay.carry(stream)

    async def main() -> None:
        director, _site, server = await _pair(tmp_path, handler)
        port = await relay.start()
        carriers = Carriers(director, relay.job_id, session, idle=2, most=3)
        carriers.start()
        try:

            async def connect() -> Client:
                return Client(*await asyncio.open_connection("127.0.0.1", port))

            for _round in range(3):
                # One restic run: as many connections as there may be carriers, each answered.
                clients = [await connect() for _ in range(3)]
                for client in clients:
                    status, _h, body = await asyncio.wait_for(client.request("GET", "/config"), 10)
                    assert (status, body) == (200, b"encrypted config")
                for client in clients:  # the run ends: its connections close
                    client.writer.close()
                    await client.writer.wait_closed()
                await asyncio.sleep(0.2)
            assert carriers.failed is None
            assert carriers.used == 9
        finally:
            await carriers.close()
            await relay.close()
            server.close()

    asyncio.run(main())

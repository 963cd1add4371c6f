"""The TLS + HTTP/2 channel in one process over real loopback sockets (no mocks)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tenantry.common import pki
from tenantry.protocol import tls
from tenantry.protocol.channel import Channel, ChannelClosed, ChannelLimits, H2Stream, StreamError


def _pki(tmp: Path) -> None:
    ca = pki.new_ca("test CA")
    pki.write_keypair(ca, tmp / "ca.crt", tmp / "ca.key")
    pki.write_keypair(pki.issue(ca, "server", ips=["127.0.0.1"]), tmp / "s.crt", tmp / "s.key")
    pki.write_keypair(pki.issue(ca, "client", server=False, client=True), tmp / "c.crt", tmp / "c.key")


async def _pair(tmp: Path, handler: object, limits: ChannelLimits | None = None) -> tuple[Channel, Channel, object]:
    """Director-like side (TLS server, HTTP/2 client) and Transporter-like side (TLS client, HTTP/2 server)."""
    server_ctx = tls.server_context(tmp / "s.crt", tmp / "s.key", client_ca=tmp / "ca.crt")
    client_ctx = tls.client_context(ca=tmp / "ca.crt", cert=tmp / "c.crt", key=tmp / "c.key")
    accepted: asyncio.Future[Channel] = asyncio.get_running_loop().create_future()

    def factory() -> Channel:
        ch = Channel(server_ctx, server_side=True, h2_client=True, limits=limits)
        if not accepted.done():
            accepted.set_result(ch)
        return ch

    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _t, site = await loop.create_connection(
        lambda: Channel(
            client_ctx, server_side=False, h2_client=False, server_hostname="127.0.0.1", handler=handler, limits=limits
        ),  # type: ignore[arg-type]
        "127.0.0.1",
        port,
    )
    await site.ready
    director = await accepted
    await director.ready
    return director, site, server


async def _echo_handler(stream: H2Stream) -> None:
    body = await stream.read_all(1 << 20)
    await stream.respond(200, json.dumps({"path": stream.path, "len": len(body)}).encode())


def test_request_response_and_limits(tmp_path: Path) -> None:
    _pki(tmp_path)

    async def main() -> None:
        director, site, server = await _pair(tmp_path, _echo_handler)
        assert director.peer_cert is not None and site.peer_cert is not None
        resp = await director.request("POST", "/x", b"a" * 300_000)
        assert resp.status == 200 and json.loads(resp.body) == {"path": "/x", "len": 300_000}
        # Many concurrent streams on one connection.
        answers = await asyncio.gather(*(director.request("GET", f"/s{i}") for i in range(50)))
        assert sorted(json.loads(a.body)["path"] for a in answers) == sorted(f"/s{i}" for i in range(50))
        # An answer larger than the caller's limit resets that stream only.
        with pytest.raises(StreamError, match="larger than"):
            await director.request("POST", "/big", b"b" * 10, limit=5)
        # The Transporter side cannot open streams.
        with pytest.raises(StreamError):
            site.open_stream([(":method", "GET"), (":path", "/"), (":scheme", "https"), (":authority", "d")])
        assert (await director.request("GET", "/still-fine")).status == 200
        director.close("bye")
        assert "bye" in await asyncio.wait_for(site.closed, 5) or site.goaway_code == 0
        with pytest.raises(ChannelClosed):
            await director.request("GET", "/after-close")
        server.close()

    asyncio.run(main())


def test_silence_is_visible_for_heartbeats(tmp_path: Path) -> None:
    _pki(tmp_path)

    async def main() -> None:
        director, site, server = await _pair(tmp_path, _echo_handler)
        await asyncio.sleep(0.3)
        assert director.silent_for() >= 0.25
        site.ping()
        await asyncio.sleep(0.1)
        assert director.silent_for() < 0.2  # a PING (and its ACK) count as life
        director.abort("dead peer")
        assert await asyncio.wait_for(site.closed, 5)
        server.close()

    asyncio.run(main())


def test_handshake_with_an_untrusted_client_fails(tmp_path: Path) -> None:
    _pki(tmp_path)
    other = pki.new_ca("other CA")
    pki.write_keypair(pki.issue(other, "client", server=False, client=True), tmp_path / "c.crt", tmp_path / "c.key")

    async def main() -> None:
        with pytest.raises(ChannelClosed):
            director, _site, _server = await _pair(tmp_path, _echo_handler)
            await asyncio.wait_for(director.request("GET", "/"), 5)

    asyncio.run(main())

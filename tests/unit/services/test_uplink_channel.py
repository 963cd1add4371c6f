"""The TLS + HTTP/2 channel in one process over real loopback sockets (no mocks)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import ssl
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


def _frame(kind: int, flags: int, stream: int, payload: bytes, length: int | None = None) -> bytes:
    size = len(payload) if length is None else length
    return size.to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def test_a_frame_larger_than_advertised_is_refused_before_it_is_buffered(tmp_path: Path) -> None:
    """A peer announcing a 16 MiB frame gets GOAWAY FRAME_SIZE_ERROR at once, not once 16 MiB arrived."""
    _pki(tmp_path)

    async def main() -> None:
        server_ctx = tls.server_context(tmp_path / "s.crt", tmp_path / "s.key", client_ca=tmp_path / "ca.crt")
        client_ctx = tls.client_context(ca=tmp_path / "ca.crt", cert=tmp_path / "c.crt", key=tmp_path / "c.key")
        accepted: asyncio.Future[Channel] = asyncio.get_running_loop().create_future()

        def factory() -> Channel:
            ch = Channel(server_ctx, server_side=True, h2_client=True)
            accepted.set_result(ch)
            return ch

        server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", server.sockets[0].getsockname()[1], ssl=client_ctx, server_hostname="127.0.0.1"
        )
        director = await accepted
        await director.ready
        # Our SETTINGS, then the header of a DATA frame of 16 MiB - 1 and a few bytes of it.
        writer.write(_frame(4, 0, 0, b"") + _frame(0, 0, 1, b"x" * 100, length=(1 << 24) - 1))
        await writer.drain()
        reason = await asyncio.wait_for(director.closed, 5)
        assert "frame of 16777215 bytes" in reason
        received = b""
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            async with asyncio.timeout(5):
                while chunk := await reader.read(65536):
                    received += chunk
        frames = _frames(received.removeprefix(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))  # the Director is h2's client
        goaway = [payload for kind, payload in frames if kind == 7]
        assert goaway and int.from_bytes(goaway[0][4:8], "big") == 6  # FRAME_SIZE_ERROR
        writer.close()
        server.close()

    asyncio.run(main())


def _frames(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    while len(data) >= 9:
        length = int.from_bytes(data[:3], "big")
        out.append((data[3], data[9 : 9 + length]))
        data = data[9 + length :]
    return out


def test_bulk_data_in_large_frames_arrives_intact_both_ways(tmp_path: Path) -> None:
    """1 MiB frames cut by TLS records and socket reads anywhere: every byte arrives, in order."""
    _pki(tmp_path)
    body = hashlib.sha256(b"seed").digest() * (9 * 32768 + 777)  # ~9 MiB, no frame-aligned size

    async def sink(stream: H2Stream) -> None:
        stream.send_headers([(":status", "200")])
        got = hashlib.sha256()
        while chunk := await stream.read():
            got.update(chunk)
        for i in range(0, len(body), 300_001):  # then the same bytes back, in odd pieces
            await stream.write(body[i : i + 300_001])
        await stream.write(got.hexdigest().encode())
        stream.end()

    async def main() -> None:
        limits = ChannelLimits(max_frame_size=1 << 20, stream_window=4 << 20, connection_window=16 << 20)
        director, _site, server = await _pair(tmp_path, sink, limits)
        stream = director.open_stream([(":method", "POST"), (":path", "/c"), (":scheme", "https"), (":authority", "t")])
        director.grow_window(stream.stream_id, 4 << 20)
        for i in range(0, len(body), 1 << 18):
            await stream.write(body[i : i + (1 << 18)])
        stream.end()
        back = bytearray()
        while chunk := await stream.read():
            back += chunk
        assert bytes(back[: len(body)]) == body
        assert back[len(body) :].decode() == hashlib.sha256(body).hexdigest()
        director.close("bye")
        server.close()

    asyncio.run(main())

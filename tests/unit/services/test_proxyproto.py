"""PROXY protocol v2 headers: parsing, and the uplink channel believing them only from a trusted proxy."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tenantry.common import pki
from tenantry.protocol import proxyproto, tls
from tenantry.protocol.channel import Channel, ChannelClosed


def test_parse_ipv4_ipv6_local_and_partial() -> None:
    header = proxyproto.build(("203.0.113.7", 50123), ("10.0.0.2", 6702))
    parsed = proxyproto.parse(header + b"\x16rest")
    assert parsed == proxyproto.ProxyHeader(len(header), ("203.0.113.7", 50123))
    six = proxyproto.build(("2001:db8::7", 1), ("2001:db8::2", 2))
    assert proxyproto.parse(six) == proxyproto.ProxyHeader(len(six), ("2001:db8::7", 1))
    local = proxyproto.SIGNATURE + bytes([0x20, 0x00]) + b"\x00\x00"  # HAProxy's health check: LOCAL
    assert proxyproto.parse(local) == proxyproto.ProxyHeader(16, None)
    for cut in (1, 11, 15, len(header) - 1):
        assert proxyproto.parse(header[:cut]) is None  # wait for more
    assert proxyproto.may_start(header) and not proxyproto.may_start(b"\x16\x03\x01")


@pytest.mark.parametrize(
    "bad",
    [
        b"GET / HTTP/1.1\r\n\r\n",
        proxyproto.SIGNATURE + bytes([0x11, 0x11]) + b"\x00\x0c" + b"\x00" * 12,  # version 1 in a v2 header
        proxyproto.SIGNATURE + bytes([0x21, 0x11]) + b"\x00\x04" + b"\x00" * 4,  # truncated IPv4 addresses
        proxyproto.SIGNATURE + bytes([0x21, 0x11]) + b"\xff\xff",  # absurd length
    ],
)
def test_invalid_headers_are_refused(bad: bytes) -> None:
    with pytest.raises(proxyproto.ProxyHeaderError):
        proxyproto.parse(bad)


def _pki(tmp: Path) -> None:
    ca = pki.new_ca("test CA")
    pki.write_keypair(ca, tmp / "ca.crt", tmp / "ca.key")
    pki.write_keypair(pki.issue(ca, "server", ips=["127.0.0.1"]), tmp / "s.crt", tmp / "s.key")
    pki.write_keypair(pki.issue(ca, "client", server=False, client=True), tmp / "c.crt", tmp / "c.key")


@pytest.mark.parametrize("trusted", [True, False])
def test_the_channel_believes_a_proxy_header_only_from_a_trusted_proxy(tmp_path: Path, trusted: bool) -> None:
    _pki(tmp_path)
    server_ctx = tls.server_context(tmp_path / "s.crt", tmp_path / "s.key", client_ca=tmp_path / "ca.crt")
    client_ctx = tls.client_context(ca=tmp_path / "ca.crt", cert=tmp_path / "c.crt", key=tmp_path / "c.key")

    class Proxied(Channel):
        """The client side of a connection that a load balancer forwards: the header first, then TLS."""

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            transport.write(proxyproto.build(("198.51.100.4", 40000), ("127.0.0.1", 1)))
            super().connection_made(transport)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        accepted: asyncio.Future[Channel] = loop.create_future()

        def factory() -> Channel:
            ch = Channel(server_ctx, server_side=True, h2_client=True, trusted_proxy=lambda source: trusted)
            accepted.set_result(ch)
            return ch

        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _t, client = await loop.create_connection(
            lambda: Proxied(client_ctx, server_side=False, h2_client=False, server_hostname="127.0.0.1"),
            "127.0.0.1",
            port,
        )
        director = await accepted
        if trusted:
            await asyncio.wait_for(director.ready, 5)
            assert director.peer_address == "198.51.100.4:40000" and director.source == "198.51.100.4"
            client.close("done")
        else:  # the header is garbage to TLS: the connection fails, the address is never taken
            with pytest.raises(ChannelClosed):
                await asyncio.wait_for(director.ready, 5)
            assert director.source == "127.0.0.1"
        server.close()

    asyncio.run(main())

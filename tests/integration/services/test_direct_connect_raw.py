"""Direct Connect raw tunnel connections: bytes on their own TLS connection, redeemed with a one-time token.

The test plays the Director with the Director's own client certificate against real
Transporters (real TLS on loopback): it asks for a raw data path on an HTTP/2 CONNECT
stream, then dials the raw connection and presents the token.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from services_harness import DirectorProc, TransporterProc, free_port, wait_for

from tenantry.protocol import rawtunnel, tls
from tenantry.protocol.channel import RAW_ALPN, Channel, ChannelClosed

pytestmark = pytest.mark.integration


def _site(director: DirectorProc, make: Callable[..., TransporterProc], name: str, echo_port: int) -> int:
    dc_port = free_port()
    t = make(name)
    created = director.create_tenant(name, direct_connect={"address": f"127.0.0.1:{dc_port}"})
    assert t.enroll(director, created["credentials"]["enrollment_key"]).returncode == 0
    t.start(
        "--no-uplink",
        "--direct-connect",
        "--direct-connect-host",
        "127.0.0.1",
        "--direct-connect-port",
        str(dc_port),
        "--allow",
        f"127.0.0.1:{echo_port}",
    )
    wait_for(lambda: _up(dc_port), 20, "Direct Connect listener")
    return dc_port


def _up(port: int) -> bool:
    socket.create_connection(("127.0.0.1", port), timeout=1).close()
    return True


class AsDirector:
    """The Director's side of Direct Connect, by hand, with the Director's client certificate."""

    def __init__(self, director: DirectorProc) -> None:
        state = director.state
        self.ca, self.cert, self.key = state / "ca.crt", state / "director-client.crt", state / "director-client.key"

    def _ctx(self, raw: bool) -> ssl.SSLContext:
        ctx = tls.client_context(ca=self.ca, cert=self.cert, key=self.key, check_hostname=False)
        if raw:
            ctx.set_alpn_protocols([RAW_ALPN])
        return ctx

    async def dial(self, port: int, *, raw: bool) -> Channel:
        loop = asyncio.get_running_loop()
        ctx = self._ctx(raw)
        _t, channel = await loop.create_connection(
            lambda: Channel(ctx, server_side=False, h2_client=True, server_hostname="127.0.0.1"),
            "127.0.0.1",
            port,
        )
        await asyncio.wait_for(channel.ready, 10)
        return channel

    async def token(self, channel: Channel, target: str) -> str:
        stream = channel.open_tunnel(target, [(rawtunnel.REQUEST_HEADER, "1")])
        headers = dict(await asyncio.wait_for(stream.response_headers, 10))
        assert headers[":status"] == "200"
        return headers[rawtunnel.TOKEN_HEADER]

    async def redeem(self, port: int, token: str, payload: bytes) -> bytes:
        """Send the token and ``payload`` on a raw connection, half-close, return what comes back."""
        raw = await self.dial(port, raw=True)
        assert raw.raw
        got = bytearray()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_eof() -> None:
            if not done.done():
                done.set_result(None)

        raw.take_raw(got.extend, on_eof)
        raw.pause_raw(False)
        raw.send_raw(token.encode() + b"\n" + payload)
        raw.end_raw()
        closed: asyncio.Future[str] = asyncio.ensure_future(asyncio.shield(raw.closed))
        waiters: list[asyncio.Future[Any]] = [done, closed]
        await asyncio.wait(waiters, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        closed.cancel()
        raw.close("done")
        return bytes(got)


def test_a_raw_tunnel_connection_carries_bytes_once_per_token(
    director: DirectorProc, make_transporter: Callable[..., TransporterProc], echo_port: int
) -> None:
    dc_port = _site(director, make_transporter, "raw-a", echo_port)
    me = AsDirector(director)
    target = f"127.0.0.1:{echo_port}"

    async def scenario() -> None:
        channel = await me.dial(dc_port, raw=False)
        payload = bytes(range(256)) * 4096
        token = await me.token(channel, target)
        assert await me.redeem(dc_port, token, payload) == payload
        # The same token a second time: refused, nothing reaches the target.
        assert await me.redeem(dc_port, token, b"again") == b""
        # A token nobody issued: refused.
        assert await me.redeem(dc_port, "0" * 64, b"guess") == b""
        # A token the Director let lapse (never redeemed in time) is gone too.
        late = await me.token(channel, target)
        await asyncio.sleep(5.5)  # the Transporter's Direct Connect proof_timeout (5 s by default)
        assert await me.redeem(dc_port, late, b"late") == b""
        channel.close("done")

    asyncio.run(scenario())


def test_another_tenants_token_is_refused(
    director: DirectorProc, make_transporter: Callable[..., TransporterProc], echo_port: int
) -> None:
    port_a = _site(director, make_transporter, "raw-a", echo_port)
    port_b = _site(director, make_transporter, "raw-b", echo_port)
    me = AsDirector(director)
    target = f"127.0.0.1:{echo_port}"

    async def scenario() -> None:
        channel_b = await me.dial(port_b, raw=False)
        token_b = await me.token(channel_b, target)
        # Tenant B's token presented at tenant A's Transporter: refused there ...
        assert await me.redeem(port_a, token_b, b"cross") == b""
        # ... and it still works where it was issued (the refusal did not burn it).
        assert await me.redeem(port_b, token_b, b"home") == b"home"
        channel_b.close("done")

    asyncio.run(scenario())


def test_a_raw_connection_cannot_be_asked_for_without_the_director_certificate(
    director: DirectorProc, make_transporter: Callable[..., TransporterProc], echo_port: int, tmp_path: Path
) -> None:
    dc_port = _site(director, make_transporter, "raw-a", echo_port)
    # The tenant's own certificate (issued by the same CA, but not the Director's) is refused at once.
    state = tmp_path / "transporter-raw-a"
    ctx = tls.client_context(
        ca=director.state / "ca.crt", cert=state / "client.crt", key=state / "client.key", check_hostname=False
    )
    ctx.set_alpn_protocols([RAW_ALPN])

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        _t, raw = await loop.create_connection(
            lambda: Channel(ctx, server_side=False, h2_client=True, server_hostname="127.0.0.1"), "127.0.0.1", dc_port
        )
        with pytest.raises(ChannelClosed):
            await asyncio.wait_for(raw.ready, 10)
            raw.send_raw(b"0" * 64 + b"\n")
            await asyncio.wait_for(asyncio.shield(raw.closed), 10)
            raise ChannelClosed(raw.close_reason)

    asyncio.run(scenario())


def test_director_tunnels_use_raw_connections(
    director: DirectorProc, make_transporter: Callable[..., TransporterProc], echo_port: int
) -> None:
    _site(director, make_transporter, "raw-a", echo_port)
    tunnel = director.api(
        "POST", "/api/v1/tenants/raw-a/tunnels", {"target": f"127.0.0.1:{echo_port}", "via": "direct"}
    )
    payload = b"\x00\xff" * 300_000
    with socket.create_connection(("127.0.0.1", tunnel["port"]), timeout=10) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        got = bytearray()
        while data := s.recv(65536):
            got += data
    assert bytes(got) == payload
    (listed,) = director.api("GET", "/api/v1/tenants/raw-a/tunnels")
    assert listed["connections"] == 1 and listed["raw_connections"] == 1


def test_more_tunnel_connections_than_raw_slots_share_the_channel(
    director: DirectorProc, make_transporter: Callable[..., TransporterProc], echo_port: int
) -> None:
    # Ten connections at once, more than the Transporter's 8 connections per source: the first
    # four get their own TLS connection, the others ride the HTTP/2 channel, and all of them work.
    _site(director, make_transporter, "raw-a", echo_port)
    tunnel = director.api(
        "POST", "/api/v1/tenants/raw-a/tunnels", {"target": f"127.0.0.1:{echo_port}", "via": "direct"}
    )
    socks = [socket.create_connection(("127.0.0.1", tunnel["port"]), timeout=10) for _ in range(10)]
    try:
        for i, s in enumerate(socks):
            s.sendall(f"hello {i}".encode())
            assert s.recv(100) == f"hello {i}".encode()  # each one live, all at the same time
    finally:
        for s in socks:
            s.close()
    (listed,) = director.api("GET", "/api/v1/tenants/raw-a/tunnels")
    assert listed["connections"] == 10 and listed["raw_connections"] == 4


class SpeaksFirst:
    """A target that speaks first (an SSH-like banner) and then streams, while reading what it is sent."""

    BANNER = b"SSH-2.0-tenantry-test\r\n"

    def __init__(self, send: int) -> None:
        self.pattern = bytes(range(256)) * (send // 256)
        self.sent = 0  # bytes of the pattern the target's socket took so far
        self._srv = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._srv.getsockname()[1])
        threading.Thread(target=self._serve, daemon=True).start()

    def _send(self, conn: socket.socket) -> None:
        conn.sendall(self.BANNER)
        view = memoryview(self.pattern)
        for at in range(0, len(view), 1 << 20):
            conn.sendall(view[at : at + (1 << 20)])
            self.sent = at + len(view[at : at + (1 << 20)])

    def _serve(self) -> None:
        conn, _addr = self._srv.accept()
        with conn:
            sender = threading.Thread(target=self._send, args=(conn,))
            sender.start()  # at once, before any tunnel is up on the other side
            digest = hashlib.sha256()
            while data := conn.recv(1 << 16):
                digest.update(data)
            sender.join()
            conn.sendall(b"\nreceived " + digest.hexdigest().encode())

    def close(self) -> None:
        self._srv.close()


def test_a_target_that_speaks_first_and_a_slow_reader_lose_nothing(
    director: DirectorProc, make_transporter: Callable[..., TransporterProc]
) -> None:
    # The target's banner arrives before the raw connection is redeemed, and the MSP tool's first
    # bytes before the Director has asked the Transporter: both wait at the TCP side, not lost.
    # Then the tool reads nothing for a while: the target must be held back (each side pauses the
    # other when its buffer is full; only socket buffers and a few MiB of queues are in flight),
    # and once it reads, all 96 MiB arrive in order while 4 MiB went the other way.
    size = 96 << 20
    target = SpeaksFirst(size)
    try:
        _site(director, make_transporter, "raw-a", target.port)
        tunnel = director.api(
            "POST", "/api/v1/tenants/raw-a/tunnels", {"target": f"127.0.0.1:{target.port}", "via": "direct"}
        )
        upload = os.urandom(4 << 20)
        with socket.create_connection(("127.0.0.1", tunnel["port"]), timeout=30) as s:

            def send() -> None:
                s.sendall(upload)
                s.shutdown(socket.SHUT_WR)

            sender = threading.Thread(target=send)
            sender.start()
            wait_for(lambda: target.sent > 0, 10, "the target to start sending")
            time.sleep(2.0)  # the tool reads nothing
            held = target.sent
            assert held < size // 2, f"{held} bytes left the target while nobody read"
            got = bytearray()
            while data := s.recv(1 << 16):
                got += data
            sender.join()
        expected = target.BANNER + target.pattern + b"\nreceived " + hashlib.sha256(upload).hexdigest().encode()
        assert len(got) == len(expected)
        assert bytes(got) == expected
        (listed,) = director.api("GET", "/api/v1/tenants/raw-a/tunnels")
        assert listed["raw_connections"] == 1
    finally:
        target.close()

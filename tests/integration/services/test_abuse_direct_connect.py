"""Issue 13, item 2: a Direct Connect listener in PSK mode (no client certificate) against peers that
have not proven the key, and against a peer that resets streams as fast as it can open them.

The Transporter is a real process; the attackers speak raw TLS + HTTP/2 frames on loopback.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attacks
import h2.config
import h2.connection
import h2.events
import pytest
from attacks import CONTINUATION, HEADERS, PREFACE, SETTINGS, frame
from services_harness import DirectorProc, EchoServer, TransporterProc, free_port, wait_for

from tenantry.protocol import psk as pskproof
from tenantry.protocol.identity import der_sha256

pytestmark = pytest.mark.integration

PSK = "correct horse battery staple 42"
DC_LIMITS = """
[direct_connect]
max_connections = 16
max_connections_per_source = 3
proof_timeout = 2.0
"""


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def psk_site(
    director: DirectorProc, make_transporter: Callable[..., TransporterProc], echo: EchoServer, tmp_path: Path
) -> tuple[TransporterProc, int, Callable[[], float]]:
    """A PSK Direct Connect site, the Director's tenant for it, and a timed tunnel round trip."""
    dc_port, echo_port = free_port(), echo.port
    psk_file = tmp_path / "dc.psk"
    psk_file.write_text(PSK)
    psk_file.chmod(0o600)
    site = make_transporter("psk-site")
    site.start(
        "--no-uplink",
        "--direct-connect",
        "--direct-connect-host",
        "127.0.0.1",
        "--direct-connect-port",
        str(dc_port),
        "--direct-connect-auth",
        "psk",
        "--psk-file",
        str(psk_file),
        "--allow",
        f"127.0.0.1:{echo_port}",
        config=DC_LIMITS,
    )
    wait_for(lambda: socket.create_connection(("127.0.0.1", dc_port), timeout=1).close() is None, 20, "listener")
    director.create_tenant("psk-site", direct_connect={"address": f"127.0.0.1:{dc_port}", "auth": "psk", "psk": PSK})
    tunnel = director.api(
        "POST", "/api/v1/tenants/psk-site/tunnels", {"target": f"127.0.0.1:{echo_port}", "via": "direct"}
    )

    def roundtrip() -> float:
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", tunnel["port"]), timeout=30) as s:
            s.sendall(b"ping" * 1000)
            got = b""
            while len(got) < 4000:
                got += s.recv(65536)
        assert got == b"ping" * 1000
        return time.monotonic() - t0

    roundtrip()
    return site, dc_port, roundtrip


def _tls(port: int, source: str = "127.0.0.1") -> ssl.SSLSocket:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    return ctx.wrap_socket(raw)


def _sendall(sock: ssl.SSLSocket, data: bytes) -> int:
    """Send what the peer takes; the number of bytes it took before closing."""
    sent = 0
    try:
        for start in range(0, len(data), 65536):
            sock.sendall(data[start : start + 65536])
            sent = start + 65536
    except (OSError, ssl.SSLError):
        pass
    return min(sent, len(data))


def _rss(site: TransporterProc) -> float:
    assert site.proc is not None
    return attacks.rss_mib(site.proc.pid)


def test_an_unproven_peer_cannot_pin_header_blocks(psk_site: tuple[TransporterProc, int, Callable[[], float]]) -> None:
    site, port, roundtrip = psk_site
    base = _rss(site)
    # HEADERS without END_HEADERS, then CONTINUATION frames (16 KiB: an unproven peer gets no larger
    # frames) adding up to 64 MiB of one header block.
    block = frame(HEADERS, 0, 1, b"\x00" * 16384) + frame(CONTINUATION, 0, 1, b"\x00" * 16384) * 4096
    socks = [_tls(port, source=f"127.0.4.{i}") for i in range(1, 4)]
    taken = [_sendall(s, PREFACE + frame(SETTINGS, 0, 0, b"") + block) for s in socks]
    # Cut off after the pre-proof budget (64 KiB), not after 64 MiB.
    assert all(t < 4 << 20 for t in taken), taken
    for s in socks:
        answer = attacks.frames_of(attacks.drain(s))
        # The site offered an unproven peer only 16 KiB frames (its proven peers get 1 MiB).
        settings = next(p for kind, flags, _sid, p in answer if kind == SETTINGS and not flags)
        offered = {
            int.from_bytes(settings[i : i + 2], "big"): settings[i + 2 : i + 6] for i in range(0, len(settings), 6)
        }
        assert int.from_bytes(offered[0x5], "big") == 16384
        assert attacks.goaway_code(answer) in (attacks.ENHANCE_YOUR_CALM, None)
        s.close()
    assert _rss(site) - base < 10
    assert roundtrip() < 1.0


def test_an_unproven_peer_must_prove_itself_within_the_deadline(
    psk_site: tuple[TransporterProc, int, Callable[[], float]],
) -> None:
    _site, port, _roundtrip = psk_site
    started = time.monotonic()
    with _tls(port) as s:
        s.sendall(PREFACE + frame(SETTINGS, 0, 0, b""))
        answer = attacks.drain(s, timeout=10)
    assert time.monotonic() - started < 4.0  # proof_timeout is 2 s
    assert attacks.goaway_code(attacks.frames_of(answer)) == attacks.ENHANCE_YOUR_CALM


def test_connections_past_the_cap_are_refused_before_tls(
    psk_site: tuple[TransporterProc, int, Callable[[], float]],
) -> None:
    _site, port, roundtrip = psk_site
    held = [socket.create_connection(("127.0.0.1", port), source_address=("127.0.5.1", 0)) for _ in range(3)]
    try:
        assert attacks.refused_before_tls("127.0.0.1", port, "127.0.5.1")
        assert not attacks.refused_before_tls("127.0.0.1", port, "127.0.5.2")
        assert roundtrip() < 1.0
    finally:
        for s in held:
            s.close()


def test_rapid_reset_gets_goaway_and_reset_streams_still_count(
    psk_site: tuple[TransporterProc, int, Callable[[], float]], echo: EchoServer
) -> None:
    """A peer holding the key proves itself with one real tunnel, then opens CONNECT streams and
    cancels each at once (the HTTP/2 "rapid reset" attack)."""
    site, port, roundtrip = psk_site
    assert site.proc is not None
    target = f"127.0.0.1:{echo.port}"
    with _tls(port) as s:
        fingerprint = der_sha256(s.getpeercert(binary_form=True) or b"")
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        conn.initiate_connection()
        _nonce, proof = pskproof.client_headers(PSK, fingerprint)
        conn.send_headers(1, [(":method", "CONNECT"), (":authority", target), *proof])
        s.sendall(conn.data_to_send())
        answered = False
        while not answered:
            for event in conn.receive_data(s.recv(65536)):
                answered |= isinstance(event, h2.events.ResponseReceived) and dict(event.headers)[":status"] == "200"
            s.sendall(conn.data_to_send())
        # Proven: now the flood, built in advance so it arrives as fast as the socket takes it.
        burst = bytearray()
        for i in range(1, 20_001):
            sid = 2 * i + 1
            _nonce, proof = pskproof.client_headers(PSK, fingerprint)
            conn.send_headers(sid, [(":method", "CONNECT"), (":authority", target), *proof])
            conn.reset_stream(sid)
            burst += conn.data_to_send()
        cpu_before = attacks.cpu_seconds(site.proc.pid)
        accepted_before = echo.accepted
        started = time.monotonic()
        _sendall(s, bytes(burst))
        frames = attacks.frames_of(attacks.drain(s))
    assert attacks.goaway_code(frames) == attacks.ENHANCE_YOUR_CALM
    assert time.monotonic() - started < 5
    # Each stream that got as far as its handler would connect to the target: streams the peer
    # reset count against max_concurrent_streams (256) until their handlers are gone.
    assert echo.accepted - accepted_before <= 256
    assert attacks.cpu_seconds(site.proc.pid) - cpu_before < 3.0
    assert roundtrip() < 1.0
